"""s6_train.py as a user runs it, on a few batches: its main(argv), and a process where that is what is tested."""

import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pytest
import torch
from conftest import (
    DATA_DIR,
    ROOT,
    SMALL,
    LikeNet,
    assert_one_line_error,
    file_size_limit,
    run_script,
    small,
    stop_after_epoch,
    without_seconds,
)

from s6.checkpoints import load_weights
from s6.config import TrainConfig, recipe
from s6.data import MNIST_FILES, make_loaders
from s6.training import evaluate, fit
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


def test_every_train_flag_has_help_text(capsys):
    import s6_train

    with pytest.raises(SystemExit):
        s6_train.parse_args(["--help"])
    text = capsys.readouterr().out
    helps = {}  # flag -> the help text --help prints for it
    for entry in re.split(r"\n(?=  -)", text[text.index("options:"):])[1:]:
        first, *rest = entry.splitlines()
        invocation, _, same_line = first.strip().partition("  ")  # argparse puts 2+ spaces before the help
        helps |= {flag: " ".join([same_line, *rest]).strip() for flag in re.findall(r"--[\w-]+", invocation)}
    flags = [f.name.replace("_", "-") for f in dataclasses.fields(TrainConfig)]
    for flag in flags + ["recipe", "out", "seeds", "resume", "overwrite", "threads", "no-progress"]:
        assert helps.get(f"--{flag}"), f"--{flag} has no help text"


def test_invalid_value_is_a_one_line_error_naming_the_field(tmp_path):
    result = run_script("s6_train.py", "--lr", "-1", "--data-dir", DATA_DIR, "--out", tmp_path / "run")
    assert_one_line_error(result)
    assert "TrainConfig.lr=-1.0" in result.stderr


