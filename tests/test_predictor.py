"""s6/predictor.py: a user's picture of a digit is made MNIST-like and read right, or flagged as unsure."""

import numpy as np
import pytest
import torch
from conftest import WEIGHTS, as_photo
from photo_digits import KINDS, photo_digits
from PIL import Image

from s6.checkpoints import load_weights
from s6.data import normalize
from s6.predictor import load_digit, mnist_like, read_digit
from s6_model import Net

BACKGROUND = normalize(torch.tensor(0.0)).item()


@pytest.fixture(scope="module")
def model():
    return load_weights(Net(), WEIGHTS).eval()


@pytest.fixture(scope="module")
def digits_read_right(model, mnist_test):
    """MNIST test digits (uint8) and labels that the network reads right as they are."""
    images, labels = mnist_test
    with torch.inference_mode():
        right = model(normalize(images.unsqueeze(1).float() / 255)).argmax(1) == labels
    return images[right].numpy(), labels[right].numpy()


def test_preprocessing_turns_a_dark_on_light_photo_into_an_mnist_like_digit(test_digits):
    digits, _ = test_digits
    made = mnist_like(as_photo(digits[0]))
    original = normalize(torch.from_numpy(digits[0]).float() / 255)
    assert made.shape == (1, 28, 28)
    assert made[0, 0, 0].item() == pytest.approx(BACKGROUND)
    assert torch.corrcoef(torch.stack([made.flatten(), original.flatten()]))[0, 1] > 0.8


def test_preprocessing_centres_the_digit_by_mass(test_digits):
    digits, _ = test_digits
    image = mnist_like(Image.fromarray(digits[3]).resize((90, 90))) - BACKGROUND
    ys, xs = np.indices((28, 28))
    mass = image[0].numpy()
    assert (ys * mass).sum() / mass.sum() == pytest.approx(14, abs=1)
    assert (xs * mass).sum() / mass.sum() == pytest.approx(14, abs=1)


@pytest.mark.parametrize("image", [Image.new("L", (50, 50), 255), Image.new("RGB", (64, 64), (20, 30, 40)),
                                   Image.new("RGBA", (40, 40), (0, 0, 0, 0))])
def test_an_image_without_ink_is_refused_as_blank(image):
    with pytest.raises(ValueError, match="blank"):
        mnist_like(image)


def test_load_digit_reads_png_of_any_mode(tmp_path, test_digits):
    digit = test_digits[0][0]
    for mode in ["L", "RGB", "RGBA", "P", "1", "I;16"]:
        path = tmp_path / f"digit-{mode}.png"
        Image.fromarray(digit).convert(mode).save(path)
        assert load_digit(path).shape == (1, 28, 28)


def test_a_16_bit_png_is_read_in_its_own_range(model, test_digits, tmp_path):
    digits, labels = test_digits
    path = tmp_path / "digit16.png"
    Image.fromarray(digits[0].astype(np.uint16) * 257).save(path)  # 0..65535
    assert Image.open(path).mode.startswith("I")
    assert read_digit(model, load_digit(path)).digit == labels[0]


def test_an_image_too_large_to_open_safely_is_a_one_line_error(tmp_path):
    path = tmp_path / "huge.png"
    Image.new("1", (15_000, 15_000)).save(path)
    with pytest.raises(ValueError, match="too large"):
        load_digit(path)


@pytest.mark.parametrize("polarity, scale", [("white on black", 1), ("black on white", 1),
                                             ("white on black", 8), ("black on white", 8)])
def test_mnist_test_digits_saved_as_png_are_read_as_the_network_reads_them(model, mnist_test, tmp_path,
                                                                         polarity, scale):
    images, labels = mnist_test
    images, labels = images[:50], labels[:50]
    wrong = 0
    for i, (digit, label) in enumerate(zip(images.numpy(), labels.tolist(), strict=True)):
        picture = Image.fromarray(digit if polarity == "white on black" else 255 - digit)
        picture.resize((28 * scale, 28 * scale), Image.Resampling.BICUBIC).save(tmp_path / f"{i}.png")
        wrong += read_digit(model, load_digit(tmp_path / f"{i}.png")).digit != label
    with torch.inference_mode():
        wrong_as_is = (model(normalize(images.unsqueeze(1).float() / 255)).argmax(1) != labels).sum().item()
    assert wrong <= wrong_as_is


def test_photo_like_digits_are_read_right_or_flagged_as_unsure(model, digits_read_right):
    pictures = photo_digits(*digits_read_right, per_kind=6, seed=3)
    outcomes = {kind: [] for kind in KINDS}
    for kind, label, image, _ in pictures:
        reading = read_digit(model, mnist_like(image))
        outcomes[kind].append("unsure" if reading.unsure else "right" if reading.digit == label else "wrong")
    everything = sum(outcomes.values(), [])
    assert everything.count("wrong") == 0, {kind: o.count("wrong") for kind, o in outcomes.items()}
    assert everything.count("right") >= 0.95 * len(everything)


def test_a_confident_reading_is_not_flagged_and_a_split_one_is(model, mnist_test):
    images, _ = mnist_test
    assert not read_digit(model, normalize(images[0].unsqueeze(0).float() / 255)).unsure
    blend = (images[0].float() + images[1].float()) / 2 / 255  # a 7 laid over a 2
    assert read_digit(model, normalize(blend.unsqueeze(0))).unsure
