"""What the command-line scripts share: their flags, loading a model for them, and one-line errors instead of
tracebacks."""

import argparse
import sys
from dataclasses import fields
from pathlib import Path

import torch

from s6.checkpoints import load_weights
from s6.config import NAMED_RECIPES, RECIPE_FIELDS, RECIPE_NAMES, TrainConfig, UserError, recipe
from s6.data import MnistDataError
from s6.training import TrainingDiverged
from s6_model import MODELS

RESULTS = Path(__file__).resolve().parent.parent / "results"

# What a user's input or files can cause (CheckpointError is a UserError); anything else is a bug and keeps its
# traceback.
USER_ERRORS = (UserError, MnistDataError, TrainingDiverged)


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error (exit code 2) instead of the usage block, which --help shows."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (--help lists the flags)\n")


def parser_for(doc):
    """An argument parser whose --help starts with the script's docstring, examples included."""
    return Parser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def add_config_flags(parser, names=None, recipes=True):
    """A --flag for each TrainConfig field (or those in `names`), with the field's help and default, and (with
    `recipes`) --recipe, which picks the recipe the other flags change (s6.config.recipe).

    A flag left out parses as None, so that `given_settings` can tell what the user asked for.
    """
    if recipes:
        parser.add_argument("--recipe", choices=RECIPE_NAMES, help="the --model's own recipe, 'default', or a named "
                            "one: " + "; ".join(f"'{name}' (for {', '.join(rows)})" for name, rows in
                                                NAMED_RECIPES.items()) + " (default: default)")
    for f in fields(TrainConfig):
        if names is not None and f.name not in names:
            continue
        flag = "--" + f.name.replace("_", "-")
        default = f"{f.default}, or the --model's --recipe's" if recipes and f.name in RECIPE_FIELDS else f.default
        help = f.metadata["help"] + (f" (default: {default})" if default is not None else "")
        if f.type is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, help=help)
        else:
            parser.add_argument(flag, type=f.type if f.type in (int, float) else str, help=help,
                                choices=f.metadata["choices"])


def given_settings(args):
    """{field: value} for each TrainConfig flag given on the command line."""
    return {f.name: getattr(args, f.name) for f in fields(TrainConfig) if getattr(args, f.name, None) is not None}


def config_from_args(args):
    """The complete TrainConfig the parsed flags describe: the --model's --recipe (s6.config.recipe), with every
    other flag given on top."""
    settings = given_settings(args)
    return recipe(getattr(args, "recipe", None) or "default", settings.pop("model", "net"), **settings)


def positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number")
    return value


def add_run_flags(parser, out, progress=True):
    """--out, --threads and (with `progress`) --no-progress."""
    parser.add_argument("--out", default=out, help=f"where to write the results (default: {out})")
    parser.add_argument("--threads", type=positive_int, help="CPU threads for torch (default: torch's choice)")
    if progress:
        parser.add_argument("--no-progress", action="store_true", help="no progress bars (for logs)")


def add_model_flags(parser):
    """--model and --weights, for the scripts that read digits with a trained model."""
    parser.add_argument("--model", default="net", choices=list(MODELS), help="the class the weights belong to")
    parser.add_argument("--weights", help="a model.pt written by s6_train.py (default: the committed "
                                          "results/<model>-seed1/model.pt)")


def weights_path(args):
    """The --weights file, or the --model's committed one (results/<model>-seed1/model.pt)."""
    return Path(args.weights) if args.weights else RESULTS / f"{args.model}-seed1" / "model.pt"


def load_model(args):
    """The --model class with the --weights, ready to read digits."""
    weights = weights_path(args)
    if not args.weights and not weights.exists():
        raise UserError(f"no committed weights for --model {args.model} ({weights}): train it with "
                         f"s6_train.py --model {args.model}, then give its model.pt with --weights")
    return load_weights(MODELS[args.model](), weights).eval()


def load_features(weights):
    """The DigitFeatures beside `weights`, or None, with a note on stderr that nothing will be called
    'not a digit' without them."""
    # imported here: the reader's modules (PIL, scipy) are for the scripts that read pictures, not every script
    from s6.reading import FEATURES_FILE, features_beside

    features = features_beside(weights)
    if features is None:
        print(f"note: no {FEATURES_FILE} beside {weights}, so nothing is called 'not a digit' "
              f"(s6_predict.py --calibrate writes it)", file=sys.stderr)
    return features


def add_overwrite_flag(parser, what):
    parser.add_argument("--overwrite", action="store_true", help=f"replace {what} if there already")


def apply_threads(args):
    if args.threads:
        torch.set_num_threads(args.threads)


def run_main(main, argv=None):
    """Run a script's main(argv); an error a user can cause ends as one line on stderr and exit code 1.
    A character the terminal's encoding lacks (a picture's name, on an ASCII terminal) is printed escaped."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        return main(argv)
    except USER_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
