"""The accuracy frontier: S6's model at each parameter budget, over five seeds, beside public single runs.

    python -m tools.frontier          # -> doc/frontier.png; the README's table and the references on stdout

Reads results/<model>/seeds.json for each budget (written by `s6_train.py --seeds ...`); trains nothing.
"""

import sys
from pathlib import Path

from matplotlib.figure import Figure

from s6.cli import add_overwrite_flag, parser_for, run_main
from s6.config import TARGET_ACC
from s6.files import save_figure, writing
from s6.results import markdown_table, seed_figures, seeds_table_row
from s6.runs import read_seeds
from s6_model import MODELS

ROOT = Path(__file__).resolve().parent.parent
BUDGETS = {cls.budget: key for key, cls in MODELS.items()}  # parameters -> model, from s6_model.py
# The best figures found in other public repositories at each budget: single runs, mostly a best epoch.
# (parameters, test accuracy, repository, what the figure is)
REFERENCES = [
    (18_594, 99.60, "piygr/s6erav1", "the best of 20 logged epochs in its README.md; its last epoch logged 99.58%"),
    (7_432, 99.51, "sayanbanerjee32/TSAI_ERAv2_S7", "its README.md's best test accuracy (step 3), 15 epochs"),
    (4_838, 99.42, "adilsammar/woolly-of-cv",
     "the best of 12 logged epochs (epoch 8) in its assets/mnist/docs/MNIST.md; 99.40% and 99.41% in its last two"),
    (1_936, 99.10, "ruslangrimov/mnist-minimal-model",
     "a Keras model with separable convolutions, after about 75 epochs (its 1936/model.txt)"),
]


def load_sweeps(results=ROOT / "results"):
    """{budget: the seed statistics in results/<model>/seeds.json} for every budget."""
    return {budget: read_seeds(results / model / "seeds.json")["summary"] for budget, model in BUDGETS.items()}


def table(sweeps):
    return markdown_table([{"budget": f"under {budget:,}", **seeds_table_row(BUDGETS[budget], stats)}
                           for budget, stats in sweeps.items()])


def references_table():
    return markdown_table([{"parameters": f"{count:,}", "test accuracy": f"{accuracy:.2f}%",
                            "repository": f"`{repository}`", "what the figure is": what}
                           for count, accuracy, repository, what in REFERENCES])


def plot_frontier(sweeps):
    """Test accuracy against parameters: S6's mean and range over seeds, public single runs beside them."""
    fig = Figure(figsize=(8, 4.8), layout="constrained")
    ax = fig.subplots()
    params = [stats["parameters"] for stats in sweeps.values()]
    figures = [seed_figures(stats) for stats in sweeps.values()]  # mean, std, min, max
    means = [mean for mean, _, _, _ in figures]
    low = [mean - least for mean, _, least, _ in figures]
    high = [most - mean for mean, _, _, most in figures]
    seeds = len(next(iter(sweeps.values()))["seeds"])
    ax.errorbar(params, means, yerr=[low, high], fmt="o-", capsize=4, color="tab:blue",
                label=f"S6: mean over {seeds} seeds at the last epoch, min to max")
    for (budget, stats), mean in zip(sweeps.items(), means, strict=True):
        ax.annotate(MODELS[BUDGETS[budget]].__name__, (stats["parameters"], mean), textcoords="offset points",
                    xytext=(8, -3), fontsize=8, color="tab:blue")
    for i, (count, accuracy, repository, _) in enumerate(REFERENCES):
        ax.scatter(count, accuracy, marker="x", s=60, color="tab:red", label="public single runs" if i == 0 else None)
        ax.annotate(repository, (count, accuracy), textcoords="offset points", xytext=(-8, 5), ha="right",
                    fontsize=7, color="tab:red")
    for budget in sweeps:
        ax.axvline(budget, color="gray", linestyle=":", linewidth=0.8)
    ax.axhline(TARGET_ACC, color="gray", linestyle="--", linewidth=0.8)
    ax.set(xscale="log", xlabel="parameters (dotted: the budgets)", ylabel="test accuracy (%)",
           title="MNIST test accuracy against model size")
    ax.set_xticks(list(sweeps), [f"{budget:,}" for budget in sweeps])
    ax.set_xticks([], minor=True)
    ax.set_xlim(1_000, 25_000)  # room for the labels left of the smallest points
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return fig


def main(argv=None):
    parser = parser_for(__doc__)
    parser.add_argument("--out", default="doc/frontier.png", help="the figure (default: doc/frontier.png)")
    add_overwrite_flag(parser, "the figure")
    args = parser.parse_args(argv)
    with writing([], args.overwrite, figures=[args.out]) as (out,):
        sweeps = load_sweeps()
        save_figure(out, plot_frontier(sweeps), dpi=110)
    print(table(sweeps), references_table(), sep="\n\n")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
