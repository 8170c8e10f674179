"""Read your own handwritten digits with a trained S6 model.

    python s6_predict.py my_seven.png photo_of_a_three.jpg
    python s6_predict.py digit.png --model tiny    # TinyNet, the weights of results/tiny-seed1

A photo or scan of one digit, any size, in colour, on paper or a board, upright or turned by its EXIF
tag: each is made MNIST-like (the ink found on its writing surface, the light evened out, the stroke
brought to MNIST's width, cropped, fitted into 20x20 and centred by mass in 28x28) before the model
sees it. One line per image: the digit and its probability, or "unsure" with the two likeliest where
the network is not confident. A bad file prints an error line and the others still run; the exit
code is 1 if any image failed.
"""

import sys

from s6.cli import add_model_flags, load_model, parser_for, run_main
from s6.predictor import load_digit, read_digit


def parse_args(argv=None):
    parser = parser_for(__doc__)
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="PNG or JPEG files, one digit each")
    add_model_flags(parser)
    return parser.parse_args(argv)


def describe(reading):
    """'7 (99.2%)', or 'unsure: 7 (52.0%) or 1 (40.3%)', then all ten probabilities."""
    first, second, probabilities = reading.digit, reading.runner_up, reading.probabilities
    spread = " ".join(f"{d}:{p:.3f}" for d, p in enumerate(probabilities))
    if reading.unsure:
        return (f"unsure: {first} ({probabilities[first]:.1%}) or {second} ({probabilities[second]:.1%})"
                f"  {spread}")
    return f"{first} ({probabilities[first]:.1%})  {spread}"


def main(argv=None):
    args = parse_args(argv)
    model = load_model(args)
    failed = False
    for path in args.images:
        try:
            image = load_digit(path)
        except ValueError as error:
            print(f"{path}: error: {error}", file=sys.stderr)
            failed = True
            continue
        print(f"{path}: {describe(read_digit(model, image))}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(run_main(main))
