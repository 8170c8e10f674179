"""s6_train.py, run as a user runs it: in a subprocess, on a few batches."""

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from functools import partial

import pytest
import torch
from conftest import DATA_DIR, ROOT, SMALL, assert_one_line_error, run_script

from s6.checkpoints import load_weights
from s6.config import TrainConfig
from s6.data import make_loaders
from s6.training import evaluate
from s6_model import Net


def test_train_writes_metrics_and_a_model_that_reproduces_the_last_test_accuracy(finished_run):
    metrics = json.loads((finished_run / "metrics.json").read_text())
    assert metrics["config"]["epochs"] == 2 and metrics["parameters"] < 20_000
    assert metrics["device"] == "cpu" and metrics["torch"] == torch.__version__
    assert [r["epoch"] for r in metrics["history"]] == [1, 2]
    assert set(metrics["history"][0]) == {"epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds"}
    model = load_weights(Net(), finished_run / "model.pt")
    _, test = make_loaders(TrainConfig(**metrics["config"]), "cpu")
    assert evaluate(model, test)["test_acc"] == pytest.approx(metrics["history"][-1]["test_acc"])


def test_every_train_flag_has_help_text():
    text = run_script("s6_train.py", "--help").stdout
    flags = [f.name.replace("_", "-") for f in dataclasses.fields(TrainConfig)]
    for flag in flags + ["out", "seeds", "resume", "threads", "no-progress"]:
        assert f"--{flag}" in text


def test_invalid_value_is_a_one_line_error_naming_the_field():
    result = run_script("s6_train.py", "--lr", "-1", "--data-dir", DATA_DIR)
    assert_one_line_error(result)
    assert "TrainConfig.lr=-1.0" in result.stderr


def test_missing_data_is_a_one_line_error(tmp_path):
    env = {**os.environ, "no_proxy": "*", "https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9"}
    result = run_script("s6_train.py", "--data-dir", tmp_path, "--epochs", "1", env=env)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "train-images-idx3-ubyte" in result.stderr


@pytest.fixture
def seed1_done(finished_run, tmp_path):
    """tmp_path/net-seed1: the finished run, which `--seeds 1 ... --out tmp_path/net` with SMALL reuses."""
    shutil.copytree(finished_run, tmp_path / "net-seed1")
    return tmp_path / "net-seed1"


def test_seeds_write_per_seed_runs_and_statistics(seed1_done, tmp_path):
    result = run_script("s6_train.py", *SMALL, "--seeds", "1", "2", "--out", tmp_path / "net",
                        "--plot", tmp_path / "s.png")
    assert result.returncode == 0, result.stderr
    seeds = json.loads((tmp_path / "net" / "seeds.json").read_text())
    assert set(seeds["runs"]) == {"1", "2"}
    finals = [runs[-1]["test_acc"] for runs in seeds["runs"].values()]
    assert seeds["summary"]["final_test_acc_mean"] == pytest.approx(sum(finals) / 2)
    assert (tmp_path / "net-seed2" / "model.pt").exists() and (tmp_path / "s.png").exists()
    assert "| net |" in result.stdout
    again = run_script("s6_train.py", *SMALL, "--seeds", "1", "2", "--out", tmp_path / "net")
    assert again.stdout.count("reusing the finished run") == 2


def test_seeds_retrain_a_run_whose_model_has_changed_since(seed1_done, tmp_path):
    metrics = seed1_done / "metrics.json"
    record = json.loads(metrics.read_text())
    metrics.write_text(json.dumps({**record, "parameters": record["parameters"] + 1}))  # as if Net were redesigned
    again = run_script("s6_train.py", *SMALL, "--seeds", "1", "--out", tmp_path / "net")
    assert again.returncode == 0, again.stderr
    assert "reusing the finished run" not in again.stdout
    assert json.loads(metrics.read_text())["parameters"] == record["parameters"]


def test_seeds_reuse_a_run_saved_before_a_config_field_existed(seed1_done, tmp_path):
    metrics = seed1_done / "metrics.json"
    record = json.loads(metrics.read_text())
    del record["config"]["cuda_graphs"]  # as if saved before the field was added, with its default behaviour
    metrics.write_text(json.dumps(record))
    again = run_script("s6_train.py", *SMALL, "--seeds", "1", "--out", tmp_path / "net")
    assert again.returncode == 0, again.stderr
    assert "reusing the finished run" in again.stdout


def test_ctrl_c_keeps_finished_epochs_says_how_to_resume_and_resume_finishes(tmp_path):
    args = [sys.executable, str(ROOT / "s6_train.py"), "--epochs", "50", "--max-batches", "10", "--device", "cpu",
            "--data-dir", DATA_DIR, "--no-progress", "--out", str(tmp_path)]
    # Ctrl-C's default action, as a terminal gives its foreground job: a test runner started in the
    # background (`cmd &` in a script) passes SIGINT on as ignored, and Python then raises no KeyboardInterrupt
    restore_ctrl_c = partial(signal.signal, signal.SIGINT, signal.SIG_DFL)
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                               preexec_fn=restore_ctrl_c)
    deadline = time.monotonic() + 240
    while not (tmp_path / "checkpoint.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130
    assert f"python s6_train.py --resume {tmp_path}" in stderr and "Traceback" not in stderr
    done = json.loads((tmp_path / "metrics.json").read_text())["history"]
    assert len(done) >= 1
    checkpoint = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert checkpoint["epoch"] == len(done)


def test_resume_of_a_file_that_is_not_a_checkpoint_is_a_one_line_error(tmp_path):
    (tmp_path / "checkpoint.pt").write_text("not a checkpoint")
    result = run_script("s6_train.py", "--resume", tmp_path)
    assert_one_line_error(result)
    assert "is not an S6 checkpoint" in result.stderr


def test_resume_from_a_model_pt_is_a_one_line_error(tmp_path):
    torch.save(Net().state_dict(), tmp_path / "checkpoint.pt")
    result = run_script("s6_train.py", "--resume", tmp_path)
    assert_one_line_error(result)
    assert "cannot be resumed" in result.stderr
