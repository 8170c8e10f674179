"""The path from 593,200 parameters to under 20,000: train each design with Net's recipe, one run each.

    python -m tools.experiments --overwrite                # all designs, 20 epochs, seed 1
    python -m tools.experiments --models net --overwrite   # retrain one, keep the others' records

Writes results/experiments.json (per design: parameters, receptive field before global pooling, final and best
test accuracy, first epoch at or above 99.4%, seconds per epoch, the test-accuracy curve) and doc/experiments.png,
and prints the table doc/experiments.md shows. Where the record or the figure exists, nothing is written without
--overwrite, which replaces the --models' records and keeps the others'; a second run writing the same record
meanwhile is refused.
"""

import statistics
import sys

from s6.cli import (
    add_config_flags,
    add_overwrite_flag,
    add_run_flags,
    apply_threads,
    config_from_args,
    parser_for,
    run_main,
)
from s6.config import TARGET_ACC
from s6.files import read_json, save_figure, save_json, writing
from s6.networks import network_name
from s6.plots import plot_test_accuracy
from s6.results import markdown_table, summarize
from s6.training import fit
from s6_model import Net, count_parameters, feature_receptive_field
from tools.networks import NETWORKS

# The designs in the order of the path, each trained with Net's default recipe
EXPERIMENTS = {"baseline": NETWORKS["baseline"], "arch1": NETWORKS["arch1"], "arch2": NETWORKS["arch2"],
               "arch3": NETWORKS["arch3"], "net": Net}


def run_experiment(config, network, progress=True):
    model, history = fit(config, progress=progress, model=network)
    return {"parameters": count_parameters(model), "receptive_field": feature_receptive_field(model),
            **summarize(history), "seconds_per_epoch": statistics.mean(r["seconds"] for r in history),
            "test_acc": [r["test_acc"] for r in history], "config": {**config.to_dict(), "model": network_name(model)}}


def _order(name):
    return list(EXPERIMENTS).index(name) if name in EXPERIMENTS else len(EXPERIMENTS)


def table(results):
    rows = [{"model": name, "parameters": f"{r['parameters']:,}", "receptive field": r["receptive_field"],
             "final test acc": f"{r['final_test_acc']:.2f}%", "best test acc": f"{r['best_test_acc']:.2f}%",
             f"first epoch ≥ {TARGET_ACC}%": r["first_epoch_at_target"] or "never",
             "s/epoch": f"{r['seconds_per_epoch']:.0f}"} for name, r in results.items()]
    return markdown_table(rows)


def main(argv=None):
    parser = parser_for(__doc__)
    parser.add_argument("--models", nargs="+", default=list(EXPERIMENTS), choices=list(EXPERIMENTS),
                        help="the designs to train (default: all)")
    add_config_flags(parser, ["epochs", "seed", "max_batches", "data_dir"], recipes=False)
    add_run_flags(parser, out="results/experiments.json")
    parser.add_argument("--plot", default="doc/experiments.png", help="the comparison plot")
    add_overwrite_flag(parser, "the records of the --models and the plot")
    args = parser.parse_args(argv)
    apply_threads(args)
    with writing([args.out], args.overwrite, figures=[args.plot]) as (out, plot):
        earlier = read_json(out, lambda record: isinstance(record, dict), "delete it, or give another --out") \
            if out.exists() else {}
        results = {name: record for name, record in earlier.items() if name not in args.models}  # kept as they were
        for name in args.models:
            results[name] = run_experiment(config_from_args(args), EXPERIMENTS[name], progress=not args.no_progress)
            results = dict(sorted(results.items(), key=lambda item: _order(item[0])))
            save_json(out, results)  # after every model: a long run keeps what it finished
        curves = {name: [{"epoch": i, "test_acc": acc} for i, acc in enumerate(r["test_acc"], 1)]
                  for name, r in results.items()}
        save_figure(plot, plot_test_accuracy(curves, title="experiments: test accuracy per epoch"), dpi=110)
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
