"""Train an S6 model from the shell: the notebook's run, reproducible without a notebook.

    python s6_train.py                                   # 20 epochs of Net -> results/run/
    python s6_train.py --seed 1 --out results/net-seed1  # the README's single run
    python s6_train.py --seeds 1 2 3 4 5 --out results/net   # the README's seed statistics
    python s6_train.py --resume results/run              # continue a stopped run

Writes OUT/metrics.json (config, parameters, device, per-epoch history), OUT/checkpoint.pt after
every epoch and OUT/model.pt (the state_dict) at the end. A folder that holds a run already is
never replaced without --overwrite: a stopped run is continued with --resume, and a --seeds sweep
run again reuses its finished seeds and resumes the one it stopped in.
"""

import dataclasses
import sys
from pathlib import Path

from matplotlib.figure import Figure

from s6.cli import (
    add_config_flags,
    add_overwrite_flag,
    add_run_flags,
    apply_threads,
    config_from_args,
    given_settings,
    parser_for,
    run_main,
)
from s6.config import PLACEMENT, TrainConfig, UserError, eval_set
from s6.files import check_writable, save_figure, save_json, writable_folder
from s6.plots import plot_test_accuracy
from s6.results import markdown_table, seed_statistics, seeds_table_row
from s6.runs import remove_run, run_lock, saved_run
from s6.training import build_model, fit
from s6_model import count_parameters


def parse_args(argv=None):
    parser = parser_for(__doc__)
    add_config_flags(parser)
    add_run_flags(parser, out="results/run")
    parser.add_argument("--seeds", type=int, nargs="+", metavar="SEED",
                        help="train once per seed into OUT-seed<N>/ and write OUT/seeds.json with the statistics "
                             "(a seed whose finished run is already there is reused, a stopped one resumed)")
    parser.add_argument("--plot", help="with --seeds: write the test-accuracy curves of all seeds to this PNG")
    parser.add_argument("--resume", metavar="DIR", help="continue the run saved in DIR, with its own config")
    add_overwrite_flag(parser, "a run that OUT holds")
    args = parser.parse_args(argv)
    if args.resume and (args.seeds or args.overwrite or args.out != parser.get_default("out")):
        parser.error("--resume continues one run in its own folder: leave out --out, --seeds and --overwrite")
    if args.plot and not args.seeds:
        parser.error("--plot draws the seeds of a --seeds sweep")
    if args.seeds and args.seed is not None:
        parser.error("--seed and --seeds: give one (--seeds trains once per seed)")
    if not args.out.strip():
        parser.error("--out is empty: name a folder")
    if args.plot:
        check_figure_path(args.plot)
    return args


def check_figure_path(path):
    formats = Figure().canvas.get_supported_filetypes()
    suffix = Path(path).suffix.lstrip(".").lower()
    if suffix not in formats:
        raise UserError(f"--plot {path}: matplotlib cannot write .{suffix} files; use one of "
                         f"{', '.join(sorted(formats))}")
    check_writable(path)


def describe_run(run):
    """A saved run in a few words, for the messages that refuse to replace it."""
    if run.finished:
        return f"a finished run ({run.config.model}, {run.epochs_done} epochs)"
    return f"a run stopped after epoch {run.epochs_done} of {run.config.epochs}"


def start_fresh(folder, overwrite):
    """Make sure training into `folder` replaces no run unless asked to; with `overwrite`, clear it first."""
    run = saved_run(folder) if not overwrite else None
    if run is not None:
        way_out = "continue it with --resume " + str(folder) if not run.finished else "write elsewhere with --out"
        raise UserError(f"{folder} already holds {describe_run(run)}: {way_out}, or replace it with --overwrite")
    remove_run(writable_folder(folder))


