"""Pictures that are no digit, as users try them on a digit reader: letters and symbols in the fonts that
matplotlib ships, random strokes, doodles (smileys, stars, hearts, houses, grids), two or three MNIST
test digits side by side, an MNIST test digit cut in half, and blank paper with grain or ruled lines.

Every picture is drawn here from a seed, so the set is the same on every machine with the same fonts;
nothing is stored but this script. The doodles and strokes are drawn as the app's sketchpad draws them
(a round black brush on a transparent 280x280 canvas) or as ink on paper, dark on light or light on dark,
at sizes from 16 to 600 pixels.

    python -m tools.non_digits --overwrite   # how the reader calls them -> results/non-digits.json,
                                             # and the trade-off figure -> doc/not-a-digit.png
"""

import sys
from pathlib import Path

import matplotlib
import numpy as np
import torch
from matplotlib.figure import Figure
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from s6.cli import add_overwrite_flag, parser_for, run_main
from s6.files import save_figure, save_json, writing
from s6.preparing import mnist_like, prepare
from s6.reading import DIGIT_QUANTILE, pooled_features, read_digit
from s6.results import markdown_table
from tools.photo_digits import ROOT, committed_reader

KINDS = ("letter", "symbol", "random strokes", "doodle", "digits side by side", "half a digit", "blank paper")
FONTS = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
LETTER_FONTS = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Italic.ttf",
                "DejaVuSansMono.ttf", "cmr10.ttf", "cmss10.ttf", "STIXGeneral.ttf", "STIXGeneralItalic.ttf")
# Letters that are not also a digit's shape in some hand (O, I, l, S, Z, B, b, g, q, G, D, T, J, i, j, o, s, z
# are left out: a reader may fairly see 0, 1, 5, 2, 8, 6, 9 in them)
LETTERS = "ACEFHKLMNPRUVWXYacdefhkmnprtuvwxy"
SYMBOLS = "#@&%*=~^<>€£¥§¶©®÷×±√∞πΣΩαβλµ♥★☺→♪✓"  # all in DejaVu Sans
DOODLES = ("smiley", "sad face", "star", "heart", "house", "spiral", "sun", "grid", "hatching", "wave",
           "checkerboard", "cross in a box")
CANVAS = 280  # the app's sketchpad
BRUSH = 16  # the app's default brush


def draw_on_canvas(paint, rng, width=None):
    """A 280x280 float mask (ink 1) drawn by `paint(draw, rng, width)` with a round brush."""
    image = Image.new("L", (CANVAS, CANVAS), 0)
    draw = ImageDraw.Draw(image)
    width = width or int(rng.integers(BRUSH - 6, BRUSH + 12))
    paint(draw, rng, width)
    return np.asarray(image, np.float32) / 255


def polyline(draw, points, width):
    points = [tuple(map(float, p)) for p in points]
    draw.line(points, fill=255, width=width, joint="curve")
    for x, y in (points[0], points[-1]):  # round ends, as a brush leaves them
        draw.ellipse((x - width / 2, y - width / 2, x + width / 2, y + width / 2), fill=255)


def circle(draw, centre, radius, width):
    x, y = centre
    draw.ellipse((x - radius, y - radius, x + radius, y + radius), outline=255, width=width)


