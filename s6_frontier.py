"""The accuracy frontier: S6's model at each parameter budget, over five seeds, beside public single runs.

    python s6_frontier.py             # -> doc/frontier.png, and the README's table on stdout

Reads results/<model>/seeds.json for each budget (written by `s6_train.py --seeds ...`); trains nothing.
"""

import sys
from pathlib import Path

from matplotlib.figure import Figure

from s6.checkpoints import read_metrics
from s6.cli import add_overwrite_flag, parser_for, refuse_to_replace, run_main
from s6.config import TARGET_ACC
from s6.plots import markdown_table

ROOT = Path(__file__).resolve().parent
BUDGETS = {20_000: "net", 8_000: "small", 5_000: "tiny", 2_000: "micro"}  # parameters -> model
# The best figures other public repositories log or claim at each budget: single runs, mostly a best epoch
# (doc/experiments.md quotes each).
REFERENCES = [
    (18_594, 99.60, "piygr/s6erav1: best of 20 epochs"),
    (7_432, 99.51, "sayanbanerjee32/TSAI_ERAv2_S7: README, 15 epochs"),
    (4_838, 99.42, "adilsammar/woolly-of-cv: best of 12 epochs"),
    (1_936, 99.10, "ruslangrimov/mnist-minimal-model: about 75 epochs"),
]


def load_sweeps(results=ROOT / "results"):
    """{budget: seeds.json summary} for every budget."""
    return {budget: read_metrics(results / model / "seeds.json")["summary"] for budget, model in BUDGETS.items()}


def table(sweeps):
    rows = []
    for budget, stats in sweeps.items():
        median = stats["median_first_epoch_at_target"]
        rows.append({
            "budget": f"under {budget:,}", "model": BUDGETS[budget], "parameters": f"{stats['parameters']:,}",
            "epochs": stats["epochs"],
            "test acc, mean ± std": f"{stats['final_test_acc_mean']:.2f}% ± {stats['final_test_acc_std']:.2f}",
            "min": f"{stats['final_test_acc_min']:.2f}%",
            f"median first epoch ≥ {TARGET_ACC}%": f"{median:g}" if median is not None else "not every seed",
        })
    return markdown_table(rows)


def plot_frontier(sweeps):
    """Test accuracy against parameters: S6's mean and range over seeds, public single runs beside them."""
    fig = Figure(figsize=(8, 4.8), layout="constrained")
    ax = fig.subplots()
    params = [stats["parameters"] for stats in sweeps.values()]
    means = [stats["final_test_acc_mean"] for stats in sweeps.values()]
    low = [m - stats["final_test_acc_min"] for m, stats in zip(means, sweeps.values(), strict=True)]
    high = [stats["final_test_acc_max"] - m for m, stats in zip(means, sweeps.values(), strict=True)]
    ax.errorbar(params, means, yerr=[low, high], fmt="o-", capsize=4, color="tab:blue",
                label="S6: mean over 5 seeds at the last epoch, min to max")
    for (count, accuracy, source), first in zip(REFERENCES, [True] + [False] * len(REFERENCES), strict=False):
        ax.scatter(count, accuracy, marker="x", s=60, color="tab:red", label="public single runs" if first else None)
        ax.annotate(source.split(":")[0], (count, accuracy), textcoords="offset points", xytext=(6, -12), fontsize=7,
                    color="tab:red")
    for budget in sweeps:
        ax.axvline(budget, color="gray", linestyle=":", linewidth=0.8)
    ax.axhline(TARGET_ACC, color="gray", linestyle="--", linewidth=0.8)
    ax.set(xscale="log", xlabel="parameters (budget lines dotted)", ylabel="test accuracy (%)",
           title="MNIST test accuracy against model size")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower right")
    return fig


def main(argv=None):
    parser = parser_for(__doc__)
    parser.add_argument("--out", default="doc/frontier.png", help="the figure (default: doc/frontier.png)")
    add_overwrite_flag(parser, "the figure")
    args = parser.parse_args(argv)
    refuse_to_replace([args.out], args.overwrite)
    sweeps = load_sweeps()
    plot_frontier(sweeps).savefig(args.out, dpi=110)
    print(table(sweeps))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
