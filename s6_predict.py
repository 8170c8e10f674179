"""Read your own handwritten digits with a trained S6 model.

    python s6_predict.py my_seven.png photo_of_a_three.jpg
    python s6_predict.py digit.png --model tiny    # TinyNet, the weights of results/tiny-seed1
    python s6_predict.py --calibrate --weights results/run/model.pt   # once, for your own model

A photo or scan of one digit, any size from 8x8 up, in colour, on paper or a board, upright or turned
by its EXIF tag: each is made MNIST-like (the ink found on its writing surface, the light evened out,
the stroke brought to MNIST's width, cropped, fitted into 20x20 and centred by mass in 28x28; a small
picture keeps its grey levels) before the model sees it. One line per image: the digit and its
probability; "unsure" with the two likeliest where the network is not confident; or "not a digit" where
the network's features of the picture are unlike those of every digit it was trained on (a letter, a
doodle, two digits side by side). A bad file prints an error line and the others still run; the exit
code is 1 if any image failed.

"Not a digit" needs the statistics of the model's features on training digits, digit-features.pt beside
its model.pt: committed for the four models, written for another by --calibrate (about a minute on a CPU).
"""

import sys
from pathlib import Path

from s6.cli import add_model_flags, add_overwrite_flag, load_features, load_model, parser_for, run_main, weights_path
from s6.config import UserError
from s6.files import writing
from s6.preparing import load_digit
from s6.reading import DIGIT_QUANTILE, FEATURES_FILE, DigitFeatures, read_digit, verdict


def parse_args(argv=None):
    parser = parser_for(__doc__)
    parser.add_argument("images", nargs="*", metavar="IMAGE", help="PNG or JPEG files, one digit each")
    add_model_flags(parser)
    parser.add_argument("--calibrate", action="store_true",
                        help=f"fit the model's {FEATURES_FILE} on MNIST's training images, beside its weights")
    parser.add_argument("--data-dir", default="data", help="the folder that holds MNIST/raw/ (for --calibrate)")
    add_overwrite_flag(parser, FEATURES_FILE)
    args = parser.parse_args(argv)
    if not args.images and not args.calibrate:
        parser.error("give one or more images (or --calibrate)")
    return args


def reading_line(reading):
    """The reader's verdict ('7 (99.2%)', 'unsure: ...', 'not a digit ...'), then all ten probabilities."""
    return f"{verdict(reading)}  " + " ".join(f"{d}:{p:.3f}" for d, p in enumerate(reading.probabilities))


def calibrate(model, weights, data_dir, overwrite):
    """Fit DigitFeatures on MNIST's training images (DigitFeatures.fit_on_mnist) and save them beside `weights`."""
    out = Path(weights).parent / FEATURES_FILE
    # before a minute of fitting; the file goes beside the weights, so their folder is the one to make writable
    with writing([out], overwrite, advice=f"{FEATURES_FILE} goes beside the weights: make that folder writable, or "
                                          f"copy the weights to one that is"):
        features = DigitFeatures.fit_on_mnist(model, data_dir)
        features.save(out)
    print(f"{out}: threshold {features.threshold:.1f} ({1 - DIGIT_QUANTILE:.1%} of held-out training digits "
          f"lie beyond it)")


def main(argv=None):
    args = parse_args(argv)
    model = load_model(args)
    weights = weights_path(args)
    if args.calibrate:
        calibrate(model, weights, args.data_dir, args.overwrite)
    features = load_features(weights)  # with --calibrate, those it has just written
    failed = False
    for path in args.images:
        try:
            prepared = load_digit(path)
        except UserError as error:
            print(f"{path}: error: {error}", file=sys.stderr)
            failed = True
            continue
        print(f"{path}: {reading_line(read_digit(model, prepared.digit, features, prepared.small))}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(run_main(main))
