"""Letters and symbols, which a digit reader should not read as digits: the whole alphabet in upper and lower case
and & # % ? @ $, less the look-alikes (LOOK_ALIKES), in TrueType fonts and drawn stroke by stroke as the app's
brush draws, at its pen widths and slanted either way.

The stroke fonts are the Hershey fonts (public-domain vector fonts of 1967, several of them in a hand's single
stroke: futural, cursive, scripts, ...), from the `Hershey-Fonts` package; the TrueType fonts are those matplotlib
ships. The set is split by font (FONT_PARTS): thresholds and variants are chosen on the "chosen on" fonts, and the
"reported" fonts, none of them among those, are reported.

    python -m tools.letters --overwrite   # how the reader calls them -> results/letters.json
"""

import sys
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from s6.cli import add_overwrite_flag, parser_for, run_main
from s6.files import save_json, writing
from s6.results import markdown_table
from tools.non_digits import BRUSH, CANVAS, as_picture, draw_on_canvas, glyph, on_sketchpad, polyline, verdicts
from tools.photo_digits import ROOT, committed_reader

# Letters a reader may fairly see as a digit in some hand, by that digit: left out of the set
LOOK_ALIKES = {"0": "OoDQ", "1": "IlijJ", "2": "Zz", "5": "Ss", "6": "bG", "8": "B", "9": "gq"}
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz&#%?@$"
CHARACTERS = [char for char in ALPHABET if char not in "".join(LOOK_ALIKES.values())]
# part -> (TrueType fonts, Hershey stroke fonts)
FONT_PARTS = {"chosen on": (("DejaVuSans.ttf", "DejaVuSerif-Italic.ttf", "cmr10.ttf", "STIXGeneral.ttf"),
                       ("futural", "cursive", "rowmand", "timesr", "scriptc")),
         "reported": (("DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf", "cmss10.ttf",
                       "STIXGeneralItalic.ttf"), ("futuram", "scripts", "rowmans", "timesi", "timesrb", "rowmant"))}
_STROKE_FONTS = {}


def stroke_glyph(char, font, rng):
    """A character of a Hershey font drawn with a round brush of the app's widths, slanted by up to 14 degrees
    either way, about 190 pixels tall, as a 280x280 float mask (ink 1)."""
    from HersheyFonts import HersheyFonts

    if font not in _STROKE_FONTS:
        _STROKE_FONTS[font] = HersheyFonts()
        _STROKE_FONTS[font].load_default_font(font)
    # in the font's coordinates y grows downwards, as in the picture's
    strokes = [np.array(stroke, float) for stroke in _STROKE_FONTS[font].strokes_for_text(char)]
    slant = rng.uniform(-0.25, 0.25)
    for stroke in strokes:
        stroke[:, 0] -= slant * stroke[:, 1]
    points = np.concatenate(strokes)
    low, high = points.min(0), points.max(0)
    scale, centre = rng.uniform(160, 220) / max((high - low).max(), 1e-6), (low + high) / 2
    width = int(rng.integers(BRUSH - 6, BRUSH + 12))

    def paint(draw, rng, width):
        for stroke in strokes:
            polyline(draw, CANVAS / 2 + scale * (stroke - centre), width)
    return draw_on_canvas(paint, rng, width)


def letters(part, seed=0):
    """[(character, font, PIL picture)] of one part of FONT_PARTS: every character in each TrueType font once and in
    each stroke font twice (two pens and slants), as a user's picture: a stroke-drawn one half the time as the
    app's sketchpad hands it over, the others saved small or large, either polarity (non_digits.as_picture)."""
    rng = np.random.default_rng([seed, list(FONT_PARTS).index(part)])
    true_type, stroke_fonts = FONT_PARTS[part]
    pictures = []
    for char in CHARACTERS:
        for font in true_type:
            pictures.append((char, font, as_picture(glyph(char, font, rng), rng)))
        for font in stroke_fonts:
            for _ in range(2):
                mask = stroke_glyph(char, font, rng)
                pictures.append((char, font, on_sketchpad(mask) if rng.random() < 0.5 else as_picture(mask, rng)))
    return pictures


def part_figures(model, features, part):
    """{'pictures', 'caught' (share not a digit, unsure or blank), 'not a digit', 'unsure', 'read as a digit',
    'read as a digit by character'} for one part."""
    pictures = letters(part)
    said = [verdict for verdict, _, _ in verdicts(model, features, [picture for _, _, picture in pictures])]
    counts = Counter(said)
    as_digit = Counter(char for (char, _, _), verdict in zip(pictures, said, strict=True) if verdict == "digit")
    return {"pictures": len(said), "caught": 1 - counts["digit"] / len(said), "not a digit": counts["not a digit"],
            "unsure": counts["unsure"], "blank": counts["blank"], "read as a digit": counts["digit"],
            "read as a digit by character": dict(as_digit.most_common())}


def table(record):
    """doc/reader.md's markdown table of `record` (results/letters.json): a row per part."""
    return markdown_table([{"part": part, "fonts": len(FONT_PARTS[part][0]) + len(FONT_PARTS[part][1]),
                            "pictures": figures["pictures"], "not a digit": figures["not a digit"],
                            "unsure": figures["unsure"], "read as a digit": figures["read as a digit"],
                            "caught": f"{figures['caught']:.1%}"} for part, figures in record["parts"].items()])


def main(argv=None):
    parser = parser_for(__doc__)
    parser.add_argument("--out", default=ROOT / "results" / "letters.json", type=Path,
                        help="where to write the counts (default: results/letters.json)")
    add_overwrite_flag(parser, "--out")
    args = parser.parse_args(argv)
    with writing([args.out], args.overwrite):
        torch.set_num_threads(1)
        model, features, _ = committed_reader()
        record = {"characters": "".join(CHARACTERS), "left out": LOOK_ALIKES,
                  "fonts": {part: list(true_type + strokes) for part, (true_type, strokes) in FONT_PARTS.items()},
                  "parts": {part: part_figures(model, features, part) for part in FONT_PARTS}}
        save_json(args.out, record)
        print(f"{table(record)}\n-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
