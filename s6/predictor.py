"""Reading a user's digit: an image of any size made MNIST-like, then classified by a trained model."""

from pathlib import Path

import numpy as np
import torch

from s6.data import normalize


def mnist_like(image):
    """A PIL image of one digit -> a normalised (1, 28, 28) tensor, made the way MNIST's digits were.

    Grayscale, light ink on a dark ground (a dark-on-light photo is inverted, judged by its border),
    cropped to the ink, scaled so that its longer side is 20 pixels, and placed in 28x28 with its
    centre of mass at the centre. Raises ValueError for an image with no ink.
    """
    from PIL import Image

    gray = np.asarray(image.convert("L"), dtype=np.float32) / 255
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if np.median(border) > 0.5:
        gray, border = 1 - gray, 1 - border
    gray = np.clip(gray - np.median(border), 0, 1)  # a photo's grey paper becomes black
    if gray.max() < 0.1:
        raise ValueError("no digit found: the image is blank")
    rows, cols = np.nonzero(gray > 0.2 * gray.max())
    crop = gray[rows.min():rows.max() + 1, cols.min():cols.max() + 1] / gray.max()
    height, width = crop.shape
    size = (max(1, round(20 * width / max(height, width))), max(1, round(20 * height / max(height, width))))
    digit = np.asarray(Image.fromarray(np.uint8(crop * 255)).resize(size, Image.LANCZOS), np.float32) / 255
    mass_y, mass_x = np.indices(digit.shape)
    total = digit.sum()
    centre = ((mass_y * digit).sum() / total, (mass_x * digit).sum() / total)
    top, left = (int(np.clip(round(14 - c), 0, 28 - n)) for c, n in zip(centre, digit.shape, strict=True))
    canvas = np.zeros((28, 28), np.float32)
    canvas[top:top + digit.shape[0], left:left + digit.shape[1]] = digit
    return normalize(torch.from_numpy(canvas).unsqueeze(0))


def load_digit(path):
    """mnist_like() of an image file; one-line ValueError for a missing, unreadable or blank file."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise ValueError("no such file")
    try:
        with Image.open(path) as image:
            image.load()
            return mnist_like(image)
    except UnidentifiedImageError:
        raise ValueError("not an image PIL can read (PNG or JPEG expected)") from None
    except OSError as error:
        raise ValueError(f"the image is damaged ({error})") from None


@torch.inference_mode()
def class_probabilities(model, digit):
    """The ten class probabilities for one (1, 28, 28) digit."""
    model.eval()
    return model(digit.unsqueeze(0)).exp()[0]
