"""The command-line programs, run as a user runs them: in a subprocess, on a few batches."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from functools import partial

import pytest
import torch
from conftest import DATA_DIR, ROOT

from s6_model import Net
from s6_utils import TrainConfig, evaluate, fast_loaders, load_weights

SMALL = ["--epochs", "2", "--max-batches", "5", "--batch-size", "32", "--device", "cpu",
         "--data-dir", DATA_DIR, "--no-progress"]


def run(script, *args, timeout=300):
    return subprocess.run([sys.executable, str(ROOT / script), *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


def assert_one_line_error(result):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_train_writes_metrics_and_a_model_that_reproduces_the_last_test_accuracy(tmp_path):
    result = run("s6_train.py", *SMALL, "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["config"]["epochs"] == 2 and metrics["parameters"] < 20_000
    assert metrics["device"] == "cpu" and metrics["torch"] == torch.__version__
    assert [r["epoch"] for r in metrics["history"]] == [1, 2]
    assert set(metrics["history"][0]) == {"epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds"}
    model = load_weights(Net(), tmp_path / "model.pt")
    config = TrainConfig(**metrics["config"])
    _, test = fast_loaders(config, torch.device("cpu"))
    again = evaluate(model, test, device=torch.device("cpu"), max_batches=config.max_batches)
    assert again["acc"] == pytest.approx(metrics["history"][-1]["test_acc"])


def test_every_train_flag_has_help_text():
    text = run("s6_train.py", "--help").stdout
    flags = [f.name.replace("_", "-") for f in dataclasses.fields(TrainConfig)]
    for flag in flags + ["out", "seeds", "resume"]:
        assert f"--{flag}" in text
    assert text.count("--") >= len(flags)


def test_invalid_value_is_a_one_line_error_naming_the_field():
    result = run("s6_train.py", "--lr", "-1", "--data-dir", DATA_DIR)
    assert_one_line_error(result)
    assert "TrainConfig.lr=-1.0" in result.stderr


def test_missing_data_is_a_one_line_error(tmp_path):
    env = {**os.environ, "no_proxy": "*", "https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9"}
    result = subprocess.run([sys.executable, str(ROOT / "s6_train.py"), "--data-dir", str(tmp_path), "--epochs", "1"],
                            capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "train-images-idx3-ubyte" in result.stderr


def test_seeds_write_per_seed_runs_and_statistics(tmp_path):
    result = run("s6_train.py", *SMALL, "--seeds", "1", "2", "--out", tmp_path / "net", "--plot", tmp_path / "s.png")
    assert result.returncode == 0, result.stderr
    seeds = json.loads((tmp_path / "net" / "seeds.json").read_text())
    assert set(seeds["runs"]) == {"1", "2"}
    finals = [runs[-1]["test_acc"] for runs in seeds["runs"].values()]
    assert seeds["summary"]["final_test_acc_mean"] == pytest.approx(sum(finals) / 2)
    assert (tmp_path / "net-seed2" / "model.pt").exists() and (tmp_path / "s.png").exists()
    assert "| net |" in result.stdout
    again = run("s6_train.py", *SMALL, "--seeds", "1", "2", "--out", tmp_path / "net")
    assert again.stdout.count("reusing the finished run") == 2


def test_seeds_retrain_a_run_whose_model_has_changed_since(tmp_path):
    assert run("s6_train.py", *SMALL, "--seeds", "1", "--out", tmp_path / "net").returncode == 0
    metrics = tmp_path / "net-seed1" / "metrics.json"
    record = json.loads(metrics.read_text())
    metrics.write_text(json.dumps({**record, "parameters": record["parameters"] + 1}))  # as if Net were redesigned
    again = run("s6_train.py", *SMALL, "--seeds", "1", "--out", tmp_path / "net")
    assert again.returncode == 0, again.stderr
    assert "reusing the finished run" not in again.stdout
    assert json.loads(metrics.read_text())["parameters"] == record["parameters"]


def test_seeds_reuse_a_run_saved_before_a_config_field_existed(tmp_path):
    assert run("s6_train.py", *SMALL, "--seeds", "1", "--out", tmp_path / "net").returncode == 0
    metrics = tmp_path / "net-seed1" / "metrics.json"
    record = json.loads(metrics.read_text())
    del record["config"]["cuda_graphs"]  # as if saved before the field was added, with its default behaviour
    metrics.write_text(json.dumps(record))
    again = run("s6_train.py", *SMALL, "--seeds", "1", "--out", tmp_path / "net")
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
    result = run("s6_train.py", "--resume", tmp_path)
    assert_one_line_error(result)
    assert "is not an S6 checkpoint" in result.stderr


def test_resume_from_a_model_pt_is_a_one_line_error(tmp_path):
    torch.save(Net().state_dict(), tmp_path / "checkpoint.pt")
    result = run("s6_train.py", "--resume", tmp_path)
    assert_one_line_error(result)
    assert "cannot be resumed" in result.stderr
