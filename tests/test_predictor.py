"""s6/predictor.py: a user's picture of a digit is made MNIST-like and read right."""

import numpy as np
import pytest
import torch
from conftest import as_photo
from PIL import Image

from s6.data import normalize
from s6.predictor import load_digit, mnist_like


def test_preprocessing_turns_a_dark_on_light_photo_into_an_mnist_like_digit(test_digits):
    digits, _ = test_digits
    made = mnist_like(as_photo(digits[0]))
    original = normalize(torch.from_numpy(digits[0]).float() / 255)
    assert made.shape == (1, 28, 28)
    background = made[0, 0, 0].item()
    assert background == pytest.approx(normalize(torch.tensor(0.0)).item())
    assert torch.corrcoef(torch.stack([made.flatten(), original.flatten()]))[0, 1] > 0.8


def test_preprocessing_centres_the_digit_by_mass(test_digits):
    digits, _ = test_digits
    image = mnist_like(Image.fromarray(digits[3]).resize((90, 90))) - normalize(torch.tensor(0.0))
    ys, xs = np.indices((28, 28))
    mass = image[0].numpy()
    assert (ys * mass).sum() / mass.sum() == pytest.approx(14, abs=1)
    assert (xs * mass).sum() / mass.sum() == pytest.approx(14, abs=1)


def test_blank_image_is_refused():
    with pytest.raises(ValueError, match="blank"):
        mnist_like(Image.new("L", (50, 50), 255))


def test_load_digit_reads_png_of_any_mode(tmp_path, test_digits):
    digit = test_digits[0][0]
    for mode in ["L", "RGB", "RGBA", "P"]:
        path = tmp_path / f"digit-{mode}.png"
        Image.fromarray(digit).convert(mode).save(path)
        assert load_digit(path).shape == (1, 28, 28)