def resume(args):
    folder = Path(args.resume)
    run = saved_run(folder)
    if run is None:
        raise UserError(f"{folder} holds no run to resume (no checkpoint.pt)")
    changed = {name: value for name, value in given_settings(args).items()
               if name not in PLACEMENT and value != getattr(run.config, name)}
    if changed:
        flags = ", ".join(f"--{name.replace('_', '-')} {value} (the run has {getattr(run.config, name)})"
                          for name, value in changed.items())
        raise UserError(f"--resume continues the run in {folder} as it was configured, but {flags}: leave "
                         f"those out, or start a new run with --out")
    if run.finished:
        print(f"{folder} holds a finished run ({run.epochs_done} of {run.config.epochs} epochs): nothing to resume")
        return
    overrides = {name: getattr(args, name) for name in PLACEMENT if getattr(args, name) is not None}
    with run_lock(folder):
        fit(TrainConfig(**{**run.config.to_dict(), **overrides}), out_dir=folder, resume=True,
            progress=not args.no_progress)


def seed_plan(config, folder, overwrite):
    """What to do for one seed's folder: 'reuse' its finished run, 'resume' its stopped one, or 'train'.

    A run of another config there, or of a model whose parameter count has changed since, is replaced
    only with --overwrite; another data folder or device (PLACEMENT) is the same run.
    """
    run = None if overwrite else saved_run(folder)
    if run is None:
        return "train"
    parameters = count_parameters(build_model(config, "cpu"))
    same_model = run.record is None or run.record.get("parameters") == parameters
    same_config = dataclasses.replace(run.config, **{name: getattr(config, name) for name in PLACEMENT}) == config
    if same_config and same_model:
        return "reuse" if run.finished else "resume"
    what = "another config" if not same_config else f"a model of {run.record.get('parameters'):,} parameters"
    raise UserError(f"{folder} holds {describe_run(run)} of {what} ({parameters:,} parameters now): replace it "
                    f"with --overwrite, or choose another --out")


def run_seeds(config, seeds, out, progress, overwrite, plot=None):
    configs = {seed: TrainConfig(**{**config.to_dict(), "seed": seed}) for seed in dict.fromkeys(seeds)}
    folders = {seed: out.parent / f"{out.name}-seed{seed}" for seed in configs}  # results/net -> results/net-seed1
    for seed in configs:  # a seed folder that cannot be used is named before any folder is made or locked
        seed_plan(configs[seed], folders[seed], overwrite)
    with run_lock(out, *folders.values()):
        return _run_seeds(config, configs, folders, out, progress, overwrite, plot)


def _run_seeds(config, configs, folders, out, progress, overwrite, plot):
    plans = {seed: seed_plan(configs[seed], folders[seed], overwrite) for seed in configs}  # now no run can change
    runs = {}
    for seed, plan in plans.items():
        if plan == "reuse":
            print(f"seed {seed}: reusing the finished run in {folders[seed]}")
        else:
            if plan == "train":
                remove_run(folders[seed])
            fit(configs[seed], out_dir=folders[seed], resume=plan == "resume", progress=progress)
        runs[seed] = saved_run(folders[seed]).record
    stats = seed_statistics(runs)
    save_json(out / "seeds.json", {"config": config.to_dict(), "summary": stats,
                                   "runs": {seed: run["history"] for seed, run in runs.items()}})
    if plot:
        fig = plot_test_accuracy({f"seed {s}": run["history"] for s, run in runs.items()},
                                 title=f"{config.model}: {eval_set(config)} accuracy of {len(runs)} seeds",
                                 eval_set=eval_set(config))
        save_figure(plot, fig, dpi=110)
    print(markdown_table([seeds_table_row(config.model, stats)]))
    return stats


def interrupted_hint(args, out):
    if args.seeds:
        return (f"the finished seeds are kept in {out}-seed<N>/; run the same command again to reuse them and "
                f"resume the one that stopped")
    if not (out / "checkpoint.pt").exists():
        return "no epoch had finished, so nothing was saved; run the same command again to start over"
    return f"the completed epochs are saved in {out}; continue with: python s6_train.py --resume {out}"


def main(argv=None):
    args = parse_args(argv)
    apply_threads(args)
    out = Path(args.resume or args.out)
    progress = not args.no_progress
    try:
        if args.seeds:
            run_seeds(config_from_args(args), args.seeds, out, progress, args.overwrite, args.plot)
        elif args.resume:
            resume(args)
        else:
            config = config_from_args(args)
            with run_lock(out):
                start_fresh(out, args.overwrite)
                fit(config, out_dir=out, progress=progress)
    except KeyboardInterrupt:
        print(f"\ninterrupted: {interrupted_hint(args, out)}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
