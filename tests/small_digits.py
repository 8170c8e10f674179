"""Small pictures of MNIST test digits, as old scanner sets and icons hold them: each digit shrunk by area
averaging to 8x8, 12x12, 16x16, 20x20 or 12 wide by 16 tall, light on dark as MNIST has it or dark on light.

The yardstick is the network itself, given the same shrunken digit upscaled and nothing more: bilinear into
MNIST's 20x20 box (the longer side 20 pixels), centred in 28x28. The reader should read as many right, and
be confidently wrong on at most 1% of them.

    python tests/small_digits.py --overwrite   # reader and yardstick, 2,000 test digits -> results/small-digits.json
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from photo_digits import ROOT, committed_reader, outcome
from PIL import Image

SIZES = ((8, 8), (12, 12), (16, 16), (20, 20), (12, 16))  # (width, height)
POLARITIES = ("light on dark", "dark on light")
# the columns of doc/reader.md's table: the key of each share in a size's figures, and its heading
COLUMNS = {"yardstick accuracy": "network, plainly upscaled", "reader accuracy": "reader: names the right digit",
           "reader sure and right": "reader: sure and right", "reader confidently wrong": "reader: confidently wrong",
           "reader not a digit": "reader: not a digit"}


def shrunk(digit, size, polarity):
    """An MNIST digit (28x28 uint8, light on dark) shrunk to `size` (width, height) by area averaging."""
    picture = Image.fromarray(digit if polarity == "light on dark" else 255 - digit)
    return picture.resize(size, Image.Resampling.BOX)


def plainly_upscaled(picture):
    """A small light-on-dark picture upscaled bilinearly into a 20x20 box centred in 28x28: a float
    array in [0, 1] (28, 28), before normalisation."""
    width, height = picture.size
    size = (max(1, round(20 * width / max(picture.size))), max(1, round(20 * height / max(picture.size))))
    canvas = np.zeros((28, 28), np.float32)
    top, left = (28 - size[1]) // 2, (28 - size[0]) // 2
    canvas[top:top + size[1], left:left + size[0]] = np.asarray(
        picture.resize(size, Image.Resampling.BILINEAR), np.float32) / 255
    return canvas


def small_digit_figures(model, features, digits, labels, size):
    """{'yardstick accuracy', 'reader accuracy', 'reader sure and right', 'reader confidently wrong',
    'reader not a digit'} (shares of the digits, both polarities together) at one `size`.

    Reader accuracy counts the digit the reader names first, sure or unsure, but not a "not a digit"; the
    yardstick's is the network's likeliest digit on the plainly upscaled picture (light on dark).
    """
    import torch

    from s6.data import normalize
    from s6.preparing import prepare
    from s6.reading import read_digit

    upscaled = normalize(torch.from_numpy(np.stack([plainly_upscaled(shrunk(d, size, "light on dark"))
                                                    for d in digits])).unsqueeze(1))
    with torch.inference_mode():
        yardstick = (model(upscaled).argmax(1).numpy() == labels).mean()
    named_right, outcomes = [], []
    for polarity in POLARITIES:
        for digit, label in zip(digits, labels, strict=True):
            prepared = prepare(shrunk(digit, size, polarity))
            reading = read_digit(model, prepared.digit, features, prepared.digit_size)
            named_right.append(reading.digit == label and not reading.not_a_digit)
            outcomes.append(outcome(reading, label))
    return {"yardstick accuracy": float(yardstick), "reader accuracy": float(np.mean(named_right)),
            "reader sure and right": outcomes.count("right") / len(outcomes),
            "reader confidently wrong": outcomes.count("wrong") / len(outcomes),
            "reader not a digit": outcomes.count("not a digit") / len(outcomes)}


def table(record):
    """doc/reader.md's markdown table of `record`, as `main` writes it to results/small-digits.json: a row per
    size, each share of the digits as a percentage with one decimal."""
    from s6.cli import markdown_table

    return markdown_table([{"size": size, **{heading: f"{figures[key]:.1%}" for key, heading in COLUMNS.items()}}
                           for size, figures in record["per_size"].items()])


def main(argv=None):
    sys.path.insert(0, str(ROOT))
    import torch

    from s6.cli import add_overwrite_flag, refuse_to_replace

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=2000, help="test digits to shrink, the first ones")
    parser.add_argument("--out", default=ROOT / "results" / "small-digits.json", type=Path,
                        help="where to write the figures (default: results/small-digits.json)")
    add_overwrite_flag(parser, "--out")
    args = parser.parse_args(argv)
    out = args.out
    refuse_to_replace([out], args.overwrite)
    torch.set_num_threads(1)
    model, features, test = committed_reader()
    digits, labels = test.data[:args.count].numpy(), test.targets[:args.count].numpy()
    figures = {f"{w}x{h}": small_digit_figures(model, features, digits, labels, (w, h)) for w, h in SIZES}
    record = {"digits": args.count, "per_size": figures}
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"Shares of {args.count} test digits, both polarities:\n{table(record)}\n-> {out}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    from s6.cli import run_main

    sys.exit(run_main(main))
