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

import sys
from dataclasses import replace
from pathlib import Path

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
from s6.config import PLACEMENT, UserError, described, differences
from s6.results import markdown_table, seeds_table_row
from s6.runs import how_to_resume, network_of, saved_run
from s6.sweeps import train_seeds
from s6.training import fit


def parse_args(argv=None):
    parser = parser_for(__doc__)
    add_config_flags(parser)
    add_run_flags(parser, out="results/run")
    parser.add_argument("--seeds", type=int, nargs="+", metavar="SEED",
                        help="train once per seed into OUT-seed<N>/ and write OUT/seeds.json with the statistics "
                             "(a seed whose finished run is already there is reused, a stopped one resumed)")
    parser.add_argument("--resume", metavar="DIR", help="continue the run saved in DIR, with its own config")
    add_overwrite_flag(parser, "a run that OUT holds")
    args = parser.parse_args(argv)
    if args.resume and (args.seeds or args.overwrite or args.recipe or args.out != parser.get_default("out")):
        parser.error("--resume continues one run in its own folder with its own config: leave out --out, --seeds, "
                     "--recipe and --overwrite")
    if args.seeds and args.seed is not None:
        parser.error("--seed and --seeds: give one (--seeds trains once per seed)")
    if not args.out.strip():
        parser.error("--out is empty: name a folder")
    return args


def resume(args):
    folder = Path(args.resume)
    run = saved_run(folder)
    if run is None:
        raise UserError(f"{folder} holds no run to resume (no checkpoint.pt)")
    if network_of(run.config, run.model_class) is None:  # the lab's or a user's network: its class is not S6's
        raise UserError(f"{folder} is a run of a network S6 does not have: {how_to_resume(folder, run)}")
    given = given_settings(args)
    changed = differences(run.config, replace(run.config, **given), ignore=PLACEMENT)
    if changed:
        raise UserError(f"--resume continues the run in {folder} as it was configured, but the flags change it "
                        f"({described(changed)}): leave those out, or start a new run with --out")
    if run.finished:
        print(f"{folder} holds a finished run ({run.epochs_done} of {run.config.epochs} epochs): nothing to resume")
        return
    overrides = {name: given[name] for name in PLACEMENT if name in given}
    fit(replace(run.config, **overrides), out_dir=folder, resume=True, progress=not args.no_progress)


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
            config = config_from_args(args)
            stats, _ = train_seeds(config, args.seeds, out, args.overwrite, progress)
            print(markdown_table([seeds_table_row(config.model, stats)]))
        elif args.resume:
            resume(args)
        else:
            fit(config_from_args(args), out_dir=out, overwrite=args.overwrite, progress=progress)
    except KeyboardInterrupt:
        print(f"\ninterrupted: {interrupted_hint(args, out)}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
