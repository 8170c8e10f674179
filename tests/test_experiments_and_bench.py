"""s6_experiments.py and s6_bench.py on a few batches: the JSON they write is complete."""

import json

from conftest import DATA_DIR
from test_cli import run

from s6_model import MODELS, count_parameters


def test_experiments_write_one_record_per_model_and_the_readme_table(tmp_path):
    out, plot = tmp_path / "experiments.json", tmp_path / "experiments.png"
    result = run("s6_experiments.py", "--models", "arch1", "net", "--epochs", "2", "--max-batches", "10",
                 "--data-dir", DATA_DIR, "--out", out, "--plot", plot, "--no-progress")
    assert result.returncode == 0, result.stderr
    results = json.loads(out.read_text())
    assert list(results) == ["arch1", "net"]
    for name, record in results.items():
        assert record["parameters"] == count_parameters(MODELS[name]())
        assert len(record["test_acc"]) == 2 and record["final_test_acc"] == record["test_acc"][-1]
        assert record["best_test_acc"] == max(record["test_acc"])
        assert record["seconds_per_epoch"] > 0 and "first_epoch_at_target" in record
    assert results["arch1"]["receptive_field"] == 10 and results["net"]["receptive_field"] == 32
    assert plot.stat().st_size > 0
    assert "| arch1 | 5,642 | 10 |" in result.stdout


def test_experiments_rerun_of_one_model_keeps_the_other_records(tmp_path):
    out, plot = tmp_path / "experiments.json", tmp_path / "experiments.png"
    common = ["--epochs", "1", "--max-batches", "10", "--data-dir", DATA_DIR, "--out", out, "--plot", plot,
              "--no-progress"]
    assert run("s6_experiments.py", "--models", "net", "arch1", *common).returncode == 0
    first = json.loads(out.read_text())
    result = run("s6_experiments.py", "--models", "net", "--seed", "2", *common)
    assert result.returncode == 0, result.stderr
    second = json.loads(out.read_text())
    assert list(second) == ["arch1", "net"]  # the order of the story, not of the runs
    assert second["arch1"] == first["arch1"]
    assert second["net"]["config"]["seed"] == 2
    assert "| arch1 |" in result.stdout and "| net |" in result.stdout


def test_bench_writes_both_pipelines_their_ratio_and_flops(tmp_path):
    out = tmp_path / "bench.json"
    result = run("s6_bench.py", "--reps", "2", "--batches", "3", "--warmup", "1", "--device", "cpu",
                 "--data-dir", DATA_DIR, "--out", out)
    assert result.returncode == 0, result.stderr
    bench = json.loads(out.read_text())
    assert set(bench["ways"]) == {"conventional", "fast"}
    for way in bench["ways"].values():
        assert len(way["images_per_second"]) == 2 and way["median_images_per_second"] > 0
        assert 0 < way["fraction_of_matmul"] < 1
    assert bench["ways"]["conventional"]["config"]["pipeline"] == "torchvision"
    fast = bench["ways"]["fast"]["median_images_per_second"]
    assert bench["speedup"] == fast / bench["ways"]["conventional"]["median_images_per_second"]
    assert 1e6 < bench["flops_per_training_image"] < 1e8
    assert "| fast |" in result.stdout and "Speed-up" in result.stdout


def test_figures_are_written_from_a_finished_run(tmp_path):
    trained = run("s6_train.py", "--epochs", "1", "--max-batches", "10", "--device", "cpu", "--data-dir", DATA_DIR,
                  "--no-progress", "--out", tmp_path / "run")
    assert trained.returncode == 0, trained.stderr
    result = run("s6_figures.py", tmp_path / "run", "--out", tmp_path / "doc")
    assert result.returncode == 0, result.stderr
    for name in ["samples.png", "curves.png", "misclassified.png", "confusion.png"]:
        assert (tmp_path / "doc" / name).read_bytes().startswith(b"\x89PNG")
