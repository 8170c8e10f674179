"""tools/bench.py on a few batches: the JSON it writes is complete, and what it times is what ran."""

import json

import torch
from conftest import DATA_DIR, assert_one_line_error

from s6.config import TrainConfig, recipe_of
from s6.data import make_loaders
from s6.training import set_up
from tools.bench import Trainer, seconds_to_target, step_phases


def test_bench_writes_both_pipelines_their_ratio_and_flops(tmp_path, run_in_process):
    out = tmp_path / "bench.json"
    result = run_in_process("tools/bench.py", "--reps", "2", "--batches", "3", "--warmup", "1", "--device", "cpu",
                            "--data-dir", DATA_DIR, "--out", out)
    assert result.returncode == 0, result.stderr
    bench = json.loads(out.read_text())
    assert set(bench["ways"]) == {"conventional", "fast", "quick"}
    assert recipe_of(TrainConfig(**bench["ways"]["quick"]["config"])) == "quick"
    for way in bench["ways"].values():
        assert len(way["images_per_second"]) == 2 and way["median_images_per_second"] > 0
        assert 0 < way["fraction_of_matmul"] < 1
    assert bench["ways"]["conventional"]["config"]["pipeline"] == "torchvision"
    fast = bench["ways"]["fast"]["median_images_per_second"]
    assert bench["speedup"] == fast / bench["ways"]["conventional"]["median_images_per_second"]
    assert 1e6 < bench["flops_per_training_image"] < 1e8
    assert "| fast |" in result.stdout and "Speed-up" in result.stdout
    again = run_in_process("tools/bench.py", "--device", "cpu", "--data-dir", DATA_DIR, "--out", out)
    assert_one_line_error(again)
    assert "bench.json exists already" in again.stderr


def test_seconds_to_target_count_epochs_not_evaluated_until_an_evaluated_one_reaches_it():
    history = [{"seconds": 10.0, "test_acc": None}, {"seconds": 10.0, "test_acc": 99.3},
               {"seconds": 11.0, "test_acc": 99.45}]
    assert seconds_to_target(history) == 31.0
    assert seconds_to_target(history, target=99.3) == 20.0
    assert seconds_to_target(history[:2]) is None


def test_the_profile_times_the_phases_of_the_real_training_epoch_and_leaves_the_model_as_it_was(small_config):
    config = small_config("quick")
    loader, _ = make_loaders(config, "cpu")
    run = set_up(config, "cpu", len(loader))
    phases = step_phases(run, loader, config, batches=2)
    assert list(phases) == ["data", "forward", "backward", "optimizer", "weight average", "other"]
    assert all(seconds > 0 for name, seconds in phases.items() if name != "other")
    assert run.scheduler.last_epoch == 2  # the steps were taken, by train_one_epoch itself
    assert not run.model._forward_pre_hooks and not run.model._forward_hooks, "the spans' hooks are removed"
    assert not {"forward", "update_parameters"} & (set(vars(run.model)) | set(vars(run.ema)))


# 50 training images in batches of 32: an epoch of two batches, the second of 18 images
FIFTY_IMAGES = dict(val_split=60_000 - 50, batch_size=32, max_batches=0)


def test_more_batches_than_an_epoch_holds_are_trained_and_counted_as_the_images_they_held(small_config):
    trainer = Trainer(small_config(**FIFTY_IMAGES), torch.device("cpu"), steps=5)
    assert trainer.train(5) == 32 + 18 + 32 + 18 + 32
    assert trainer.run.scheduler.last_epoch == 5


def test_repetitions_beyond_the_recipes_steps_get_a_schedule_long_enough(small_config):
    config = small_config("quick", **FIFTY_IMAGES)  # three epochs: six steps
    trainer = Trainer(config, torch.device("cpu"), steps=1 + 15 * 2)
    for _ in range(1 + 15):
        trainer.train(2)
    assert trainer.config == config, "the record keeps the way's own config"
