"""s6_predict.py, run as a user runs it: one line per image (a digit, unsure, or not a digit), and one bad file
does not stop the others. Its main runs in this process, but for the test of what the process itself does."""

import os
import re
import shutil

import pytest
import torch
from conftest import ROOT, WEIGHTS, as_photo, assert_one_line_error, run_script
from PIL import Image

from s6.reading import FEATURES_FILE
from s6_model import MODELS, Net
from tools.non_digits import smiley


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


def test_model_alone_reads_with_that_models_committed_weights(test_digits, tmp_path, run_in_process):
    path = tmp_path / "digit.jpg"
    as_photo(test_digits[0][0]).save(path)
    result = run_in_process("s6_predict.py", path, "--model", "tiny")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{path}: {test_digits[1][0]} (")


@pytest.mark.parametrize("script", ["s6_predict.py", "s6_app.py"])
def test_the_models_offered_are_those_with_committed_weights_and_a_lab_network_is_a_one_line_error(script,
                                                                                                 run_in_process):
    shown = run_in_process(script, "--help").stdout
    offered = re.search(r"--model \{([\w,-]+)\}", shown).group(1).split(",")
    assert offered == list(MODELS)
    assert all((ROOT / "results" / f"{key}-seed1" / "model.pt").is_file() for key in offered)
    refused = run_in_process(script, "--model", "arch3")  # one of the lab's networks: no weights to read with
    assert_one_line_error(refused)
    assert "invalid choice: 'arch3'" in refused.stderr


@pytest.mark.parametrize("case", ["missing", "not an image", "blank", "truncated", "huge", "a folder"])
def test_bad_image_exits_non_zero_with_one_line_and_the_good_one_is_still_read(case, tmp_path, test_digits,
                                                                              run_in_process):
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
    result = run_in_process("s6_predict.py", path, good, "--weights", WEIGHTS)
    assert_one_line_error(result)
    assert str(path) in result.stderr
    assert result.stdout.startswith(f"{good}: {test_digits[1][0]} (")


def test_weights_that_are_not_ours_are_a_one_line_error(tmp_path, test_digits, run_in_process):
    image = tmp_path / "digit.png"
    as_photo(test_digits[0][0]).save(image)
    junk = tmp_path / "model.pt"
    junk.write_bytes(b"\x00" * 100)
    assert_one_line_error(run_in_process("s6_predict.py", image, "--weights", junk))
    torch.save({"conv.weight": torch.zeros(3)}, junk)
    result = run_in_process("s6_predict.py", image, "--weights", junk)
    assert_one_line_error(result)
    assert "does not hold weights for Net" in result.stderr
    torch.save(Net().state_dict(), junk)
    result = run_in_process("s6_predict.py", image, "--weights", junk, "--model", "tiny")
    assert_one_line_error(result)
    assert "holds weights for Net, not TinyNet: give --model net" in result.stderr


def test_an_unsure_reading_says_so_and_names_the_two_likeliest_digits(tmp_path, mnist_test, run_in_process):
    images, _ = mnist_test
    Image.fromarray(images[33].numpy()).save(tmp_path / "four.png")  # a 4 whose loop nearly closes, as a 6's
    result = run_in_process("s6_predict.py", tmp_path / "four.png", "--weights", WEIGHTS)
    assert result.returncode == 0
    assert re.match(rf"{tmp_path / 'four.png'}: unsure: 4 \(\d+\.\d%\) or 6 \(\d+\.\d%\)  0:", result.stdout)


def test_two_digits_laid_over_each_other_are_not_a_digit(tmp_path, mnist_test, run_in_process):
    images, _ = mnist_test
    blend = ((images[0].int() + images[1].int()) // 2).numpy().astype("uint8")  # a 7 laid over a 2
    Image.fromarray(blend).save(tmp_path / "blend.png")
    result = run_in_process("s6_predict.py", tmp_path / "blend.png", "--weights", WEIGHTS)
    assert result.returncode == 0
    assert re.match(rf"{tmp_path / 'blend.png'}: not a digit \(as a digit: \d, \d+\.\d%\)  0:", result.stdout)


def test_8x8_digits_are_read_and_a_smiley_drawn_in_the_app_is_not_a_digit(tmp_path, test_digits, run_in_process):
    digits, labels = test_digits
    paths = [tmp_path / f"tiny{i}.png" for i in range(4)]
    for digit, path in zip(digits, paths, strict=False):
        Image.fromarray(digit).resize((8, 8), Image.Resampling.BOX).save(path)
    smiley().save(tmp_path / "smiley.png")
    result = run_in_process("s6_predict.py", *paths, tmp_path / "smiley.png", "--weights", WEIGHTS)
    assert result.returncode == 0
    *tiny, face = result.stdout.splitlines()
    for line, path, label in zip(tiny, paths, labels, strict=False):  # named first, if not always with 90%
        assert re.match(rf"{path}: (unsure: )?{label} \(", line), line
    assert face.startswith(f"{tmp_path / 'smiley.png'}: not a digit")


def test_weights_without_digit_features_are_read_with_a_note_that_nothing_is_called_not_a_digit(tmp_path,
                                                                                               run_in_process):
    shutil.copy(WEIGHTS, tmp_path / "model.pt")
    smiley().save(tmp_path / "smiley.png")
    result = run_in_process("s6_predict.py", tmp_path / "smiley.png", "--weights", tmp_path / "model.pt")
    assert result.returncode == 0 and "not a digit" not in result.stdout
    assert f"no {FEATURES_FILE} beside" in result.stderr and "--calibrate" in result.stderr


def test_calibrate_refuses_to_replace_digit_features_unless_told_to_overwrite(tmp_path, run_in_process):
    shutil.copy(WEIGHTS, tmp_path / "model.pt")
    (tmp_path / FEATURES_FILE).write_bytes(b"earlier")
    result = run_in_process("s6_predict.py", "--calibrate", "--weights", tmp_path / "model.pt")
    assert_one_line_error(result)
    assert "exists already" in result.stderr and "--overwrite" in result.stderr
    assert (tmp_path / FEATURES_FILE).read_bytes() == b"earlier"


def test_calibrate_beside_weights_in_a_read_only_folder_ends_in_one_line_before_fitting(tmp_path, read_only,
                                                                                          run_in_process):
    shutil.copy(WEIGHTS, tmp_path / "model.pt")
    folder = read_only(tmp_path)
    result = run_in_process("s6_predict.py", "--calibrate", "--weights", folder / "model.pt")
    assert_one_line_error(result)
    assert f"cannot write to {folder} (" in result.stderr
    assert "goes beside the weights: make that folder writable" in result.stderr  # it cannot go elsewhere


def test_a_picture_named_in_letters_the_terminal_lacks_is_read_and_its_name_printed_escaped(tmp_path, test_digits):
    path = tmp_path / "drei_\u00fc.png"
    Image.fromarray(test_digits[0][0]).save(path)
    result = run_script("s6_predict.py", path, "--weights", WEIGHTS, env={**os.environ, "PYTHONIOENCODING": "ascii"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{tmp_path}/drei_\\xfc.png: {test_digits[1][0]} (")


def test_no_image_and_no_calibrate_is_a_usage_error(run_in_process):
    result = run_in_process("s6_predict.py")
    assert result.returncode == 2 and "give one or more images" in result.stderr
