"""Every number the README states comes from a committed results file or the code: nothing typed in."""

import json
import re

import pytest
from conftest import ROOT

from s6_model import BaselineNet, Net, TinyNet, count_parameters, receptive_field
from s6_utils import markdown_table, model_summary

README = (ROOT / "README.md").read_text()
RESULTS = ROOT / "results"


def lines_of(table):
    return [line for line in table.splitlines() if line.strip()]


def test_readme_model_summaries_and_receptive_field_table_are_the_code_output():
    for model in (BaselineNet(), Net()):
        assert model_summary(model).strip() in README
    assert markdown_table(receptive_field(Net())) in README


def test_readme_seed_table_rows_are_the_ones_the_seeds_command_prints():
    from s6_train import seeds_table_row

    for model in ("net", "tiny"):
        summary = json.loads((RESULTS / model / "seeds.json").read_text())["summary"]
        row = markdown_table([seeds_table_row(model, summary)]).splitlines()[-1]
        assert row in README, row


def test_readme_gives_net_mean_unrounded_where_rounding_would_pass_the_target():
    summary = json.loads((RESULTS / "net" / "seeds.json").read_text())["summary"]
    assert f"Net's mean is {summary['final_test_acc_mean']:.3f}% before rounding" in README


def test_readme_single_run_numbers_match_results_net_seed1():
    record = json.loads((RESULTS / "net-seed1" / "metrics.json").read_text())
    summary = record["summary"]
    quoted = (f"{summary['final_test_acc']:.2f}% after epoch {len(record['history'])}, first at or above "
              f"99.4% in epoch {summary['first_epoch_at_target']}, {record['parameters']:,} parameters")
    assert quoted in README


@pytest.mark.parametrize("name", ["bench.json", "bench-cuda.json"])
def test_readme_performance_tables_are_the_ones_the_bench_printed(name):
    from s6_bench import table

    bench = json.loads((RESULTS / name).read_text())
    for line in lines_of(table(bench)):
        assert line in README, line


@pytest.mark.parametrize("run", ["gpu-h100", "gpu-h100-eager"])
def test_readme_gpu_runs_quote_their_metrics(run):
    record = json.loads((RESULTS / run / "metrics.json").read_text())
    seconds = sum(r["seconds"] for r in record["history"])
    quoted = (f"{len(record['history'])} epochs in {seconds:.1f} s on an {record['machine']}, evaluation included, "
              f"ending at {record['summary']['final_test_acc']:.2f}%")
    assert quoted in README, quoted


def test_readme_experiments_table_is_the_one_the_experiments_command_prints():
    path = RESULTS / "experiments.json"
    if not path.exists():
        pytest.skip("results/experiments.json is not committed yet")
    from s6_experiments import table

    for line in lines_of(table(json.loads(path.read_text()))):
        assert line in README, line


def test_every_figure_the_readme_shows_is_in_doc():
    figures = re.findall(r"\]\((doc/[^)]+\.png)\)", README)
    assert len(figures) >= 5
    for figure in figures:
        assert (ROOT / figure).read_bytes().startswith(b"\x89PNG"), figure


def test_readme_parameter_counts_are_the_models():
    for model in (Net(), TinyNet(), BaselineNet()):
        assert f"{count_parameters(model):,}" in README


def test_readme_validation_rows_quote_the_validation_runs():
    for run in sorted((RESULTS / "validation").iterdir()):
        history = json.loads((run / "metrics.json").read_text())["history"]
        row = next(line for line in README.splitlines() if f"`results/validation/{run.name}`" in line)
        for epoch in (5, 10, 20):
            if epoch <= len(history):
                assert f"{history[epoch - 1]['test_acc']:.2f}%" in row, (run.name, epoch)


def test_readme_experiment_models_rows_are_the_code():
    from s6_model import MODELS, feature_receptive_field

    for key, cls in MODELS.items():
        if key == "tiny":
            continue
        row = f"| `{cls.__name__}` (`{key}`) | {count_parameters(cls()):,} | {feature_receptive_field(cls())} |"
        assert row in README, row


def test_readme_quotes_the_committed_notebook_run():
    import nbformat

    notebook = nbformat.read(ROOT / "S6.ipynb", as_version=4)
    last = "".join(out.get("text", "") for out in notebook.cells[-1].outputs)
    final = re.search(r"final test accuracy:\s+([\d.]+%)", last).group(1)
    seconds = re.search(r"training time:\s+(\d+) s", last).group(1)
    first = re.search(r"first epoch at >= 99.4%:\s+(\d+)", last).group(1)
    assert f"trained for {seconds} s" in README
    assert f"ended at {final} test accuracy and first reached 99.4% in epoch {first}" in README