def doodle(name):
    """A painter for one doodle, its shape jittered by the rng it is given."""
    def paint(draw, rng, width):
        j = lambda scale=12: rng.uniform(-scale, scale)  # noqa: E731  (a jitter, in canvas pixels)
        c = 140 + j(10)
        if name in ("smiley", "sad face"):
            r = 95 + j(15)
            circle(draw, (c, c), r, width)
            for dx in (-0.38, 0.38):
                eye = (c + dx * r + j(4), c - 0.3 * r + j(4))
                draw.ellipse((eye[0] - width * 0.7, eye[1] - width * 0.7, eye[0] + width * 0.7,
                              eye[1] + width * 0.7), fill=255)
            box = (c - 0.5 * r, c - 0.1 * r + (0.25 * r if name == "sad face" else 0), c + 0.5 * r,
                   c + 0.55 * r + (0.25 * r if name == "sad face" else 0))
            draw.arc(box, 200 if name == "sad face" else 20, 340 if name == "sad face" else 160, fill=255,
                     width=width)
        elif name == "star":
            angles = np.pi / 2 + np.arange(6) * 4 * np.pi / 5 + j(0.1)
            polyline(draw, [(c + 110 * np.cos(a), c - 110 * np.sin(a)) for a in angles], width)
        elif name == "heart":
            t = np.linspace(0, 2 * np.pi, 60)
            x, y = 16 * np.sin(t) ** 3, 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)
            s = 6 + j(0.8)
            polyline(draw, list(zip(c + s * x, c - s * y - 10, strict=True)), width)
        elif name == "house":
            left, right, top, bottom = 60 + j(), 220 + j(), 130 + j(), 240 + j()
            polyline(draw, [(left, top), (left, bottom), (right, bottom), (right, top), (left, top),
                            ((left + right) / 2 + j(), 40 + j()), (right, top)], width)
        elif name == "spiral":
            t = np.linspace(0, 5 * np.pi + j(1), 120)
            polyline(draw, list(zip(c + 7 * t * np.cos(t), c + 7 * t * np.sin(t), strict=True)), width)
        elif name == "sun":
            circle(draw, (c, c), 45 + j(8), width)
            for a in np.arange(8) * np.pi / 4 + j(0.2):
                polyline(draw, [(c + 70 * np.cos(a), c + 70 * np.sin(a)), (c + 120 * np.cos(a),
                                                                              c + 120 * np.sin(a))], width)
        elif name == "grid":
            for k in np.linspace(50, 230, 4):
                polyline(draw, [(k + j(6), 30 + j()), (k + j(6), 250 + j())], width)
                polyline(draw, [(30 + j(), k + j(6)), (250 + j(), k + j(6))], width)
        elif name == "hatching":
            for k in np.linspace(-120, 120, 7):
                polyline(draw, [(c + k - 90, c + 90 + j(6)), (c + k + 90, c - 90 + j(6))], width // 2 + 3)
        elif name == "wave":
            x = np.linspace(20, 260, 80)
            polyline(draw, list(zip(x, c + 50 * np.sin(x / 25 + j(3)), strict=True)), width)
        elif name == "checkerboard":
            side = 56
            for row in range(4):
                for col in range(4):
                    if (row + col) % 2 == 0:
                        draw.rectangle((28 + col * side, 28 + row * side, 28 + (col + 1) * side,
                                        28 + (row + 1) * side), fill=255)
        elif name == "cross in a box":
            left, top, right, bottom = 50 + j(), 50 + j(), 230 + j(), 230 + j()
            polyline(draw, [(left, top), (right, top), (right, bottom), (left, bottom), (left, top)], width)
            polyline(draw, [(left, top), (right, bottom)], width)
            polyline(draw, [(right, top), (left, bottom)], width)
    return paint


def random_strokes(draw, rng, width):
    for _ in range(int(rng.integers(2, 5))):
        points = rng.uniform(30, 250, (int(rng.integers(2, 5)), 2))
        polyline(draw, points, width)


def glyph(char, font_file, rng):
    """A character drawn in a font, as a 280x280 float mask, about 200 pixels tall."""
    font = ImageFont.truetype(str(FONTS / font_file), int(rng.integers(170, 230)))
    image = Image.new("L", (CANVAS, CANVAS), 0)
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = draw.textbbox((0, 0), char, font=font)
    draw.text(((CANVAS - right - left) / 2, (CANVAS - bottom - top) / 2), char, fill=255, font=font)
    return np.asarray(image, np.float32) / 255


def side_by_side(digits, rng):
    """Two or three MNIST digits (uint8, light on dark) next to each other, a few pixels apart."""
    count = int(rng.integers(2, 4))
    pieces = []
    for digit in digits[:count]:
        cols = np.flatnonzero(digit.max(0) > 30)
        pieces += [digit[:, cols.min():cols.max() + 1], np.zeros((28, int(rng.integers(1, 5))), np.uint8)]
    return np.pad(np.concatenate(pieces[:-1], 1), ((0, 0), (4, 4))).astype(np.float32) / 255


def half_a_digit(digit, rng):
    """An MNIST digit (uint8) with its right or its bottom half erased, at the middle of its ink."""
    out = digit.astype(np.float32) / 255
    rows, cols = np.nonzero(digit > 30)
    if rng.random() < 0.5:
        out[:, (cols.min() + cols.max() + 1) // 2:] = 0
    else:
        out[(rows.min() + rows.max() + 1) // 2:, :] = 0
    return out


def blank_paper(rng):
    """Light paper with grain, some with ruled or squared lines: a grey PIL image 300-600 pixels wide."""
    size = int(rng.integers(300, 600))
    paper = rng.uniform(200, 245) + ndimage.gaussian_filter(rng.normal(0, 6, (size, size)), 1.5)
    style = rng.integers(3)
    if style:  # ruled (1) or squared (2), in a faint blue-grey
        step = int(rng.integers(size // 12, size // 6))
        paper[step // 2::step, :] -= 45
        if style == 2:
            paper[:, step // 2::step] -= 45
    return Image.fromarray(np.uint8(np.clip(paper, 0, 255)))


def on_sketchpad(mask):
    """A 280x280 float mask (ink 1) as the app's sketchpad hands it over: black ink on a transparent RGBA canvas."""
    alpha = np.uint8(mask * 255)
    return Image.fromarray(np.dstack([np.zeros_like(alpha)] * 3 + [alpha]), "RGBA")


def smiley(seed=0):
    """A smiley drawn on the app's sketchpad with its default brush."""
    return on_sketchpad(draw_on_canvas(doodle("smiley"), np.random.default_rng(seed), width=BRUSH))


def as_picture(mask, rng):
    """A float mask (ink 1) as a user's picture: drawn on the sketchpad (transparent, black ink), or saved
    small or large, dark on light or light on dark, sometimes with paper's grain."""
    style = rng.random()
    if style < 0.25 and mask.shape == (CANVAS, CANVAS):
        return on_sketchpad(mask)
    height = int(rng.choice([16, 24, 28, 40, 64, 120, 280, 400]))
    width = max(1, round(height * mask.shape[1] / mask.shape[0]))
    small = np.asarray(Image.fromarray(mask, "F").resize((width, height), Image.Resampling.BOX))
    if rng.random() < 0.3:  # light on dark, as MNIST
        return Image.fromarray(np.uint8(np.clip(small, 0, 1) * 255))
    paper = rng.uniform(215, 250) + (rng.normal(0, 3, small.shape) if height > 64 else 0)
    ink = rng.uniform(10, 60)
    return Image.fromarray(np.uint8(np.clip(paper * (1 - small) + ink * small, 0, 255)))


def non_digits(digits, seed=0):
    """[(kind, PIL image)]: 180 pictures that are no digit. `digits`: MNIST test digits (uint8, (N, 28, 28)),
    at least 60, for the pictures made of digits."""
    rng = np.random.default_rng(seed)
    pictures = []
    for i, char in enumerate(LETTERS * 2):
        if i < 50:
            pictures.append(("letter", as_picture(glyph(char, LETTER_FONTS[i % len(LETTER_FONTS)], rng), rng)))
    for char in SYMBOLS:
        pictures.append(("symbol", as_picture(glyph(char, "DejaVuSans.ttf", rng), rng)))
    for _ in range(20):
        pictures.append(("random strokes", as_picture(draw_on_canvas(random_strokes, rng), rng)))
    for i in range(30):
        pictures.append(("doodle", as_picture(draw_on_canvas(doodle(DOODLES[i % len(DOODLES)]), rng), rng)))
    for i in range(20):
        pictures.append(("digits side by side", as_picture(side_by_side(digits[3 * i:3 * i + 3], rng), rng)))
    not_ones = [digit for digit in digits[60:] if (digit > 30).sum(0).astype(bool).sum() > 10][:15]
    for digit in not_ones:  # a 1 is narrow: half of one is still a 1
        pictures.append(("half a digit", as_picture(half_a_digit(digit, rng), rng)))
    for _ in range(10):
        pictures.append(("blank paper", blank_paper(rng)))
    return pictures


def verdicts(model, features, pictures):
    """[(verdict, distance, unsure)] for PIL pictures: 'blank', 'not a digit', 'unsure' or 'digit' as the
    reader says, the squared feature distance to the nearest digit class (None for a blank), and whether
    the network is unsure of its digit, whatever the distance."""
    out = []
    for picture in pictures:
        try:
            prepared = prepare(picture)
        except ValueError:
            out.append(("blank", None, True))
            continue
        reading = read_digit(model, prepared.digit, features, prepared.small)
        verdict = "not a digit" if reading.not_a_digit else "unsure" if reading.unsure else "digit"
        out.append((verdict, reading.distance, reading.unsure))
    return out


def mnist_test_distances(model, features, images, labels):
    """(distances, read right) of MNIST test digits (uint8 (N, 28, 28)) saved as PNG and made MNIST-like
    by the reader: the squared feature distance of each, and whether the network's likeliest digit is its
    label."""
    digits = torch.stack([mnist_like(Image.fromarray(image)) for image in images.numpy()])
    with torch.inference_mode():
        pooled, logits = zip(*(pooled_features(model, batch) for batch in digits.split(1000)), strict=True)
    return features.distances(torch.cat(pooled)), torch.cat(logits).argmax(1) == labels


def plot_trade_off(path, digit_distances, other_distances, other_caught_anyway, threshold):
    """The share of non-digits caught against the share of digits lost as the threshold moves, to `path`."""
    thresholds = np.geomspace(20, 5000, 300)
    lost = [(digit_distances > t).mean() for t in thresholds]
    caught = [((other_distances > t) | other_caught_anyway).mean() for t in thresholds]
    figure = Figure(figsize=(6.4, 4.2))
    axes = figure.subplots()
    axes.plot(np.array(lost) * 100, np.array(caught) * 100, color="tab:blue")
    axes.plot([(digit_distances > threshold).mean() * 100], [((other_distances > threshold) |
                                                             other_caught_anyway).mean() * 100],
              "o", color="tab:red", label=f"the threshold, {threshold:.0f}: {1 - DIGIT_QUANTILE:.1%} of held-out "
                                          "training digits")
    axes.set_xscale("symlog", linthresh=0.1)
    axes.set_xlim(0, 100)
    axes.set_ylim(0, 101)
    axes.set_xlabel("MNIST test digits read right, called not a digit (%)")
    axes.set_ylabel("non-digits called not a digit, unsure or blank (%)")
    axes.set_title("Not a digit: the threshold on the feature distance")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    figure.tight_layout()
    save_figure(path, figure)


def table(record):
    """doc/reader.md's markdown table of `record`, as `main` writes it to results/non-digits.json: how the
    reader called the pictures of each kind."""
    return markdown_table([{"kind": kind, "pictures": counts["pictures"], "not a digit": counts["not a digit"],
                            "unsure": counts["unsure"], "blank": counts["blank"], "read as a digit": counts["digit"]}
                           for kind, counts in record["per_kind"].items()])


def main(argv=None):
    parser = parser_for(__doc__)
    parser.add_argument("--out", default=ROOT / "results" / "non-digits.json", type=Path,
                        help="where to write the counts (default: results/non-digits.json)")
    parser.add_argument("--plot", default=ROOT / "doc" / "not-a-digit.png", type=Path,
                        help="where to draw the trade-off (default: doc/not-a-digit.png)")
    add_overwrite_flag(parser, "--out and --plot")
    args = parser.parse_args(argv)
    with writing([args.out], args.overwrite, figures=[args.plot]) as (out, figure):
        torch.set_num_threads(1)
        model, features, test = committed_reader()
        pictures = non_digits(test.data.numpy())
        said = verdicts(model, features, [picture for _, picture in pictures])
        per_kind = {kind: {"pictures": 0, "not a digit": 0, "unsure": 0, "blank": 0, "digit": 0} for kind in KINDS}
        for (kind, _), (verdict, _, _) in zip(pictures, said, strict=True):
            per_kind[kind]["pictures"] += 1
            per_kind[kind][verdict] += 1
        caught = sum(verdict != "digit" for verdict, _, _ in said) / len(said)
        distances, right = mnist_test_distances(model, features, test.data, test.targets)
        lost = ((distances > features.threshold) & right).sum().item() / right.sum().item()
        record = {"threshold": features.threshold, "non-digits": len(said), "caught": caught, "per_kind": per_kind,
                  "mnist test digits read right": int(right.sum()), "share of them called not a digit": lost}
        save_json(out, record)
        other = np.array([np.inf if distance is None else distance for _, distance, _ in said])
        anyway = np.array([unsure for _, _, unsure in said])
        plot_trade_off(figure, distances[right].numpy(), other, anyway, features.threshold)
        print(table(record))
        print(f"caught {caught:.1%} of {len(said)} non-digits; {lost:.2%} of the {int(right.sum())} MNIST test digits "
              f"read right called not a digit (threshold {features.threshold:.1f}) -> {out}, {figure}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
