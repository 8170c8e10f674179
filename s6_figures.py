"""Write the README's figures for a finished run: no training, just its metrics.json and model.pt.

    python s6_figures.py results/net-seed1           # -> doc/samples.png, curves.png, misclassified.png,
                                                     #    confusion.png
"""

import sys
from pathlib import Path

import torch

from s6.checkpoints import read_metrics
from s6.cli import add_overwrite_flag, parser_for, refuse_to_replace, run_main
from s6_model import MODELS
from s6_utils import (
    TrainConfig,
    confusion_matrix,
    load_weights,
    make_loaders,
    plot_confusion_matrix,
    plot_history,
    plot_misclassified,
    plot_samples,
    predict,
)

FIGURES = ("samples.png", "curves.png", "misclassified.png", "confusion.png")


def run_figures(run_dir, data_dir=None):
    """{file name: Figure} for the run in `run_dir`, evaluated on the CPU."""
    record = read_metrics(Path(run_dir) / "metrics.json")
    config = TrainConfig(**{**record["config"], "device": "cpu", **({"data_dir": data_dir} if data_dir else {})})
    model = load_weights(MODELS[config.model](), Path(run_dir) / "model.pt")
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
    figures = run_figures(args.run_dir, args.data_dir)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    for name, figure in figures.items():
        figure.savefig(Path(args.out) / name, dpi=100)
        print(Path(args.out) / name)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
