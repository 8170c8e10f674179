"""The path from 593,200 parameters to under 20,000: train each experiment model with one recipe.

    python -m tools.experiments                    # all models, 20 epochs, seed 1
    python -m tools.experiments --models net       # retrain one model, keep the others' records

Writes results/experiments.json (per model: parameters, receptive field before global pooling,
final and best test accuracy, first epoch at or above 99.4%, seconds per epoch, the test-accuracy
curve), a comparison plot, and prints the markdown table the README shows.
"""

import statistics
import sys

from s6.cli import add_config_flags, add_run_flags, apply_threads, config_from_args, parser_for, run_main
from s6.config import TARGET_ACC
from s6.files import check_writable, read_json, save_figure, save_json
from s6.plots import plot_test_accuracy
from s6.results import markdown_table, summarize
from s6.training import fit
from s6_model import MODELS, count_parameters, feature_receptive_field

EXPERIMENTS = ["baseline", "arch1", "arch2", "arch3", "net"]


def run_experiment(config, progress=True):
    model, history = fit(config, progress=progress)
    return {"parameters": count_parameters(model), "receptive_field": feature_receptive_field(model),
            **summarize(history), "seconds_per_epoch": statistics.mean(r["seconds"] for r in history),
            "test_acc": [r["test_acc"] for r in history], "config": config.to_dict()}


def _order(name):
    return EXPERIMENTS.index(name) if name in EXPERIMENTS else len(EXPERIMENTS)


def table(results):
    rows = [{"model": name, "parameters": f"{r['parameters']:,}", "receptive field": r["receptive_field"],
             "final test acc": f"{r['final_test_acc']:.2f}%", "best test acc": f"{r['best_test_acc']:.2f}%",
             f"first epoch ≥ {TARGET_ACC}%": r["first_epoch_at_target"] or "never",
             "s/epoch": f"{r['seconds_per_epoch']:.0f}"} for name, r in results.items()]
    return markdown_table(rows)


def main(argv=None):
    parser = parser_for(__doc__)
    parser.add_argument("--models", nargs="+", default=EXPERIMENTS, choices=list(MODELS), help="models to train")
    add_config_flags(parser, ["epochs", "seed", "max_batches", "data_dir"])
    add_run_flags(parser, out="results/experiments.json")
    parser.add_argument("--plot", default="doc/experiments.png", help="the comparison plot")
    args = parser.parse_args(argv)
    apply_threads(args)

    out, plot = check_writable(args.out), check_writable(args.plot)
    earlier = read_json(out, lambda record: isinstance(record, dict), "delete it, or give another --out") \
        if out.exists() else {}
    results = {name: record for name, record in earlier.items() if name not in args.models}  # kept as they were
    for name in args.models:
        config = config_from_args(args, model=name)
        results[name] = run_experiment(config, progress=not args.no_progress)
        results = dict(sorted(results.items(), key=lambda item: _order(item[0])))
        save_json(out, results)  # after every model: a long run keeps what it finished
    curves = {name: [{"epoch": i, "test_acc": acc} for i, acc in enumerate(r["test_acc"], 1)]
              for name, r in results.items()}
    save_figure(plot, plot_test_accuracy(curves, title="experiments: test accuracy per epoch"), dpi=110)
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
