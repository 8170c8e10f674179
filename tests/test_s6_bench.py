"""s6_bench.py on a few batches: the JSON it writes is complete."""

import json

from conftest import DATA_DIR, assert_one_line_error

from s6_bench import seconds_to_target, step_phases
from s6_utils import set_up


def test_bench_writes_both_pipelines_their_ratio_and_flops(tmp_path, run_in_process):
    out = tmp_path / "bench.json"
    result = run_in_process("s6_bench.py", "--reps", "2", "--batches", "3", "--warmup", "1", "--device", "cpu",
                            "--data-dir", DATA_DIR, "--out", out)
    assert result.returncode == 0, result.stderr
    bench = json.loads(out.read_text())
    assert set(bench["ways"]) == {"conventional", "fast", "quick"}
    assert bench["ways"]["quick"]["config"]["recipe"] == "quick"
    for way in bench["ways"].values():
        assert len(way["images_per_second"]) == 2 and way["median_images_per_second"] > 0
        assert 0 < way["fraction_of_matmul"] < 1
    assert bench["ways"]["conventional"]["config"]["pipeline"] == "torchvision"
    fast = bench["ways"]["fast"]["median_images_per_second"]
    assert bench["speedup"] == fast / bench["ways"]["conventional"]["median_images_per_second"]
    assert 1e6 < bench["flops_per_training_image"] < 1e8
    assert "| fast |" in result.stdout and "Speed-up" in result.stdout
    again = run_in_process("s6_bench.py", "--device", "cpu", "--data-dir", DATA_DIR, "--out", out)
    assert_one_line_error(again)
    assert "bench.json exists already" in again.stderr


def test_seconds_to_target_count_epochs_not_evaluated_until_an_evaluated_one_reaches_it():
    history = [{"seconds": 10.0, "test_acc": None}, {"seconds": 10.0, "test_acc": 99.3},
               {"seconds": 11.0, "test_acc": 99.45}]
    assert seconds_to_target(history) == 31.0
    assert seconds_to_target(history, target=99.3) == 20.0
    assert seconds_to_target(history[:2]) is None


def test_the_profile_times_the_phases_of_the_real_training_epoch(small_config):
    config = small_config(recipe="quick")
    run = set_up(config, "cpu")
    phases = step_phases(run, config, batches=2)
    assert list(phases) == ["data", "forward", "backward", "optimizer", "weight average", "other"]
    assert all(seconds > 0 for name, seconds in phases.items() if name != "other")
    assert run.scheduler.last_epoch == 2  # the steps were taken, by train_one_epoch itself
    assert "forward" not in vars(run.model)  # the span around the forward is taken off again
