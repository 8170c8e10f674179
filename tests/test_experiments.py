"""tools/experiments.py on a few batches: one record per model, and a re-run of one keeps the others."""

import json

from conftest import DATA_DIR, assert_one_line_error

from s6_model import count_parameters
from tools.experiments import EXPERIMENTS


def test_experiments_write_one_record_per_model_and_a_rerun_of_one_keeps_the_others(tmp_path, run_in_process):
    out, plot = tmp_path / "experiments.json", tmp_path / "experiments.png"
    common = ["--epochs", "2", "--max-batches", "1", "--data-dir", DATA_DIR, "--out", out, "--plot", plot,
              "--no-progress"]
    result = run_in_process("tools/experiments.py", "--models", "net", "arch1", *common)
    assert result.returncode == 0, result.stderr
    first = json.loads(out.read_text())
    assert list(first) == ["arch1", "net"]  # the order of the story, not of the runs
    for name, record in first.items():
        assert record["parameters"] == count_parameters(EXPERIMENTS[name]())
        assert record["config"]["model"] == name
        assert len(record["test_acc"]) == 2 and record["final_test_acc"] == record["test_acc"][-1]
        assert record["best_test_acc"] == max(record["test_acc"])
        assert record["seconds_per_epoch"] > 0 and "first_epoch_at_target" in record
    assert first["arch1"]["receptive_field"] == 10 and first["net"]["receptive_field"] == 32
    assert plot.stat().st_size > 0
    assert "| arch1 | 5,642 | 10 |" in result.stdout

    refused = run_in_process("tools/experiments.py", "--models", "net", "--seed", "2", *common)
    assert_one_line_error(refused)
    assert "exist already" in refused.stderr and "--overwrite" in refused.stderr
    assert json.loads(out.read_text()) == first, "nothing replaced without --overwrite"
    again = run_in_process("tools/experiments.py", "--models", "net", "--seed", "2", *common, "--overwrite")
    assert again.returncode == 0, again.stderr
    second = json.loads(out.read_text())
    assert list(second) == ["arch1", "net"]
    assert second["arch1"] == first["arch1"]
    assert second["net"]["config"]["seed"] == 2
    assert "| arch1 |" in again.stdout and "| net |" in again.stdout
