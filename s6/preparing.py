"""Preparing a user's digit: a picture of one digit made MNIST-like, for the network to read (s6/reading.py).

MNIST's digits are light strokes on black, about 20 pixels tall, centred by mass in 28x28. A photo is
anything but: a digit in dark ink on light paper (or chalk on a board), under uneven light, often
with a desk around the paper, rotated by an EXIF tag, large. `mnist_like` finds the writing surface
and the ink on it, evens out the light, brings the pen's stroke to MNIST's width, and crops, scales
and centres the digit as MNIST did. A small picture (an icon, an old scanner's 8x8 or 16x16 digit)
has strokes a pixel or two wide whose grey edges carry the shape: it is read from its grey levels,
its ink measured against the contrast of the picture itself, and prepared in both polarities, each
sharpened and plainly upscaled, for the reader to weigh.
"""

import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage

from s6.config import UserError
from s6.data import normalize

WORKING_SIZE = 256  # pixels along the longer side: plenty for one digit, and quick
# Pictures up to this many pixels on their longer side are read from their grey levels (grey_ink):
# there a stroke is a few pixels wide at most, and thresholding it into a mask would lose its shape.
SMALL_PICTURE = 64
# A picture whose ink differs from its ground by less than this (of the full range) holds nothing visible.
MIN_CONTRAST = 0.05
# Where sharpened() starts its contrast stretch: the value that reads the most small training digits right
# (doc/reader.md).
SHARPEN_FROM = 0.2
STROKE_WIDTH = 2.75  # MNIST's median stroke, in pixels of its 20-pixel digit box (see even_stroke)


