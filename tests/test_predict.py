"""s6_predict.py and the preprocessing that makes a user's photo MNIST-like."""

import numpy as np
import pytest
import torch
from conftest import DATA_DIR, ROOT
from PIL import Image
from test_cli import assert_one_line_error, run

from s6_utils import load_digit, mnist_dataset, mnist_like, normalize

WEIGHTS = ROOT / "results" / "net-seed1" / "model.pt"


@pytest.fixture(scope="module")
def test_digits():
    dataset = mnist_dataset(DATA_DIR, train=False)
    return dataset.data[:20].numpy(), dataset.targets[:20].tolist()


def as_photo(digit, size=(240, 300)):
    """An MNIST digit as a user might photograph it: dark ink on light paper, large, in colour, off-centre."""
    paper = Image.new("RGB", size, (235, 230, 220))
    ink = Image.fromarray(255 - digit).convert("RGB").resize((150, 150))
    paper.paste(ink, (20, 90))
    return paper


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


def test_predict_reads_photographed_digits_and_one_bad_file_does_not_stop_the_others(test_digits, tmp_path):
    digits, labels = test_digits
    paths = []
    for i, digit in enumerate(digits):
        paths.append(tmp_path / f"digit{i}.jpg")
        as_photo(digit).save(paths[-1])
    (tmp_path / "notes.png").write_text("not an image")
    result = run("s6_predict.py", *paths[:10], tmp_path / "notes.png", *paths[10:], "--weights", WEIGHTS)
    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 20
    predicted = [int(line.split(": ")[1].split()[0]) for line in lines]
    assert sum(p == label for p, label in zip(predicted, labels, strict=True)) >= 18
    assert_one_line_error(result)
    assert "notes.png: error: not an image" in result.stderr


@pytest.mark.parametrize("case", ["missing", "not an image", "blank", "truncated"])
def test_bad_image_exits_non_zero_with_one_line(case, tmp_path, test_digits):
    path = tmp_path / "digit.png"
    if case == "not an image":
        path.write_bytes(b"%PDF-1.4 something else")
    elif case == "blank":
        Image.new("RGB", (64, 64), "white").save(path)
    elif case == "truncated":
        as_photo(test_digits[0][0]).save(path)
        path.write_bytes(path.read_bytes()[:300])
    result = run("s6_predict.py", path, "--weights", WEIGHTS)
    assert_one_line_error(result)
    assert str(path) in result.stderr


def test_weights_that_are_not_ours_are_a_one_line_error(tmp_path, test_digits):
    image = tmp_path / "digit.png"
    as_photo(test_digits[0][0]).save(image)
    junk = tmp_path / "model.pt"
    junk.write_bytes(b"\x00" * 100)
    assert_one_line_error(run("s6_predict.py", image, "--weights", junk))
    torch.save({"conv.weight": torch.zeros(3)}, junk)
    result = run("s6_predict.py", image, "--weights", junk)
    assert_one_line_error(result)
    assert "does not hold weights for Net" in result.stderr


def test_load_digit_reads_png_of_any_mode(tmp_path, test_digits):
    digit = test_digits[0][0]
    for mode in ["L", "RGB", "RGBA", "P"]:
        path = tmp_path / f"digit-{mode}.png"
        Image.fromarray(digit).convert(mode).save(path)
        assert load_digit(path).shape == (1, 28, 28)
