"""s6_bench.py on a few batches: the JSON it writes is complete."""

import json

from conftest import DATA_DIR, WEIGHTS, assert_one_line_error

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


def test_step_phases_time_each_phase_of_the_training_steps(small_config):
    config = small_config(recipe="quick")
    run = set_up(config, "cpu")
    phases = step_phases(run, config, batches=2)
    assert list(phases) == ["data", "forward", "backward", "optimizer", "weight average"]
    assert all(seconds > 0 for seconds in phases.values())
    assert run.scheduler.last_epoch == 2  # the steps were taken


def test_with_a_teacher_the_bench_times_the_model_without_and_with_it(tmp_path, run_in_process):
    out = tmp_path / "bench.json"
    result = run_in_process("s6_bench.py", "--reps", "2", "--batches", "2", "--warmup", "1", "--device", "cpu",
                            "--data-dir", DATA_DIR, "--model", "micro", "--teacher", WEIGHTS, "--out", out)
    assert result.returncode == 0, result.stderr
    bench = json.loads(out.read_text())
    fast, distilled = bench["ways"]["fast"], bench["ways"]["distilled"]
    assert (fast["config"]["teacher"], distilled["config"]["teacher"]) == (None, str(WEIGHTS))
    assert fast["config"]["model"] == distilled["config"]["model"] == bench["model"] == "micro"
    ratio = fast["median_images_per_second"] / distilled["median_images_per_second"]
    assert bench["distilled_to_fast_seconds"] == ratio
    assert "A distilled step takes" in result.stdout


def test_a_student_without_a_teacher_or_a_teacher_with_full_runs_is_a_one_line_error(run_in_process):
    for flags in (["--model", "micro"], ["--teacher", WEIGHTS, "--full"]):
        result = run_in_process("s6_bench.py", *flags)
        assert result.returncode == 2
        assert_one_line_error(result)
