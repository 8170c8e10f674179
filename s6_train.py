"""Train an S6 model from the shell: the notebook's run, reproducible without a notebook.

    python s6_train.py                                   # 20 epochs of Net -> results/run/
    python s6_train.py --seed 1 --out results/net-seed1  # the README's single run
    python s6_train.py --seeds 1 2 3 4 5 --out results/net   # the README's seed statistics
    python s6_train.py --resume results/run              # continue a stopped run

Writes OUT/metrics.json (config, parameters, device, per-epoch history), OUT/checkpoint.pt after
every epoch and OUT/model.pt (the state_dict) at the end.
"""

import json
import statistics
import sys
from pathlib import Path

from s6.cli import add_config_flags, add_run_flags, apply_threads, config_from_args, parser_for, run_main
from s6_model import count_parameters
from s6_utils import (
    TARGET_ACC,
    TrainConfig,
    build_model,
    fit,
    load_config,
    markdown_table,
    plot_test_accuracy,
    save_json,
)


def parse_args(argv=None):
    parser = parser_for(__doc__)
    add_config_flags(parser)
    add_run_flags(parser, out="results/run")
    parser.add_argument("--seeds", type=int, nargs="+", metavar="SEED",
                        help="train once per seed into OUT-seed<N>/ and write OUT/seeds.json with the statistics "
                             "(a seed whose finished run is already there is reused)")
    parser.add_argument("--plot", help="with --seeds: write the test-accuracy curves of all seeds to this PNG")
    parser.add_argument("--resume", metavar="DIR", help="continue the run saved in DIR (its config is used)")
    return parser.parse_args(argv)


def seed_statistics(runs):
    """Mean, spread and range of the final test accuracy over seeds, and the median first epoch >= target."""
    finals = [run["summary"]["final_test_acc"] for run in runs.values()]
    firsts = [run["summary"]["first_epoch_at_target"] for run in runs.values()]
    reached = [epoch for epoch in firsts if epoch is not None]
    return {
        "seeds": list(runs), "epochs": len(next(iter(runs.values()))["history"]),
        "parameters": next(iter(runs.values()))["parameters"],
        "final_test_acc_mean": statistics.mean(finals),
        "final_test_acc_std": statistics.stdev(finals) if len(finals) > 1 else 0.0,
        "final_test_acc_min": min(finals), "final_test_acc_max": max(finals),
        "median_first_epoch_at_target": statistics.median(reached) if len(reached) == len(firsts) else None,
        "target": TARGET_ACC,
    }


def seeds_table_row(model, stats):
    median = stats["median_first_epoch_at_target"]
    return {
        "model": model, "parameters": f"{stats['parameters']:,}", "epochs": stats["epochs"],
        "seeds": len(stats["seeds"]),
        "final test acc, mean ± std": f"{stats['final_test_acc_mean']:.2f}% ± {stats['final_test_acc_std']:.2f}",
        "min / max": f"{stats['final_test_acc_min']:.2f}% / {stats['final_test_acc_max']:.2f}%",
        f"median first epoch ≥ {TARGET_ACC}%": median if median is not None else "not reached by every seed",
    }


def finished_run(folder, config):
    """The metrics of a completed run of exactly this config in `folder`, else None."""
    path = folder / "metrics.json"
    if not path.exists():
        return None
    record = json.loads(path.read_text())
    # the config names the model class, not its layers: a class redesigned since that run is caught
    # by its parameter count
    same_model = record["parameters"] == count_parameters(build_model(config, "cpu"))
    try:  # a TrainConfig field added since that run was saved counts as its default, as in load_config
        saved = TrainConfig(**record["config"]).to_dict()
    except TypeError:  # the run names a field that no longer exists
        return None
    same_run = saved == config.to_dict() and len(record["history"]) == config.epochs
    return record if same_run and same_model else None


def run_seeds(config, seeds, out, progress, plot=None):
    runs = {}
    for seed in seeds:
        seed_config = TrainConfig(**{**config.to_dict(), "seed": seed})
        folder = out.parent / f"{out.name}-seed{seed}"  # results/net -> results/net-seed1, ...
        runs[seed] = finished_run(folder, seed_config)
        if runs[seed] is None:
            fit(seed_config, out_dir=folder, progress=progress)
            runs[seed] = finished_run(folder, seed_config)
        else:
            print(f"seed {seed}: reusing the finished run in {folder}")
    stats = seed_statistics(runs)
    out.mkdir(parents=True, exist_ok=True)
    save_json(out / "seeds.json", {"config": config.to_dict(), "summary": stats,
                                   "runs": {seed: run["history"] for seed, run in runs.items()}})
    if plot:
        fig = plot_test_accuracy({f"seed {s}": run["history"] for s, run in runs.items()},
                                 title=f"{config.model}: test accuracy of {len(seeds)} seeds")
        fig.savefig(plot, dpi=110)
    print(markdown_table([seeds_table_row(config.model, stats)]))
    return stats


def main(argv=None):
    args = parse_args(argv)
    apply_threads(args)
    out = Path(args.resume or args.out)
    progress = not args.no_progress
    try:
        if args.resume:
            fit(load_config(out / "checkpoint.pt"), out_dir=out, resume=True, progress=progress)
        elif args.seeds:
            run_seeds(config_from_args(args), args.seeds, out, progress, args.plot)
        else:
            fit(config_from_args(args), out_dir=out, progress=progress)
    except KeyboardInterrupt:
        hint = (f"the finished seeds are kept in {out}-seed<N>/ and reused if you run the same command again"
                if args.seeds else f"the completed epochs are saved in {out}; "
                                   f"continue with: python s6_train.py --resume {out}")
        print(f"\ninterrupted: {hint}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
