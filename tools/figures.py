"""Write the record's figures of a finished run or sweep: no training, just what the run wrote.

    python -m tools.figures results/net-seed1 --overwrite   # a run -> doc/samples.png, curves.png,
                                                            #          misclassified.png, confusion.png
    python -m tools.figures results/net --overwrite         # a sweep (its seeds.json) -> doc/net_seeds.png
"""

import sys
from pathlib import Path

import torch

from s6.checkpoints import config_from_record, load_weights
from s6.cli import add_overwrite_flag, parser_for, run_main
from s6.config import UserError, eval_set
from s6.data import make_loaders
from s6.files import save_figure, writing
from s6.plots import plot_confusion_matrix, plot_history, plot_misclassified, plot_samples, plot_test_accuracy
from s6.runs import network_of, read_metrics, read_seeds, trained_network_name
from s6.sweeps import seed_folders
from s6.training import confusion_matrix, predict

FIGURES = ("samples.png", "curves.png", "misclassified.png", "confusion.png")


def run_figures(run_dir, data_dir=None):
    """{file name: Figure} for the run in `run_dir`, evaluated on the CPU."""
    metrics = Path(run_dir) / "metrics.json"
    record = read_metrics(metrics)
    config = config_from_record({**record["config"], "device": "cpu", **({"data_dir": data_dir} if data_dir else {})},
                                metrics)
    network = network_of(config, record.get("model_class"))
    if network is None:
        raise UserError(f"{run_dir} is a run of {trained_network_name(config, record.get('model_class'))}, a network "
                        f"S6 does not have, which this command cannot build: draw its figures in Python, with s6.plots")
    model = load_weights(network(), Path(run_dir) / "model.pt")
    train_loader, test_loader = make_loaders(config, "cpu")
    torch.manual_seed(config.seed)
    images, labels = next(iter(train_loader))
    test_images, test_labels, probs = predict(model, test_loader)
    figures = (plot_samples(images, labels), plot_history(record["history"]),
               plot_misclassified(test_images, test_labels, probs),
               plot_confusion_matrix(confusion_matrix(test_labels, probs.argmax(1))))
    return dict(zip(FIGURES, figures, strict=True))


def sweep_figure(sweep_dir):
    """The evaluated accuracy of every seed of the sweep in `sweep_dir` (its seeds.json), one curve each."""
    sweep_dir = Path(sweep_dir)
    seeds = read_seeds(sweep_dir / "seeds.json")
    runs = {seed: read_metrics(folder / "metrics.json") for seed, folder in
            seed_folders(sweep_dir, seeds["summary"].get("seeds", [])).items()}
    evaluated = eval_set(config_from_record(seeds["config"], sweep_dir / "seeds.json"))
    return plot_test_accuracy({f"seed {seed}": run["history"] for seed, run in runs.items()},
                              title=f"{seeds['config']['model']}: {evaluated} accuracy of {len(runs)} seeds",
                              eval_set=evaluated)


def main(argv=None):
    parser = parser_for(__doc__)
    parser.add_argument("run_dir", metavar="RUN_OR_SWEEP", help="a folder written by s6_train.py (--seeds)")
    parser.add_argument("--out", default="doc", help="folder for the PNGs")
    parser.add_argument("--data-dir", help="MNIST folder, if not the one the run used")
    add_overwrite_flag(parser, "the PNGs")
    args = parser.parse_args(argv)
    sweep = (Path(args.run_dir) / "seeds.json").is_file()
    names = [f"{Path(args.run_dir).name}_seeds.png"] if sweep else FIGURES
    with writing([], args.overwrite, figures=[Path(args.out) / name for name in names]) as paths:
        figures = [sweep_figure(args.run_dir)] if sweep else run_figures(args.run_dir, args.data_dir).values()
        for path, figure in zip(paths, figures, strict=True):
            save_figure(path, figure, dpi=110 if sweep else 100)
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
