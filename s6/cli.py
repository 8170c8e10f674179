"""What the command-line scripts share: their flags, and one-line errors instead of tracebacks."""

import argparse
import sys
from dataclasses import MISSING, fields

import torch

from s6.checkpoints import CheckpointError
from s6.config import TrainConfig
from s6.data import MnistDataError
from s6.training import TrainingDiverged

# What a user's input or files can cause; anything else is a bug and keeps its traceback.
USER_ERRORS = (ValueError, MnistDataError, CheckpointError, TrainingDiverged, OSError)


def parser_for(doc):
    """An argument parser whose --help starts with the script's docstring, examples included."""
    return argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def add_config_flags(parser, names=None):
    """A --flag for each TrainConfig field (or those in `names`), with the field's help and default."""
    for f in fields(TrainConfig):
        if names is not None and f.name not in names:
            continue
        flag = "--" + f.name.replace("_", "-")
        default = None if f.default is MISSING else f.default
        if f.type is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default,
                                help=f.metadata["help"])
        else:
            kind = f.type if f.type in (int, float) else str
            parser.add_argument(flag, type=kind, default=default, help=f"{f.metadata['help']} (default: {default})")


def config_from_args(args, **overrides):
    """The TrainConfig the parsed flags describe; fields without a flag keep their defaults."""
    given = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if hasattr(args, f.name)}
    return TrainConfig(**{**given, **overrides})


def add_run_flags(parser, out, progress=True):
    """--out, --threads and (with `progress`) --no-progress."""
    parser.add_argument("--out", default=out, help=f"where to write the results (default: {out})")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    if progress:
        parser.add_argument("--no-progress", action="store_true", help="no progress bars (for logs)")


def apply_threads(args):
    if args.threads:
        torch.set_num_threads(args.threads)


def run_main(main, argv=None):
    """Run a script's main(argv); an error a user can cause ends as one line on stderr and exit code 1."""
    try:
        return main(argv)
    except USER_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
