"""tools/ablation.py: each variant is a sweep of Net's config with one thing changed, trained by the library's sweep,
and run again it reuses what it finished; the record is written only where nothing is in its way."""

import json

from conftest import assert_one_line_error, quiet, small

from tools import ablation


def test_each_variant_trains_the_sweep_library_function_with_its_change_and_reuses_it_when_run_again(tmp_path,
                                                                                                    monkeypatch):
    monkeypatch.setattr(ablation, "SEEDS", (1, 2))  # two seeds show a sweep as well as three
    ablation.train(["no-dropout", "no-batchnorm"], tmp_path, base=small(epochs=1), log=quiet)
    for name, (_, changes, network) in [(name, ablation.VARIANTS[name]) for name in ("no-dropout", "no-batchnorm")]:
        seeds = json.loads((tmp_path / "ablation" / name / "seeds.json").read_text())
        assert seeds["summary"]["seeds"] == list(ablation.SEEDS)
        for seed in ablation.SEEDS:
            config = json.loads((tmp_path / "ablation" / f"{name}-seed{seed}" / "metrics.json").read_text())["config"]
            assert config["seed"] == seed and all(config[key] == value for key, value in changes.items())
            assert config["model"] == (network.key if network else "net")
    said = []
    ablation.train(["no-dropout"], tmp_path, base=small(epochs=1), log=said.append)
    assert sum("reusing the finished run" in line for line in said) == len(ablation.SEEDS)


def test_the_record_and_figure_are_not_replaced_without_overwrite(tmp_path, run_in_process):
    record, figure = tmp_path / "ablation.json", tmp_path / "ablation.png"
    record.write_text("{}")
    result = run_in_process("tools/ablation.py", "--report", "--out", record, "--plot", figure)
    assert_one_line_error(result)
    assert "ablation.json exists already" in result.stderr and record.read_text() == "{}"
