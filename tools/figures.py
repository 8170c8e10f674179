"""Write the README's figures for a finished run: no training, just its metrics.json and model.pt.

    python -m tools.figures results/net-seed1       # -> doc/samples.png, curves.png, misclassified.png,
                                                    #    confusion.png
"""

import sys
from pathlib import Path

import torch

from s6.checkpoints import config_from_record, load_weights
from s6.cli import add_overwrite_flag, parser_for, run_main
from s6.config import UserError
from s6.data import make_loaders
from s6.files import refuse_to_replace, save_figure, writable_folder
from s6.plots import plot_confusion_matrix, plot_history, plot_misclassified, plot_samples
from s6.runs import read_metrics
from s6.training import confusion_matrix, predict
from s6_model import MODELS

FIGURES = ("samples.png", "curves.png", "misclassified.png", "confusion.png")


def run_figures(run_dir, data_dir=None):
    """{file name: Figure} for the run in `run_dir`, evaluated on the CPU."""
    metrics = Path(run_dir) / "metrics.json"
    record = read_metrics(metrics)
    config = config_from_record({**record["config"], "device": "cpu", **({"data_dir": data_dir} if data_dir else {})},
                                metrics)
    network = MODELS[config.model]
    if record.get("model_class", network.__name__) != network.__name__:
        raise UserError(f"{run_dir} is a run of a network of its user's own ({record['model_class']}), which this "
                        f"command cannot build: draw its figures in Python, with s6.plots")
    model = load_weights(network(), Path(run_dir) / "model.pt")
    train_loader, test_loader = make_loaders(config, "cpu")
    torch.manual_seed(config.seed)
    images, labels = next(iter(train_loader))
    test_images, test_labels, probs = predict(model, test_loader)
    figures = (plot_samples(images, labels), plot_history(record["history"]),
               plot_misclassified(test_images, test_labels, probs),
               plot_confusion_matrix(confusion_matrix(test_labels, probs.argmax(1))))
    return dict(zip(FIGURES, figures, strict=True))


def main(argv=None):
    parser = parser_for(__doc__)
    parser.add_argument("run_dir", help="a folder written by s6_train.py")
    parser.add_argument("--out", default="doc", help="folder for the PNGs")
    parser.add_argument("--data-dir", help="MNIST folder, if not the one the run used")
    add_overwrite_flag(parser, "the PNGs")
    args = parser.parse_args(argv)
    refuse_to_replace([Path(args.out) / name for name in FIGURES], args.overwrite)
    out = writable_folder(args.out)
    for name, figure in run_figures(args.run_dir, args.data_dir).items():
        save_figure(out / name, figure)
        print(out / name)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