def test_missing_data_is_a_one_line_error(tmp_path, offline, capsys):
    import s6_train
    from s6.cli import run_main

    assert run_main(s6_train.main, ["--data-dir", str(tmp_path), "--epochs", "1", "--no-progress",
                                    "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert f"MNIST is not in {tmp_path / 'MNIST' / 'raw'}" in err and "train-images-idx3-ubyte" in err


def test_the_quick_recipe_is_saved_with_the_run_and_evaluates_its_last_epoch_only(tmp_path, capsys):
    import s6_train

    assert s6_train.main([*SMALL, "--recipe", "quick", "--out", str(tmp_path / "run")]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["recipe"] == "quick, with epochs=2, batch_size=32, max_batches=3", "SMALL's flags changed it"
    assert metrics["config"]["ema_decay"] == recipe("quick").ema_decay != TrainConfig().ema_decay
    assert [record["test_acc"] is None for record in metrics["history"]] == [True, False]
    assert metrics["summary"]["final_test_acc"] == metrics["history"][-1]["test_acc"]
    assert "not evaluated" in capsys.readouterr().out


@pytest.fixture
def seed1_done(finished_run, tmp_path):
    """tmp_path/net-seed1: the finished run, which `--seeds 1 ... --out tmp_path/net` with SMALL reuses."""
    shutil.copytree(finished_run, tmp_path / "net-seed1")
    return tmp_path / "net-seed1"


def test_seeds_write_per_seed_runs_and_statistics(seed1_done, tmp_path, run_in_process):
    result = run_in_process("s6_train.py", *SMALL, "--seeds", "1", "2", "--out", tmp_path / "net")
    assert result.returncode == 0, result.stderr
    seeds = json.loads((tmp_path / "net" / "seeds.json").read_text())
    assert set(seeds["runs"]) == {"1", "2"}
    finals = [runs[-1]["test_acc"] for runs in seeds["runs"].values()]
    assert seeds["summary"]["final_test_acc_mean"] == pytest.approx(sum(finals) / 2)
    assert (tmp_path / "net-seed2" / "model.pt").exists()
    assert "| net |" in result.stdout
    again = run_in_process("s6_train.py", *SMALL, "--seeds", "1", "2", "--out", tmp_path / "net")
    assert again.stdout.count("reusing the finished run") == 2


def test_seeds_refuse_to_replace_a_run_whose_model_has_changed_unless_told_to(seed1_done, tmp_path, run_in_process):
    metrics = seed1_done / "metrics.json"
    record = json.loads(metrics.read_text())
    metrics.write_text(json.dumps({**record, "parameters": record["parameters"] + 1}))  # as if Net were redesigned
    refused = run_in_process("s6_train.py", *SMALL, "--seeds", "1", "--out", tmp_path / "net")
    assert_one_line_error(refused)
    assert "--overwrite" in refused.stderr and str(seed1_done) in refused.stderr
    again = run_in_process("s6_train.py", *SMALL, "--seeds", "1", "--out", tmp_path / "net", "--overwrite")
    assert again.returncode == 0, again.stderr
    assert json.loads(metrics.read_text())["parameters"] == record["parameters"]


def test_a_sweep_run_again_with_another_data_folder_and_device_reuses_its_finished_seeds(seed1_done, tmp_path,
                                                                                      run_in_process):
    elsewhere = tmp_path / "data-elsewhere"
    elsewhere.symlink_to(Path(DATA_DIR).resolve(), target_is_directory=True)
    placement = {"--data-dir": str(elsewhere), "--device": None}  # another folder; the best device, not "cpu"
    flags = [flag for i, flag in enumerate(SMALL) if flag not in placement and SMALL[i - 1] not in placement]
    again = run_in_process("s6_train.py", *flags, "--data-dir", elsewhere, "--seeds", "1", "--out", tmp_path / "net")
    assert again.returncode == 0, again.stderr
    assert "reusing the finished run" in again.stdout


def test_a_validation_sweep_is_labelled_validation_not_test(tmp_path, run_in_process):
    result = run_in_process("s6_train.py", *SMALL, "--val-split", "5000", "--seeds", "1", "--out", tmp_path / "val")
    assert result.returncode == 0, result.stderr
    assert "val acc" in result.stdout and "test acc" not in result.stdout
    assert "| last-epoch validation acc, mean ± std |" in result.stdout
    assert json.loads((tmp_path / "val" / "seeds.json").read_text())["summary"]["eval_set"] == "validation"


def test_seeds_reuse_a_run_saved_before_a_config_field_existed(seed1_done, tmp_path, run_in_process):
    metrics = seed1_done / "metrics.json"
    record = json.loads(metrics.read_text())
    del record["config"]["cuda_graphs"]  # as if saved before the field was added, with its default behaviour
    metrics.write_text(json.dumps(record))
    again = run_in_process("s6_train.py", *SMALL, "--seeds", "1", "--out", tmp_path / "net")
    assert again.returncode == 0, again.stderr
    assert "reusing the finished run" in again.stdout


def test_ctrl_c_keeps_finished_epochs_says_how_to_resume_and_resume_finishes(tmp_path, capsys):
    import s6_train

    epochs = 4  # the signal comes once epoch 1 is saved: three epochs' time for it to arrive before the end
    args = [sys.executable, str(ROOT / "s6_train.py"), "--epochs", str(epochs), "--max-batches", "3",
            "--batch-size", "32", "--device", "cpu", "--data-dir", DATA_DIR, "--no-progress", "--out", str(tmp_path)]
    # Ctrl-C's default action, as a terminal gives its foreground job: a test runner started in the
    # background (`cmd &` in a script) passes SIGINT on as ignored, and Python then raises no KeyboardInterrupt
    restore_ctrl_c = partial(signal.signal, signal.SIGINT, signal.SIG_DFL)
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                               preexec_fn=restore_ctrl_c)
    deadline = time.monotonic() + 240
    while not (tmp_path / "checkpoint.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, "the run ended before Ctrl-C reached it" if process.returncode == 0 else stderr
    hint = f"python s6_train.py --resume {tmp_path}"
    assert stderr.strip().endswith(hint) and "Traceback" not in stderr
    checkpoint = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    done = checkpoint["history"]  # metrics.json, written next, may lag it by an epoch if Ctrl-C came between
    assert 1 <= checkpoint["epoch"] == len(done) < epochs and not (tmp_path / "model.pt").exists()
    assert s6_train.main(hint.split()[2:]) == 0  # the command the hint gives
    assert f"resuming after epoch {len(done)}" in capsys.readouterr().out
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert [r["epoch"] for r in metrics["history"]] == list(range(1, epochs + 1))
    assert without_seconds(metrics["history"][:len(done)]) == without_seconds(done)
    assert (tmp_path / "model.pt").exists()


def test_resume_of_a_file_that_is_not_a_checkpoint_is_a_one_line_error(tmp_path, run_in_process):
    (tmp_path / "checkpoint.pt").write_text("not a checkpoint")
    result = run_in_process("s6_train.py", "--resume", tmp_path)
    assert_one_line_error(result)
    assert f"{tmp_path / 'checkpoint.pt'} cannot be read" in result.stderr


def test_resume_from_a_model_pt_is_a_one_line_error(tmp_path, run_in_process):
    torch.save(Net().state_dict(), tmp_path / "checkpoint.pt")
    result = run_in_process("s6_train.py", "--resume", tmp_path)
    assert_one_line_error(result)
    assert "cannot be resumed" in result.stderr


def test_a_new_run_into_a_folder_with_a_finished_run_is_refused_unless_told_to_overwrite(finished_run, tmp_path,
                                                                                          run_in_process):
    folder = tmp_path / "run"
    shutil.copytree(finished_run, folder)
    before = (folder / "model.pt").read_bytes()
    refused = run_in_process("s6_train.py", *SMALL, "--seed", "2", "--out", folder)
    assert_one_line_error(refused)
    assert "already holds a finished run" in refused.stderr and "--overwrite" in refused.stderr
    assert (folder / "model.pt").read_bytes() == before
    replaced = run_in_process("s6_train.py", *SMALL, "--seed", "2", "--out", folder, "--overwrite")
    assert replaced.returncode == 0, replaced.stderr
    assert json.loads((folder / "metrics.json").read_text())["config"]["seed"] == 2


@pytest.fixture(scope="module")
def stopped_small_run(tmp_path_factory):
    """A folder holding the run of SMALL's flags stopped during its last epoch; copy it before changing it."""
    folder = tmp_path_factory.mktemp("stopped") / "run"
    stopped_run(small(), folder)
    return folder


def stopped_run(config, folder):
    """A run of `config` in `folder`, stopped by Ctrl-C during its last epoch, before that epoch was saved.

    `small_config()` is the run that `s6_train.py` makes with SMALL's flags."""
    def log(line):
        if line.startswith(f"{config.epochs:5d} |"):
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        fit(config, out_dir=folder, progress=False, log=log)


def test_a_new_run_into_a_stopped_runs_folder_is_refused_with_how_to_resume_it(stopped_small_run, tmp_path,
                                                                               run_in_process):
    shutil.copytree(stopped_small_run, tmp_path, dirs_exist_ok=True)
    refused = run_in_process("s6_train.py", *SMALL, "--out", tmp_path)
    assert_one_line_error(refused)
    assert f"stopped after epoch 1 of 2: continue it with --resume {tmp_path}" in refused.stderr


def test_a_stopped_seed_is_resumed_and_ends_as_an_uninterrupted_run(stopped_small_run, finished_run, tmp_path,
                                                                    run_in_process):
    shutil.copytree(stopped_small_run, tmp_path / "net-seed1", dirs_exist_ok=True)
    result = run_in_process("s6_train.py", *SMALL, "--seeds", "1", "--out", tmp_path / "net")
    assert result.returncode == 0, result.stderr
    assert "resuming after epoch 1" in result.stdout
    resumed = json.loads((tmp_path / "net-seed1" / "metrics.json").read_text())["history"]
    uninterrupted = json.loads((finished_run / "metrics.json").read_text())["history"]
    assert without_seconds(resumed) == without_seconds(uninterrupted)


def test_resume_takes_another_data_folder_and_device_but_no_setting_that_changes_the_run(stopped_small_run, tmp_path,
                                                                                         run_in_process):
    shutil.copytree(stopped_small_run, tmp_path / "run", dirs_exist_ok=True)
    moved = tmp_path / "moved-data" / "MNIST" / "raw"
    moved.mkdir(parents=True)
    for name in MNIST_FILES:
        (moved / name).symlink_to(Path(DATA_DIR) / "MNIST" / "raw" / name)
    changed = run_in_process("s6_train.py", "--resume", tmp_path / "run", "--lr", "0.05", "--no-progress")
    assert_one_line_error(changed)
    assert "the flags change it (lr 0.1 there, 0.05 here)" in changed.stderr
    resumed = run_in_process("s6_train.py", "--resume", tmp_path / "run", "--data-dir", tmp_path / "moved-data",
                             "--device", "cpu", "--epochs", "2", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert len(metrics["history"]) == 2 and metrics["config"]["data_dir"] == str(tmp_path / "moved-data")


def test_ctrl_c_before_the_first_epoch_is_saved_says_to_run_again_not_to_resume(tmp_path, monkeypatch, capsys):
    import s6_train

    def interrupted(*_, **__):
        raise KeyboardInterrupt

    monkeypatch.setattr(s6_train, "fit", interrupted)
    assert s6_train.main(["--out", str(tmp_path / "run"), "--data-dir", DATA_DIR]) == 130
    hint = capsys.readouterr().err
    assert "nothing was saved" in hint and "--resume" not in hint


def test_a_full_disk_ends_a_run_or_a_resume_in_one_line_before_training_and_leaves_no_temporary_file(stopped_small_run,
                                                                                                     tmp_path):
    full_disk = file_size_limit(100_000)  # a checkpoint of Net is over 200 KB
    fresh = run_script("s6_train.py", *SMALL, "--out", tmp_path / "fresh", preexec_fn=full_disk)
    assert_one_line_error(fresh)
    assert f"cannot save checkpoints in {tmp_path / 'fresh'} (File too large)" in fresh.stderr
    assert not re.search(r"^ +1 \|", fresh.stdout, re.MULTILINE), "it stopped before the first epoch"
    assert not [path.name for path in (tmp_path / "fresh").iterdir() if path.suffix in (".tmp", ".pt", ".json")]
    shutil.copytree(stopped_small_run, tmp_path / "stopped", dirs_exist_ok=True)
    before = (tmp_path / "stopped" / "checkpoint.pt").read_bytes()
    resumed = run_script("s6_train.py", "--resume", tmp_path / "stopped", "--threads", torch.get_num_threads(),
                         preexec_fn=full_disk)
    assert_one_line_error(resumed)
    assert "File too large" in resumed.stderr
    assert (tmp_path / "stopped" / "checkpoint.pt").read_bytes() == before
    assert not list((tmp_path / "stopped").glob("*.tmp"))


def test_a_read_only_folder_ends_in_one_line_naming_it(tmp_path, read_only, run_in_process):
    folder = read_only(tmp_path / "read-only")
    result = run_in_process("s6_train.py", *SMALL, "--out", folder / "run")
    assert_one_line_error(result)
    assert f"cannot write to {folder / 'run'} (" in result.stderr
    assert "Read-only file system" in result.stderr or "Permission denied" in result.stderr


@pytest.mark.parametrize("flags", [["--seed", "-1"], ["--seed", str(2**32)], ["--seeds", "1", "-1"]])
def test_a_seed_out_of_range_ends_in_one_line_before_any_folder_is_made(flags, tmp_path, run_in_process):
    result = run_in_process("s6_train.py", *SMALL, *flags, "--out", tmp_path / "run")
    assert_one_line_error(result)
    assert "TrainConfig.seed=" in result.stderr
    assert not list(tmp_path.iterdir())


def test_a_resume_on_another_number_of_threads_is_refused_naming_the_flag_that_keeps_it_exact(stopped_small_run,
                                                                                              tmp_path, run_in_process):
    threads = torch.get_num_threads()
    shutil.copytree(stopped_small_run, tmp_path / "run")  # its checkpoint records the threads it trained on
    try:
        refused = run_in_process("s6_train.py", "--resume", tmp_path / "run", "--threads", 3 - min(threads, 2))
        assert_one_line_error(refused)
        assert f"resume with --threads {threads}" in refused.stderr
        resumed = run_in_process("s6_train.py", "--resume", tmp_path / "run", "--threads", threads, "--no-progress")
    finally:
        torch.set_num_threads(threads)
    assert resumed.returncode == 0, resumed.stderr


@pytest.mark.parametrize("args, message", [
    (["--threads", "-1"], "not a positive number"),
    (["--weight-decay", "inf"], "TrainConfig.weight_decay=inf"),
    (["--out", "README.md"], "cannot write to README.md (it is a file)"),
    (["--out", "README.md/run"], "cannot write to README.md/run"),
    (["--resume", "results/net-seed1", "--seeds", "1"], "leave out --out, --seeds"),
    (["--seeds", "1", "2", "--seed", "3"], "--seed and --seeds: give one"),
])
def test_careless_flags_end_in_one_line_before_any_training(args, message, monkeypatch, capsys, tmp_path):
    import s6_train
    from s6.cli import run_main

    def no_training(*_, **__):
        raise AssertionError("training started")

    monkeypatch.chdir(ROOT)  # where README.md is a file
    monkeypatch.setattr("s6.training.train_one_epoch", no_training)
    out = [] if "--out" in args else ["--out", str(tmp_path / "run")]  # never the default, results/run
    try:
        code = run_main(s6_train.main, ["--data-dir", DATA_DIR, *out, *args])
    except SystemExit as exit:  # argparse's errors
        code = exit.code
    err = capsys.readouterr().err
    assert code in (1, 2) and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert message in err


def test_a_bug_keeps_its_traceback_where_a_users_mistake_is_one_line(tmp_path, monkeypatch):
    import s6_train
    from s6.cli import run_main

    def numpy_bug(*args, **kwargs):
        raise ValueError("operands could not be broadcast together with shapes (3,) (4,)")

    monkeypatch.setattr(s6_train, "fit", numpy_bug)
    with pytest.raises(ValueError, match="broadcast"):  # not caught: run_main catches UserError only
        run_main(s6_train.main, [*SMALL, "--out", str(tmp_path / "run")])


def test_resuming_a_checkpoint_with_unknown_settings_is_a_one_line_error(finished_run, tmp_path, run_in_process):
    state = torch.load(finished_run / "checkpoint.pt", weights_only=True)
    state["config"]["warp_drive"] = True
    torch.save(state, tmp_path / "checkpoint.pt")
    result = run_in_process("s6_train.py", "--resume", tmp_path)
    assert_one_line_error(result)
    assert "warp_drive" in result.stderr


def test_seeds_with_a_damaged_metrics_json_stop_at_once_naming_it(seed1_done, tmp_path, run_in_process):
    (seed1_done / "metrics.json").write_text("{")
    result = run_in_process("s6_train.py", *SMALL, "--seeds", "1", "2", "--out", tmp_path / "net")
    assert_one_line_error(result)
    assert "net-seed1/metrics.json is damaged" in result.stderr
    assert not (tmp_path / "net-seed2").exists()


LOCK_HOLDER = """import sys, time
from s6.runs import run_lock
with run_lock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(120)
"""


@pytest.fixture
def lock_holder():
    """start(folder): a process that holds run_lock(folder), as a training run does, until the test ends or kills
    it."""
    processes = []

    def start(folder):
        process = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(folder)], cwd=ROOT, text=True,
                                   stdout=subprocess.PIPE)
        processes.append(process)
        assert process.stdout.readline() == "locked\n"
        return process
    yield start
    for process in processes:
        process.kill()
        process.wait()


def test_a_second_run_into_a_folder_a_run_is_training_in_is_refused_at_once_and_the_first_finishes(tmp_path,
                                                                                                  run_in_process):
    out = tmp_path / "run"
    first = subprocess.Popen([sys.executable, str(ROOT / "s6_train.py"), *SMALL, "--epochs", "3", "--out", out],
                             cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert first.stdout.readline()  # its first line, the config, comes once it holds the folder
        for flags in (["--out", out], ["--seeds", 1, "--out", out]):  # the sweep's own folder is `out` too
            second = run_in_process("s6_train.py", *SMALL, *flags)
            assert_one_line_error(second)
            assert f"{out} is in use by a run still training there (pid {first.pid}," in second.stderr
        stdout, stderr = first.communicate(timeout=300)
    finally:
        first.kill()
    assert first.returncode == 0, stderr
    assert json.loads((out / "metrics.json").read_text())["config"]["epochs"] == 3, "the first run's files"


def test_a_sweep_refuses_while_a_run_trains_in_one_of_its_seed_folders_and_a_second_sweep_too(tmp_path, lock_holder,
                                                                                             run_in_process):
    lock_holder(tmp_path / "net-seed2")
    result = run_in_process("s6_train.py", *SMALL, "--seeds", 1, 2, "--out", tmp_path / "net")
    assert_one_line_error(result)
    assert f"{tmp_path / 'net-seed2'} is in use by a run still training there" in result.stderr
    assert not (tmp_path / "net-seed1" / "metrics.json").exists(), "refused before any seed trained"
    lock_holder(tmp_path / "other")
    result = run_in_process("s6_train.py", *SMALL, "--seeds", 1, "--out", tmp_path / "other")
    assert f"{tmp_path / 'other'} is in use" in result.stderr


def test_a_killed_runs_lock_does_not_block_the_next_run(tmp_path, lock_holder, run_in_process):
    out = tmp_path / "run"
    holder = lock_holder(out)
    holder.kill()  # SIGKILL: no clean-up of its own; the holder's note stays, the OS lock goes with the process
    holder.wait()
    assert (out / ".s6-run.holder").exists()
    result = run_in_process("s6_train.py", *SMALL, "--out", out)
    assert result.returncode == 0, result.stderr
    assert (out / "model.pt").exists()


def test_a_stopped_run_of_ones_own_network_is_refused_by_the_command_saying_how_to_resume_it_in_python(
        small_config, tmp_path, run_in_process):
    folder = tmp_path / "mine"
    with pytest.raises(KeyboardInterrupt):
        fit(small_config(), out_dir=folder, progress=False, log=stop_after_epoch(1), model=LikeNet)
    for flags in (["--resume", folder], [*SMALL, "--out", folder]):
        result = run_in_process("s6_train.py", *flags)
        assert_one_line_error(result)
        assert f"fit(load_config('{folder / 'checkpoint.pt'}'), out_dir='{folder}', resume=True, model=LikeNet)" \
            in result.stderr
        assert "--resume" not in result.stderr, "the command cannot resume it"


def test_seeds_do_not_reuse_a_run_saved_before_a_setting_it_lacks_took_todays_default(seed1_done, tmp_path,
                                                                                     run_in_process):
    metrics = seed1_done / "metrics.json"
    record = json.loads(metrics.read_text())
    del record["config"]["ema_decay"]  # saved before the weight average existed: trained without one
    metrics.write_text(json.dumps(record))
    refused = run_in_process("s6_train.py", *SMALL, "--seeds", "1", "--out", tmp_path / "net")
    assert_one_line_error(refused)
    assert f"{seed1_done} holds a finished run (net, 2 epochs) of another config (ema_decay 0.0 there, 0.998 here)" \
        in refused.stderr


@pytest.fixture
def run_with_a_damaged_history(finished_run, tmp_path):
    """A copy of the finished run whose metrics.json and checkpoint.pt lack an epoch's test accuracy."""
    folder = tmp_path / "net-seed1"
    shutil.copytree(finished_run, folder)
    record = json.loads((folder / "metrics.json").read_text())
    del record["history"][0]["test_acc"]
    (folder / "metrics.json").write_text(json.dumps(record))
    state = torch.load(folder / "checkpoint.pt", weights_only=True)
    del state["history"][0]["test_acc"]
    torch.save(state, folder / "checkpoint.pt")
    return folder


@pytest.mark.parametrize("command", ["figures", "resume", "sweep", "export"])
def test_a_history_whose_entries_lack_their_fields_ends_in_one_line_wherever_it_is_read(
        run_with_a_damaged_history, tmp_path, run_in_process, command):
    folder = run_with_a_damaged_history
    if command == "resume":
        (folder / "model.pt").unlink()  # a stopped run: its checkpoint is read
    arguments = {"figures": ("tools/figures.py", folder, "--out", tmp_path / "doc"),
                 "resume": ("s6_train.py", "--resume", folder),
                 "sweep": ("s6_train.py", *SMALL, "--seeds", "1", "--out", tmp_path / "net"),
                 "export": ("s6_export.py", folder)}[command]
    result = run_in_process(*arguments)
    assert_one_line_error(result)
    damaged = "metrics.json is damaged" if command != "resume" else "checkpoint.pt is not a whole checkpoint"
    assert damaged in result.stderr


def test_mnist_packed_in_a_read_only_folder_is_a_one_line_error_naming_that_cause_not_the_network(
        tmp_path, read_only, offline, run_in_process):
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in MNIST_FILES:
        (raw / f"{name}.gz").write_bytes(b"\x1f\x8b packed")
    read_only(tmp_path / "data")
    result = run_in_process("s6_train.py", *SMALL, "--data-dir", tmp_path / "data", "--out", tmp_path / "run")
    assert_one_line_error(result)
    assert f"MNIST is not unpacked in {raw}, and S6 cannot write there" in result.stderr
    assert "unpack the .gz files there with gunzip" in result.stderr and "internet" not in result.stderr


def test_a_resume_in_a_read_only_folder_says_to_make_it_writable_not_to_choose_another(stopped_small_run, tmp_path,
                                                                                       read_only, run_in_process):
    shutil.copytree(stopped_small_run, tmp_path / "run", dirs_exist_ok=True)
    read_only(tmp_path / "run")
    result = run_in_process("s6_train.py", "--resume", tmp_path / "run", "--no-progress")
    assert_one_line_error(result)
    assert "make it writable, or copy the run to a folder that is and resume it there" in result.stderr
    assert "choose another" not in result.stderr


def test_deleting_the_files_in_a_runs_folder_while_it_trains_does_not_let_a_second_run_in(tmp_path, lock_holder,
                                                                                         run_in_process):
    out = tmp_path / "run"
    lock_holder(out)
    for leftover in out.iterdir():  # the holder's note, any lock file: what a careless clean-up deletes
        leftover.unlink()
    second = run_in_process("s6_train.py", *SMALL, "--out", out)
    assert_one_line_error(second)
    assert f"{out} is in use by a run still training there" in second.stderr


def test_a_new_run_into_a_folder_holding_files_made_from_other_weights_is_refused_unless_told_to_overwrite(
        tmp_path, run_in_process):
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "export.json").write_text('{"exports": {}}')  # a record of exports, such as results/export.json
    refused = run_in_process("s6_train.py", *SMALL, "--out", folder)
    assert_one_line_error(refused)
    assert "holds export.json, made from other weights" in refused.stderr and (folder / "export.json").exists()
    assert run_in_process("s6_train.py", *SMALL, "--out", folder, "--overwrite").returncode == 0
    assert not (folder / "export.json").exists() and (folder / "model.pt").exists()


@pytest.mark.parametrize("saved, said", [({"bf16": "opposite"}, "bfloat16 autocast and this resume would train"),
                                         ({"device": "cuda"}, "resume with --device cuda")],
                         ids=["bf16 then, not now", "another kind of device"])
def test_a_resume_that_would_compute_otherwise_is_refused_in_one_line(stopped_small_run, tmp_path, run_in_process,
                                                                      saved, said):
    shutil.copytree(stopped_small_run, tmp_path / "run", dirs_exist_ok=True)
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    state.update({key: (not state[key]) if value == "opposite" else value for key, value in saved.items()})
    torch.save(state, tmp_path / "run" / "checkpoint.pt")
    result = run_in_process("s6_train.py", "--resume", tmp_path / "run", "--no-progress")
    assert_one_line_error(result)
    assert said in result.stderr


def test_a_sweep_into_a_seed_folder_holding_exports_of_other_weights_is_refused_before_any_training(tmp_path,
                                                                                                  run_in_process):
    (tmp_path / "net-seed2").mkdir()
    (tmp_path / "net-seed2" / "model.onnx").write_bytes(b"an export of other weights")
    refused = run_in_process("s6_train.py", *SMALL, "--seeds", "1", "2", "--out", tmp_path / "net")
    assert_one_line_error(refused)
    assert "net-seed2 holds model.onnx, made from other weights" in refused.stderr
    assert not (tmp_path / "net-seed1").exists() and (tmp_path / "net-seed2" / "model.onnx").exists()
