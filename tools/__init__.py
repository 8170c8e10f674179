"""What makes S6's record, apart from the product: benchmarks, experiments, figures, and the sets of pictures that
measure the reader. Each runs from the repository's root as a module, `python -m tools.NAME --help`;
doc/reproducing.md gives the command behind every file they wrote.

ablation        what each ingredient of Net's recipe is worth: one taken away at a time, three seeds each
app_screenshot  the app's page after a drawn 7, doc/app.png
bench           the fast training path against the conventional one, and where a quick run's seconds go
experiments     from a 593,200-parameter baseline to Net: the first README's designs, one run each
figures         the figures of a finished run, and a sweep's curves of its seeds
frontier        accuracy against parameters at the four budgets, beside public single runs
networks        (imported, not run) the lab's networks: the designs that led to Net, and Net with one ingredient taken
                away
photo_digits    photo-like pictures of MNIST test digits, ten kinds of trouble
small_digits    small digits: shrunk, block-counted and scanned, 8x8 to 20x20
non_digits      pictures that are no digit: letters, doodles, digits side by side, blank paper
letters         letters and symbols in fonts and drawn strokes, split by font

`record(name)` reads a committed record, results/<name>, for the tables that the documents' cog blocks print.
"""

from pathlib import Path

from s6.files import read_json

ROOT = Path(__file__).resolve().parent.parent


def record(name):
    """The committed record results/<name> (a JSON object), which the documents' tables are written from (cog)."""
    return read_json(ROOT / "results" / name, lambda data: isinstance(data, dict),
                     "make it again with the command doc/reproducing.md gives")
