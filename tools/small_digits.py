"""Small pictures of MNIST test digits, three ways that small digit pictures are made:

- *MNIST shrunk*: the 28x28 digit shrunk by area averaging to 8x8, 12x12, 16x16, 20x20 or 12 wide by 16 tall, as an
  icon or a thumbnail is made;
- *block-counted*: the digit as a 32x32 binary bitmap that fills it, strokes thickened by 0, 1 or 2 pixels, its
  pixels counted in blocks into 8x8 (17 grey levels) or 16x16 cells (5): how low-resolution digit sets are made
  (the UCI "optdigits" preprocessing of NIST's forms), with thick strokes and few grey levels;
- *small scan*: the digit on paper scanned at 10 to 16 pixels square, with a margin, paper and ink of their own
  shades, the blur and grain of a cheap scanner.

Each light on dark, as MNIST has it, and dark on light. The yardstick is the network itself, given the light-on-dark
picture plainly upscaled and nothing more: bilinear into MNIST's 20x20 box (the longer side 20 pixels), centred by
mass in 28x28, as MNIST's digits are. The reader should name at least as many digits right as the yardstick, with
no more confidently wrong.

Every set is split by writer: MNIST's first 5,000 test digits come from NIST's Special Database 3 (Census Bureau
employees), its last 5,000 from Special Database 1 (high-school students), two groups of writers with no one in
both. The reader's settings were chosen on the first group's digits; the second's are reported.

    python -m tools.small_digits --overwrite   # reader and yardstick -> results/small-digits.json
"""

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy import ndimage

from s6.cli import add_overwrite_flag, parser_for, run_main
from s6.files import save_json, writing
from s6.preparing import plainly_upscaled as upscaled
from s6.preparing import prepare
from s6.reading import MIN_PROBABILITY, read_digit
from s6.results import markdown_table
from tools.photo_digits import ROOT, committed_reader, outcome

POLARITIES = ("light on dark", "dark on light")
# the writer groups: where each part's digits start among MNIST's test digits, and who wrote them
PARTS = {"chosen on": (0, "NIST SD-3, Census Bureau employees"), "reported": (5000, "NIST SD-1, students")}
# the columns of doc/reader.md's table: the key of each share in a size's figures, and its heading
COLUMNS = {"yardstick accuracy": "plainly upscaled: right", "yardstick confidently wrong": "plainly upscaled: "
           "confidently wrong", "reader accuracy": "reader: names the right digit",
           "reader sure and right": "reader: sure and right", "reader confidently wrong": "reader: confidently wrong",
           "reader not a digit": "reader: not a digit"}


def shrunk(digit, size, polarity, index):
    """An MNIST digit (28x28 uint8, light on dark) shrunk to `size` (width, height) by area averaging."""
    picture = Image.fromarray(digit if polarity == "light on dark" else 255 - digit)
    return picture.resize(size, Image.Resampling.BOX)


