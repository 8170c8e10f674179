"""s6_predict.py, run as a user runs it: one line per image, and one bad file does not stop the others."""

import re

import pytest
import torch
from conftest import WEIGHTS, as_photo, assert_one_line_error, run_script
from PIL import Image

from s6_model import Net


def test_predict_reads_photographed_digits_and_one_bad_file_does_not_stop_the_others(test_digits, tmp_path):
    digits, labels = test_digits
    paths = []
    for i, digit in enumerate(digits):
        paths.append(tmp_path / f"digit{i}.jpg")
        as_photo(digit).save(paths[-1])
    (tmp_path / "notes.png").write_text("not an image")
    result = run_script("s6_predict.py", *paths[:10], tmp_path / "notes.png", *paths[10:], "--weights", WEIGHTS)
    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 20
    readings = [line.split(": ", 1)[1] for line in lines]
    right = [reading.startswith(f"{label} (") for reading, label in zip(readings, labels, strict=True)]
    flagged = [reading.startswith("unsure: ") for reading in readings]
    assert sum(right) >= 18 and all(r or f for r, f in zip(right, flagged, strict=True))
    assert_one_line_error(result)
    assert "notes.png: error: not an image" in result.stderr


def test_model_alone_reads_with_that_models_committed_weights(test_digits, tmp_path):
    path = tmp_path / "digit.jpg"
    as_photo(test_digits[0][0]).save(path)
    result = run_script("s6_predict.py", path, "--model", "tiny")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{path}: {test_digits[1][0]} (")


def test_a_model_without_committed_weights_is_a_one_line_error_saying_how_to_get_them(test_digits, tmp_path):
    path = tmp_path / "digit.jpg"
    as_photo(test_digits[0][0]).save(path)
    result = run_script("s6_predict.py", path, "--model", "baseline")
    assert_one_line_error(result)
    assert "no committed weights for --model baseline" in result.stderr and "--weights" in result.stderr


@pytest.mark.parametrize("case", ["missing", "not an image", "blank", "truncated", "huge", "a folder"])
def test_bad_image_exits_non_zero_with_one_line_and_the_good_one_is_still_read(case, tmp_path, test_digits):
    path = tmp_path / "digit.png"
    good = tmp_path / "good.png"
    as_photo(test_digits[0][0]).save(good)
    if case == "huge":
        Image.new("1", (15_000, 15_000)).save(path)
    elif case == "a folder":
        path.mkdir()
    elif case == "not an image":
        path.write_bytes(b"%PDF-1.4 something else")
    elif case == "blank":
        Image.new("RGB", (64, 64), "white").save(path)
    elif case == "truncated":
        as_photo(test_digits[0][0]).save(path)
        path.write_bytes(path.read_bytes()[:300])
    result = run_script("s6_predict.py", path, good, "--weights", WEIGHTS)
    assert_one_line_error(result)
    assert str(path) in result.stderr
    assert result.stdout.startswith(f"{good}: {test_digits[1][0]} (")


def test_weights_that_are_not_ours_are_a_one_line_error(tmp_path, test_digits):
    image = tmp_path / "digit.png"
    as_photo(test_digits[0][0]).save(image)
    junk = tmp_path / "model.pt"
    junk.write_bytes(b"\x00" * 100)
    assert_one_line_error(run_script("s6_predict.py", image, "--weights", junk))
    torch.save({"conv.weight": torch.zeros(3)}, junk)
    result = run_script("s6_predict.py", image, "--weights", junk)
    assert_one_line_error(result)
    assert "does not hold weights for Net" in result.stderr
    torch.save(Net().state_dict(), junk)
    assert "does not hold weights for TinyNet" in run_script("s6_predict.py", image, "--weights", junk,
                                                            "--model", "tiny").stderr


def test_an_unsure_reading_says_so_and_names_the_two_likeliest_digits(tmp_path, mnist_test):
    images, _ = mnist_test
    blend = ((images[0].int() + images[1].int()) // 2).numpy().astype("uint8")  # a 7 laid over a 2
    Image.fromarray(blend).save(tmp_path / "blend.png")
    result = run_script("s6_predict.py", tmp_path / "blend.png", "--weights", WEIGHTS)
    assert result.returncode == 0
    assert re.match(rf"{tmp_path / 'blend.png'}: unsure: \d \(\d+\.\d%\) or \d \(\d+\.\d%\)  0:", result.stdout)
