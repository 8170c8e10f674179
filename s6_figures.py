"""Write the README's figures for a finished run: no training, just its metrics.json and model.pt.

    python s6_figures.py results/net-seed1           # -> doc/samples.png, curves.png, misclassified.png,
                                                     #    confusion.png
"""

import json
import sys
from pathlib import Path

import torch

from s6.cli import parser_for, run_main
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


def run_figures(run_dir, data_dir=None):
    """{file name: Figure} for the run in `run_dir`, evaluated on the CPU."""
    record = json.loads((Path(run_dir) / "metrics.json").read_text())
    config = TrainConfig(**{**record["config"], "device": "cpu", **({"data_dir": data_dir} if data_dir else {})})
    model = load_weights(MODELS[config.model](), Path(run_dir) / "model.pt")
    train_loader, test_loader = make_loaders(config, "cpu")
    torch.manual_seed(config.seed)
    images, labels = next(iter(train_loader))
    test_images, test_labels, probs = predict(model, test_loader)
    return {
        "samples.png": plot_samples(images, labels),
        "curves.png": plot_history(record["history"]),
        "misclassified.png": plot_misclassified(test_images, test_labels, probs),
        "confusion.png": plot_confusion_matrix(confusion_matrix(test_labels, probs.argmax(1))),
    }


def main(argv=None):
    parser = parser_for(__doc__)
    parser.add_argument("run_dir", help="a folder written by s6_train.py")
    parser.add_argument("--out", default="doc", help="folder for the PNGs")
    parser.add_argument("--data-dir", help="MNIST folder, if not the one the run used")
    args = parser.parse_args(argv)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    for name, figure in run_figures(args.run_dir, args.data_dir).items():
        figure.savefig(Path(args.out) / name, dpi=100)
        print(Path(args.out) / name)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
