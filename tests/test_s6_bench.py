"""s6_bench.py on a few batches: the JSON it writes is complete."""

import json

from conftest import DATA_DIR, assert_one_line_error, run_script


def test_bench_writes_both_pipelines_their_ratio_and_flops(tmp_path):
    out = tmp_path / "bench.json"
    result = run_script("s6_bench.py", "--reps", "2", "--batches", "3", "--warmup", "1", "--device", "cpu",
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
    again = run_script("s6_bench.py", "--device", "cpu", "--data-dir", DATA_DIR, "--out", out)
    assert_one_line_error(again)
    assert "bench.json exists already" in again.stderr
