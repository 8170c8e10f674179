"""What makes S6's record, apart from the product: benchmarks, experiments, figures, and the sets of pictures that
measure the reader. Each runs from the repository's root as a module, `python -m tools.NAME --help`;
doc/reproducing.md gives the command behind every file they wrote.

ablation      what each ingredient of Net's recipe is worth: one taken away at a time, three seeds each
bench         the fast training path against the conventional one, and where a quick run's seconds go
experiments   from a 593,200-parameter baseline to Net: the seed's architectures, one run each
figures       the README's figures of a finished run
frontier      accuracy against parameters at the four budgets, beside public single runs
photo_digits  photo-like pictures of MNIST test digits, ten kinds of trouble
small_digits  small digits: shrunk, block-counted and scanned, 8x8 to 20x20
non_digits    pictures that are no digit: letters, doodles, digits side by side, blank paper
letters       letters and symbols in fonts and drawn strokes, split by font
"""
