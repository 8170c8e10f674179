"""What each ingredient of Net's recipe is worth: from the default recipe, one thing taken away at a time, 20
epochs, seeds 1-3 each, test accuracy after the last epoch. A measurement: no recipe is chosen by it.

    python -m tools.ablation --threads 1 --overwrite   # trains what is missing, a sweep per variant into
                                                      # results/ablation/<variant>/, then writes results/ablation.json
                                                      # and doc/ablation.png and prints the table
    python -m tools.ablation --variants arch3          # one variant's sweep (its finished seeds are reused); no record
    python -m tools.ablation --report --overwrite      # no training: the record, the figure and the table from the runs

Net's own row is its committed seeds 1-3 (results/net-seed<N>/, the README's sweep). Each variant is a sweep
(s6.sweeps.train_seeds) of Net's default config with the changes in VARIANTS; one thread per run makes them repeat
exactly, and two --variants runs side by side use a 2-core machine best.
"""

import sys
from dataclasses import replace
from pathlib import Path

from s6.cli import add_overwrite_flag, apply_threads, parser_for, positive_int, run_main
from s6.config import AUGMENTATION_OFF, TARGET_ACC, TrainConfig, UserError
from s6.files import save_figure, save_json, writing
from s6.plots import plot_ablation
from s6.results import final_accuracy, markdown_table, seed_figures, seed_statistics
from s6.runs import read_metrics, read_seeds
from s6.sweeps import train_seeds
from tools.networks import NETWORKS

ROOT = Path(__file__).resolve().parent.parent
SEEDS = (1, 2, 3)
# name: (what is taken away from Net's default recipe, the settings that take it away, the network trained: Net, or
# one of the lab's)
VARIANTS = {
    "no-batchnorm": ("BatchNorm (each convolution gets a bias)", {}, NETWORKS["net-no-bn"]),
    "no-dropout": ("Dropout", dict(dropout=0.0), None),
    "dense-head": ("global average pooling (a dense layer reads the 7x7 map; last block 10 channels)", {},
                   NETWORKS["net-dense-head"]),
    "no-augmentation": ("augmentation (rotation, shift, zoom)", AUGMENTATION_OFF, None),
    "no-weight-average": ("the weight average (the trained weights evaluated)", dict(ema_decay=0.0), None),
    "step-schedule": ("OneCycle, for a step schedule: 0.1, divided by 10 at half and at three quarters",
                      dict(schedule="step"), None),
    "constant-rate": ("OneCycle, for a constant rate of 0.1", dict(schedule="constant"), None),
    "no-label-smoothing": ("label smoothing", dict(label_smoothing=0.0), None),
    "arch3": ("depth, for width: arch3, the first README's third design (32 channels, three convolutions)", {},
              NETWORKS["arch3"]),
}


def train(names, results, base=TrainConfig(), progress=False, log=print):
    """A sweep of SEEDS per variant into results/ablation/<name>: `base` (Net's default config) with the variant's
    changes, reusing the seeds already finished."""
    for name in names:
        _, changes, network = VARIANTS[name]
        log(f"{name}: Net's default recipe with {changes or 'nothing'} changed, network "
            f"{network.__name__ if network else 'Net'}")
        try:
            train_seeds(replace(base, **changes), SEEDS, results / "ablation" / name, progress=progress, log=log,
                        model=network)
        except KeyboardInterrupt:  # its finished seeds are kept for the next time
            raise UserError(f"the sweep of {name} stopped; run the same command again to go on where it "
                            f"stopped") from None


def row(what, runs, source):
    """A row of the record from the metrics.json records of a variant's seeds ({seed: record})."""
    stats = seed_statistics(runs)
    mean, _, low, high = seed_figures(stats)
    return {"taken away": what, "source": source, "parameters": stats["parameters"], "epochs": stats["epochs"],
            "finals": [final_accuracy(run["summary"]) for run in runs.values()], "mean": mean, "min": low,
            "max": high, "first_epochs_at_target": [run["summary"]["first_epoch_at_target"] for run in runs.values()],
            "median_first_epoch_at_target": stats["median_first_epoch_at_target"]}


def record(results):
    """results/ablation.json: Net's row from its committed seeds, then each variant's, from its sweep's runs."""
    net = {seed: read_metrics(results / f"net-seed{seed}" / "metrics.json") for seed in SEEDS}
    rows = {"net": row("nothing: Net's default recipe", net, "results/net-seed<N>")}
    for name, (what, _, _) in VARIANTS.items():
        read_seeds(results / "ablation" / name / "seeds.json")  # the sweep finished: its statistics are written
        runs = {seed: read_metrics(results / "ablation" / f"{name}-seed{seed}" / "metrics.json") for seed in SEEDS}
        rows[name] = row(what, runs, f"results/ablation/{name}-seed<N>")
    return {"seeds": list(SEEDS), "target": TARGET_ACC, "rows": rows}


def table(ablation):
    """The markdown table of results/ablation.json that the README and the notebook show."""
    net = ablation["rows"]["net"]["mean"]
    seeds = f"{ablation['seeds'][0]}–{ablation['seeds'][-1]}"

    def first(r):
        if r["median_first_epoch_at_target"] is not None:
            return f"{r['median_first_epoch_at_target']:g}"
        reached = sum(epoch is not None for epoch in r["first_epochs_at_target"])
        return f"— ({reached} of {len(r['finals'])} seeds)"

    return markdown_table([{
        "taken away": r["taken away"], "parameters": f"{r['parameters']:,}",
        f"last-epoch test acc, mean of seeds {seeds}": f"{r['mean']:.2f}%",
        "min / max": f"{r['min']:.2f}% / {r['max']:.2f}%",
        "against Net": "—" if name == "net" else f"{round(r['mean'] - net, 2) + 0.0:+.2f}",  # no -0.00
        f"first epoch ≥ {TARGET_ACC}%, median of the seeds": first(r)} for name, r in ablation["rows"].items()])


def main(argv=None):
    parser = parser_for(__doc__)
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS),
                        help="train only these variants' sweeps, and write no record (default: all, then the record)")
    parser.add_argument("--report", action="store_true", help="train nothing: write the record and figure only")
    parser.add_argument("--threads", type=positive_int, help="CPU threads per run (default: torch's choice)")
    parser.add_argument("--out", default=str(ROOT / "results" / "ablation.json"), help="the record")
    parser.add_argument("--plot", default=str(ROOT / "doc" / "ablation.png"), help="the figure")
    add_overwrite_flag(parser, "the record and the figure")
    args = parser.parse_args(argv)
    if args.variants and args.report:
        parser.error("--variants trains sweeps, --report writes the record from them: give one")
    apply_threads(args)
    results = ROOT / "results"
    if args.variants:
        train(args.variants, results)
        return 0
    with writing([args.out], args.overwrite, figures=[args.plot]) as (out, plot):
        if not args.report:
            train(list(VARIANTS), results)
        ablation = record(results)
        save_json(out, ablation)
        save_figure(plot, plot_ablation(ablation), dpi=110)
    print(table(ablation))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