def to_gray(image, working_size=WORKING_SIZE):
    """A PIL image, upright as its EXIF tag says, as a float array in [0, 1], resized to `working_size` pixels
    along its longer side (None: as it is); transparency becomes the ground that what is drawn was drawn on
    (`transparent_ground`), so dark ink on a transparent PNG reads as dark ink on white."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        image = on_its_ground(image)
    scale = 1 if working_size is None else working_size / max(image.size)
    if scale != 1:  # small pictures grow too, so that a stroke spans a few pixels
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                             Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC)
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):  # 16-bit or float greys: their own range
        values = np.asarray(image, dtype=np.float32)
        return (values - values.min()) / max(values.max() - values.min(), 1e-6)
    return np.asarray(image.convert("L"), dtype=np.float32) / 255


def on_its_ground(image):
    """A picture with transparency laid on the ground it was drawn on (`transparent_ground`), as a grey ("L") image
    of its own size, composited in 8 bits as PIL does it (a large picture costs no float copies). The ground is
    judged at WORKING_SIZE, where the strokes of even a small picture are several pixels wide."""
    rgba = image.convert("RGBA")
    judged = WORKING_SIZE / max(rgba.size)
    resized = np.asarray(rgba.resize((max(1, round(rgba.width * judged)), max(1, round(rgba.height * judged))),
                                     Image.Resampling.BICUBIC), dtype=np.float32) / 255
    ground = round(255 * transparent_ground(resized[..., :3].mean(-1), resized[..., 3] > 0.5))
    return Image.alpha_composite(Image.new("RGBA", rgba.size, (ground, ground, ground, 255)), rgba).convert("L")


def transparent_ground(gray, drawn):
    """The grey (0 or 1) that the transparent part of a picture stands for, the ground it was drawn on: `drawn` marks
    its opaque pixels, `gray` their grey. Where the ground was made transparent after drawing (its pure white, say),
    the strokes' edges keep ink blended with it: the ground is the side the edges lean to from the strokes' insides.
    Ink of one grey throughout (a sketchpad's brush, whose edges fade in transparency) leans to neither; then the
    ground is the one of 0 and 1 farther from the ink's grey."""
    if not drawn.any():
        return 1.0
    inside = ndimage.binary_erosion(drawn, iterations=2)
    edge = drawn & ~ndimage.binary_erosion(drawn)
    if inside.any() and edge.any():
        lean = np.median(gray[edge]) - np.median(gray[inside])
        if abs(lean) > 0.1:
            return 1.0 if lean > 0 else 0.0
    return 1.0 if np.median(gray[drawn]) < 0.5 else 0.0


def otsu_threshold(values):
    """The threshold between two classes of values that maximises the variance between them (Otsu)."""
    counts, edges = np.histogram(values, bins=256, range=(0, 1))
    centres = (edges[:-1] + edges[1:]) / 2
    weight = np.cumsum(counts)
    mean = np.cumsum(counts * centres)
    below, above = weight[:-1], weight[-1] - weight[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mean[-1] * below - mean[:-1] * weight[-1]) ** 2 / (below * above)
    return edges[1:-1][np.nanargmax(between)] if np.isfinite(between).any() else 0.5


def depth(mask):
    """How far inside `mask` its deepest pixel lies: half the width of its broadest part."""
    return ndimage.distance_transform_edt(np.pad(mask, 1)).max() if mask.any() else 0.0


def depths(mask):
    """(labels of the connected parts of `mask`, the depth of each part)."""
    labels, count = ndimage.label(mask)
    inside = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    deepest = np.zeros(count + 1)
    np.maximum.at(deepest, labels.ravel(), inside.ravel())
    return labels, deepest[1:]


def sheet_of_paper(dark):
    """The region of a light sheet lying on a dark surround with dark marks on it, or None.

    The sheet is the light region that, its marks included, is broadest; it must be a good part of the
    picture, and its marks strokes, much thinner than the blank paper around them. A light digit on a
    dark ground is no sheet: it is narrower, and the dark holes of its loops are as broad as its strokes.
    """
    labels, part_depths = depths(ndimage.binary_fill_holes(~dark))
    if not part_depths.size:
        return None
    region = labels == 1 + int(np.argmax(part_depths))
    marks = region & dark
    if not marks.any() or part_depths.max() < 0.2 * min(dark.shape) or depth(marks) > 0.5 * depth(region & ~dark):
        return None
    return region


def edge_pixels(array):
    """The values along a picture's four edges, as one flat array."""
    return np.concatenate([array[0], array[-1], array[:, 0], array[:, -1]])


def touching_the_edge(mask, min_depth):
    """The parts of `mask` that reach the picture's edge and are deep: a desk, a shadow, no stroke."""
    labels, part_depths = depths(mask)
    edge = np.unique(edge_pixels(labels))
    return np.isin(labels, [label for label in edge if label and part_depths[label - 1] >= min_depth])


def smooth(values):
    """A Gaussian blur over an eighth of the picture, computed at a quarter of its size (it is smooth)."""
    small = ndimage.zoom(values, 0.25, order=1)
    blurred = ndimage.gaussian_filter(small, max(values.shape) / 32, mode="nearest")
    return ndimage.zoom(blurred, np.divide(values.shape, small.shape), order=1)[:values.shape[0], :values.shape[1]]


def find_ink(gray):
    """(ink strength in [0, 1], the region of the writing surface) for a grey picture of one digit.

    The ground is the shade that covers most of the picture's edge, and the ink the other: dark ink on
    paper, or light ink (chalk, a screen's white digit) on a dark ground. One exception: where the edge
    is dark but a light sheet lies inside with dark strokes on it, that is paper on a dark desk, the
    surface is the sheet, and the ink is dark.
    """
    dark = gray < otsu_threshold(gray)
    surface = np.ones_like(dark)
    ink_is_dark = edge_pixels(dark).mean() < 0.5
    paper = None if ink_is_dark else sheet_of_paper(dark)
    if paper is not None:
        ink_is_dark = True
        # less a thin rim: the sheet's edge blurs into the desk, and no digit is written on it
        surface = ndimage.binary_erosion(paper, iterations=max(1, round(0.01 * min(gray.shape))))
    ink_shade = dark if ink_is_dark else ~dark
    ink = ink_shade & surface
    ink &= ~touching_the_edge(ink, 0.12 * min(gray.shape))
    if not ink.any():
        raise UserError("no digit found: the image is blank")
    ground = surface & ~ink_shade
    light = gray if ink_is_dark else 1 - gray  # ground light, ink dark
    # the ground's own brightness nearby, averaged over ground pixels only: uneven light and shadows are
    # divided out, and only the ink stays dark
    brightness = smooth(light * ground) / np.maximum(smooth(ground.astype(np.float32)), 1e-6)
    strength = np.clip(1 - light / np.maximum(brightness, 1e-3), 0, 1)
    return strength * ndimage.binary_dilation(ink, iterations=2), surface


def digit_mask(strength, surface):
    """The pixels of the digit: the strongest ink, in pieces near the main strokes, not specks of dust."""
    values = strength[surface]
    ink = strength > max(otsu_threshold(values / max(values.max(), 1e-6)) * values.max(), 0.1)
    labels, count = ndimage.label(ink)
    if count == 0:
        raise UserError("no digit found: the image is blank")
    sizes = ndimage.sum_labels(ink, labels, range(1, count + 1))
    rows, cols = np.nonzero(np.isin(labels, 1 + np.flatnonzero(sizes >= 0.1 * sizes.max())))
    margin = 0.25 * max(np.ptp(rows), np.ptp(cols))  # a pen that skipped leaves small pieces close by
    near = np.zeros_like(ink)
    near[max(0, round(rows.min() - margin)):round(rows.max() + margin) + 1,
         max(0, round(cols.min() - margin)):round(cols.max() + margin) + 1] = True
    pieces = 1 + np.flatnonzero(sizes >= 0.02 * sizes.max())
    return np.isin(labels, pieces) & near


def even_stroke(mask, box_size):
    """The mask with a pen's stroke thickened or thinned to MNIST's, for a digit `box_size` pixels tall.

    Stroke width is measured as four times the mean distance of a stroke's pixels to its edge (a band
    of width w has mean distance w/4); MNIST's digits, measured so, are 2.1 to 3.8 pixels wide in their
    20-pixel box (10th to 90th percentile), 2.75 in the median.
    """
    width = 4 * ndimage.distance_transform_edt(mask)[mask].mean()
    target = STROKE_WIDTH * box_size / 20
    if 0.75 * target <= width <= 1.4 * target:
        return mask
    steps = round(abs(target - width) / 2)  # each step moves both edges by a pixel
    if width < target:
        return ndimage.binary_dilation(mask, iterations=max(steps, 1))
    thinner = ndimage.binary_erosion(mask, iterations=max(steps, 1))
    return thinner if thinner.any() else mask


def grey_ink(gray, ink_is_dark):
    """(ink strength in [0, 1], its strongest) of a small grey picture, dark ink on light or light on dark.

    The ground's shade is the edge's lightest tenth (dark ink) or its darkest (light ink): a digit that fills its
    picture, as block-counted ones do, covers much of the edge. UserError where no ink stands out by MIN_CONTRAST.
    """
    edge = edge_pixels(gray)
    ground = np.percentile(edge, 90) if ink_is_dark else np.percentile(edge, 10)
    ink = ground - gray if ink_is_dark else gray - ground
    contrast = ink.max()
    if contrast < MIN_CONTRAST:
        raise UserError("no digit found: the image is blank")
    return np.clip(ink, 0, 1), contrast


def without_grain(ink):
    """Ink with its faintest tenth taken away, which is the ground's grain or a JPEG's ringing, not a stroke."""
    return np.clip((ink - 0.1) / 0.9, 0, 1)


def fitted_size(crop):
    """(width, height) that fit a crop's longer side to MNIST's 20 pixels."""
    height, width = crop.shape
    return max(1, round(20 * width / max(height, width))), max(1, round(20 * height / max(height, width)))


def centred(digit):
    """A digit fitted into 20x20 (float array, ink 1), placed in 28x28 with its centre of mass at the centre."""
    centre = ndimage.center_of_mass(digit) if digit.any() else (digit.shape[0] / 2, digit.shape[1] / 2)
    top, left = (int(np.clip(round(14 - c), 0, 28 - n)) for c, n in zip(centre, digit.shape, strict=True))
    canvas = np.zeros((28, 28), np.float32)
    canvas[top:top + digit.shape[0], left:left + digit.shape[1]] = digit
    return normalize(torch.from_numpy(canvas).unsqueeze(0))


def sharpened(digit, growth):
    """A digit grown `growth` times with its strokes' edges brought back to MNIST's sharpness, in [0, 1].

    Growing a picture f times widens the grey edge of each stroke f times, where MNIST's are about a
    pixel wide: a contrast stretch of slope f narrows them again. Its window starts at SHARPEN_FROM of
    the way up, for the largest growth; a digit that did not grow is left as it is.
    """
    if growth <= 1:
        return np.clip(digit, 0, 1)
    low = SHARPEN_FROM * (1 - 1 / growth)
    return np.clip((digit - low) * growth, 0, 1)


class Prepared(NamedTuple):
    """A picture made MNIST-like. A small picture is also prepared each way the reader weighs (s6/reading.py):
    both polarities, since a thick digit that fills its picture may be either, each sharpened and plainly
    upscaled."""

    digit: torch.Tensor  # (1, 28, 28), normalised
    # (2 polarities, the likelier first; 2 preparations, sharpened and plainly upscaled; 1, 28, 28), or None for a
    # picture larger than SMALL_PICTURE; `digit` is its first
    small: torch.Tensor | None = None


def plainly_upscaled(ink):
    """Small-picture ink (H, W) in [0, 1], light on dark, grown bilinearly as it is, margins included, into
    MNIST's 20x20 box and centred by mass: no crop, no sharpening. Strokes that fill the picture, as in
    block-counted digit sets (each pixel the ink in a block of a finer bitmap), lose least this way."""
    grown = Image.fromarray(ink.astype(np.float32), "F").resize(fitted_size(ink), Image.Resampling.BILINEAR)
    return centred(np.clip(np.asarray(grown), 0, 1))


def sharpened_digit(ink, contrast):
    """Small-picture ink, measured against its own contrast, cropped, grown with Lanczos into 20x20 (which keeps a
    thin stroke's grey edges; bilinear blurs them), sharpened and centred by mass."""
    strokes = without_grain(ink / contrast)
    rows, cols = np.nonzero(strokes)
    crop = strokes[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    digit = np.asarray(Image.fromarray(crop.astype(np.float32), "F").resize(fitted_size(crop),
                                                                          Image.Resampling.LANCZOS))
    return centred(sharpened(digit, 20 / max(crop.shape)))


def prepare(image):
    """mnist_like(image), and for a picture of up to SMALL_PICTURE pixels the preparations the reader weighs."""
    if max(image.size) <= SMALL_PICTURE:
        gray = to_gray(image, working_size=None)
        likelier_dark = np.median(edge_pixels(gray)) > (gray.min() + gray.max()) / 2  # the edge is mostly ground
        likelier = grey_ink(gray, likelier_dark)
        try:
            other = grey_ink(gray, not likelier_dark)
        except UserError:  # nothing stands out the other way: the ground fills the edge
            other = likelier
        small = torch.stack([torch.stack([sharpened_digit(ink, contrast), plainly_upscaled(ink)])
                             for ink, contrast in (likelier, other)])
        return Prepared(small[0, 0], small)
    gray = to_gray(image)
    mask = digit_mask(*find_ink(gray))
    rows, cols = np.nonzero(mask)
    box_size = max(np.ptp(rows), np.ptp(cols)) + 1
    mask = even_stroke(mask, box_size)
    rows, cols = np.nonzero(mask)
    crop = mask[rows.min():rows.max() + 1, cols.min():cols.max() + 1].astype(np.float32)
    digit = np.asarray(Image.fromarray(np.uint8(crop * 255)).resize(fitted_size(crop), Image.Resampling.LANCZOS),
                       np.float32) / 255
    return Prepared(centred(np.clip(digit, 0, 1)))


def mnist_like(image):
    """A PIL image of one digit -> a normalised (1, 28, 28) tensor, made the way MNIST's digits were.

    Light on dark, cropped, scaled so that its longer side is 20 pixels and placed in 28x28 with its
    centre of mass at the centre. A photo's ink is found on its writing surface and its stroke brought to
    MNIST's width; a picture of up to SMALL_PICTURE pixels keeps its grey levels. UserError for an image
    with no ink.
    """
    return prepare(image).digit


def open_image(path):
    """A PIL image from a file, fully read; a one-line UserError for a missing, damaged or huge file."""
    path = Path(path)
    if not path.is_file():
        raise UserError("a folder, not an image" if path.is_dir() else "no such file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.draft("RGB", (WORKING_SIZE, WORKING_SIZE))  # a JPEG decodes straight to a smaller size
                image.load()
                return image
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UserError(f"the image is too large (over {Image.MAX_IMAGE_PIXELS:,} pixels): scale it down "
                         f"first") from None
    except UnidentifiedImageError:
        raise UserError("not an image PIL can read (PNG or JPEG expected)") from None
    except OSError as error:
        raise UserError(f"the image cannot be read ({error})") from None


def load_digit(path):
    """prepare() of an image file: its MNIST-like digit and the digit's size; one-line UserError for a missing,
    unreadable, huge or blank file."""
    return prepare(open_image(path))
