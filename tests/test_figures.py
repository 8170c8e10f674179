"""tools/figures.py: the README's four figures, written from a finished run without training."""

import json
import shutil

from conftest import assert_one_line_error


def test_figures_are_written_from_a_finished_run(finished_run, tmp_path, run_in_process):
    result = run_in_process("tools/figures.py", finished_run, "--out", tmp_path / "doc")
    assert result.returncode == 0, result.stderr
    for name in ["samples.png", "curves.png", "misclassified.png", "confusion.png"]:
        assert (tmp_path / "doc" / name).read_bytes().startswith(b"\x89PNG")
    again = run_in_process("tools/figures.py", finished_run, "--out", tmp_path / "doc")
    assert_one_line_error(again)
    assert "exist already" in again.stderr and "--overwrite" in again.stderr
    assert run_in_process("tools/figures.py", finished_run, "--out", tmp_path / "doc", "--overwrite").returncode == 0


def test_figures_of_a_folder_without_a_run_is_a_one_line_error(tmp_path, run_in_process):
    result = run_in_process("tools/figures.py", tmp_path, "--out", tmp_path / "doc")
    assert_one_line_error(result)
    assert "metrics.json: no such file" in result.stderr


def test_figures_of_a_run_of_ones_own_network_is_a_one_line_error(finished_run, tmp_path, run_in_process):
    shutil.copytree(finished_run, tmp_path / "run")
    metrics = tmp_path / "run" / "metrics.json"
    metrics.write_text(json.dumps({**json.loads(metrics.read_text()), "model_class": "MyNet"}))
    result = run_in_process("tools/figures.py", tmp_path / "run", "--out", tmp_path / "doc")
    assert_one_line_error(result)
    assert "a run of MyNet, a network S6 does not have" in result.stderr