def block_counted(digit, size, polarity, index):
    """The digit as a 32x32 binary bitmap (its longer side filling it, centred), its strokes thickened by
    index % 3 pixels, then the on-pixels of each block counted into `size` cells: 17 grey levels at 8x8."""
    gray = digit.astype(np.float32) / 255
    rows, cols = np.nonzero(gray > 0.5)
    crop = gray[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    height, width = crop.shape
    fitted = (max(1, round(32 * width / max(height, width))), max(1, round(32 * height / max(height, width))))
    bitmap = np.zeros((32, 32), bool)
    top, left = (32 - fitted[1]) // 2, (32 - fitted[0]) // 2
    bitmap[top:top + fitted[1], left:left + fitted[0]] = np.asarray(
        Image.fromarray(crop, "F").resize(fitted, Image.Resampling.BILINEAR)) > 0.5
    bitmap = ndimage.binary_dilation(bitmap, iterations=index % 3) if index % 3 else bitmap
    block = 32 // size[0]
    counts = bitmap.reshape(size[1], block, size[0], block).sum((1, 3))  # 0 .. block**2
    ink = np.uint8(np.round(counts * 255 / block ** 2))
    return Image.fromarray(ink if polarity == "light on dark" else 255 - ink)


def small_scan(digit, size, polarity, index):
    """The digit scanned at `size` pixels: 70-90% of the picture, off centre by up to half its margin, blurred a
    little, on paper of its own shade with ink of its own, with grain; drawn from a seed of `index`."""
    rng = np.random.default_rng(index)
    gray = digit.astype(np.float32) / 255
    rows, cols = np.nonzero(gray > 0.1)
    crop = gray[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    height, width = crop.shape
    box = size[0] * rng.uniform(0.7, 0.9)
    fitted = (max(1, round(box * width / max(height, width))), max(1, round(box * height / max(height, width))))
    canvas = np.zeros((size[1], size[0]), np.float32)
    top = ((size[1] - fitted[1]) // 2 + int(rng.integers(0, size[1] - fitted[1] + 1))) // 2
    left = ((size[0] - fitted[0]) // 2 + int(rng.integers(0, size[0] - fitted[0] + 1))) // 2
    canvas[top:top + fitted[1], left:left + fitted[0]] = np.asarray(
        Image.fromarray(crop, "F").resize(fitted, Image.Resampling.BOX))
    canvas = np.clip(ndimage.gaussian_filter(canvas, rng.uniform(0.2, 0.5)), 0, 1)
    ground, ink = rng.uniform(0.8, 0.95), rng.uniform(0.05, 0.3)
    if polarity == "light on dark":
        ground, ink = 1 - ground, 1 - ink
    picture = ground + (ink - ground) * canvas + rng.normal(0, 0.02, canvas.shape)
    return Image.fromarray(np.uint8(np.clip(picture, 0, 1) * 255))


# set -> (how a picture is made, the sizes (width, height))
SETS = {"MNIST shrunk": (shrunk, ((8, 8), (12, 12), (16, 16), (20, 20), (12, 16))),
        "block-counted": (block_counted, ((8, 8), (16, 16))),
        "small scan": (small_scan, ((10, 10), (12, 12), (14, 14), (16, 16)))}


def plainly_upscaled(picture):
    """The yardstick's input: a small light-on-dark PIL picture grown bilinearly into a 20x20 box and centred by
    mass in 28x28, normalised (1, 28, 28): the reader's own plainly upscaled preparation, of the picture as it is."""
    return upscaled(np.asarray(picture, np.float32) / 255)


def small_digit_figures(model, features, digits, labels, make, size, first_index=0):
    """{'yardstick accuracy', 'yardstick confidently wrong', 'reader accuracy', 'reader sure and right',
    'reader confidently wrong', 'reader not a digit'}: shares of the digits (uint8 (N, 28, 28), labels (N,)) made
    into pictures by `make` at one `size`; the reader's over both polarities. `first_index`: the first digit's
    index in MNIST's test set, which seeds what `make` draws.

    Reader accuracy counts the digit the reader names first, sure or unsure, but not a "not a digit"; the
    yardstick's is the network's likeliest digit on the plainly upscaled light-on-dark picture, and it is
    confidently wrong where that is wrong at MIN_PROBABILITY or more.
    """
    indices = range(first_index, first_index + len(digits))
    upscaled = torch.stack([plainly_upscaled(make(digit, size, "light on dark", index))
                            for digit, index in zip(digits, indices, strict=True)])
    with torch.inference_mode():
        probabilities = torch.softmax(model(upscaled), 1)
    confidence, likeliest = probabilities.max(1)
    yardstick_right = likeliest.numpy() == labels
    named_right, outcomes = [], []
    for polarity in POLARITIES:
        for digit, label, index in zip(digits, labels, indices, strict=True):
            prepared = prepare(make(digit, size, polarity, index))
            reading = read_digit(model, prepared.digit, features, prepared.small)
            named_right.append(reading.digit == label and not reading.not_a_digit)
            outcomes.append(outcome(reading, label))
    return {"yardstick accuracy": float(yardstick_right.mean()),
            "yardstick confidently wrong": float((~yardstick_right & (confidence.numpy() >= MIN_PROBABILITY)).mean()),
            "reader accuracy": float(np.mean(named_right)),
            "reader sure and right": outcomes.count("right") / len(outcomes),
            "reader confidently wrong": outcomes.count("wrong") / len(outcomes),
            "reader not a digit": outcomes.count("not a digit") / len(outcomes)}


def table(record):
    """doc/reader.md's markdown table of `record`, as `main` writes it to results/small-digits.json: a row per set,
    size and part, each share of the digits as a percentage with one decimal."""
    return markdown_table([{"set": name, "size": size, "part": part,
                            **{heading: f"{figures[key]:.1%}" for key, heading in COLUMNS.items()}}
                           for name, sizes in record["sets"].items() for size, parts in sizes.items()
                           for part, figures in parts.items()])


def main(argv=None):
    parser = parser_for(__doc__)
    parser.add_argument("--count", type=int, default=1000, help="test digits of each writer group")
    parser.add_argument("--out", default=ROOT / "results" / "small-digits.json", type=Path,
                        help="where to write the figures (default: results/small-digits.json)")
    add_overwrite_flag(parser, "--out")
    args = parser.parse_args(argv)
    with writing([args.out], args.overwrite) as (out,):
        torch.set_num_threads(1)
        model, features, test = committed_reader()
        figures = {}
        for name, (make, sizes) in SETS.items():
            for width, height in sizes:
                for part, (first, _) in PARTS.items():
                    digits = test.data[first:first + args.count].numpy()
                    labels = test.targets[first:first + args.count].numpy()
                    figures.setdefault(name, {}).setdefault(f"{width}x{height}", {})[part] = small_digit_figures(
                        model, features, digits, labels, make, (width, height), first)
        record = {"digits per part": args.count, "parts": {part: writers for part, (_, writers) in PARTS.items()},
                  "sets": figures}
        save_json(out, record)
        print(f"Shares of {args.count} test digits per part, both polarities:\n{table(record)}\n-> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
