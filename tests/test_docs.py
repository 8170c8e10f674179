"""README.md and doc/: every number they state comes from a results file, the notebook or the code."""

import json
import re

import nbformat
import pytest
from conftest import ROOT

from s6.plots import markdown_table, model_summary
from s6_frontier import REFERENCES
from s6_model import (
    MODELS,
    BaselineNet,
    MicroNet,
    Net,
    SmallNet,
    TinyNet,
    count_parameters,
    feature_receptive_field,
    receptive_field,
)

README = (ROOT / "README.md").read_text()
DOCS = {path.name: path.read_text() for path in sorted((ROOT / "doc").glob("*.md"))}
RESULTS = ROOT / "results"
# Figures quoted from outside this repository, each with where it comes from (doc/experiments.md says so too).
# They may appear in doc/experiments.md only.
EXTERNAL_FIGURES = {"98.75%": "the first S6 README's best epoch for its third architecture",
                    "99.58%": "piygr/s6erav1's last logged epoch"}
EXTERNAL_FIGURES |= {f"{accuracy:.2f}%": repository for _, accuracy, repository, _ in REFERENCES}


def lines_of(table):
    return [line for line in table.splitlines() if line.strip()]


def result_files():
    return [json.loads(path.read_text()) for path in RESULTS.rglob("*.json")]


def walk(value):
    """Every (key, number) pair in a nested JSON value."""
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (int, float)) and not isinstance(item, bool):
                yield key, item
            else:
                yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, (int, float)):
                yield None, item
            else:
                yield from walk(item)


def validation_pair_means():
    """The mean last-epoch accuracy of each validation variant run with several seeds: `8k1L-s1` and
    `8k1L-s2`, or `Y` and `Y2`."""
    finals = {}
    for path in (RESULTS / "validation").glob("*/metrics.json"):
        variant = re.sub(r"(-s\d+b?|2)$", "", path.parent.name)
        finals.setdefault(variant, []).append(json.loads(path.read_text())["history"][-1]["test_acc"])
    return [sum(accs) / len(accs) for accs in finals.values() if len(accs) > 1]


def notebook_summary():
    notebook = nbformat.read(ROOT / "S6.ipynb", as_version=4)
    text = "".join(out.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                   for out in cell.outputs)
    return {"final": re.search(r"final test accuracy:\s+([\d.]+)%", text).group(1),
            "best": re.search(r"best test accuracy:\s+([\d.]+)%", text).group(1),
            "seconds": re.search(r"training time:\s+(\d+) s", text).group(1),
            "first": re.search(r"first epoch at >= 99.4%:\s+(\d+)", text).group(1)}


@pytest.fixture(scope="module")
def accuracies():
    """Every accuracy a results file or the committed notebook holds, as the documents print them."""
    numbers = {number for data in result_files() for key, number in walk(data)
               if key is None or "acc" in key} | set(validation_pair_means())
    found = {f"{n:.2f}%" for n in numbers} | {f"{n:.3f}%" for n in numbers}
    summary = notebook_summary()
    return found | {summary["final"] + "%", summary["best"] + "%"}


def test_readme_is_short_and_starts_with_what_a_user_needs():
    lines = README.splitlines()
    assert len(lines) <= 200
    quick_start = next(i for i, line in enumerate(lines) if line.startswith("## Quick start"))
    assert quick_start < 40
    block = "\n".join(lines[quick_start:quick_start + 12])
    for command in ("pip install -r requirements.txt", "python s6_train.py", "python -m pytest -q"):
        assert command in block
    assert "colab-badge" in "\n".join(lines[:5])


@pytest.mark.parametrize("name", ["README.md"] + [f"doc/{name}" for name in DOCS])
def test_documents_cite_no_issue_numbers_or_commits(name):
    text = (ROOT / name).read_text()
    assert not re.search(r"git show|\b[0-9a-f]{7,40}:|\bissue \d+", text, re.IGNORECASE)


def test_ci_runs_the_readmes_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install -q -r requirements.txt -r requirements-test.txt" in ci
    assert "python -m pytest -q" in ci and "python -m pytest -q" in README


@pytest.mark.parametrize("name", ["README.md"] + [f"doc/{name}" for name in DOCS])
def test_every_accuracy_in_the_documents_is_one_a_run_produced(name, accuracies):
    text = (ROOT / name).read_text()
    quoted = set(re.findall(r"(?<![\d.])\d{2}\.\d{2,3}%", text))
    external = set(EXTERNAL_FIGURES) if name == "doc/experiments.md" else set()
    assert quoted <= accuracies | external, sorted(quoted - accuracies - external)


@pytest.mark.parametrize("name", ["README.md"] + [f"doc/{name}" for name in DOCS])
def test_every_speed_up_and_gpu_time_in_the_documents_is_one_a_run_produced(name):
    text = (ROOT / name).read_text()
    ratios = {f"{data['speedup']:.2f}x" for data in result_files() if "speedup" in data}
    assert set(re.findall(r"\b\d\.\d\dx", text)) <= ratios
    runs = [json.loads(p.read_text()) for p in RESULTS.rglob("metrics.json")]
    seconds = {f"{sum(r['seconds'] for r in run['history']):.1f} s" for run in runs}
    assert set(re.findall(r"\b\d+\.\d s\b", text)) <= seconds


def test_frontier_table_in_the_readme_and_experiments_is_the_one_the_frontier_command_prints():
    from s6_frontier import load_sweeps, references_table, table

    for line in lines_of(table(load_sweeps(RESULTS))):
        assert line in README and line in DOCS["experiments.md"], line
    for line in lines_of(references_table()):
        assert line in DOCS["experiments.md"], line


def test_readme_model_summary_and_receptive_field_table_are_the_code_output():
    assert model_summary(Net()).strip() in README
    assert markdown_table(receptive_field(Net())) in README


def test_readme_parameter_counts_are_the_models():
    for model in (Net(), SmallNet(), TinyNet(), MicroNet()):
        assert f"{count_parameters(model):,}" in README


def test_readme_quotes_the_committed_notebook_run():
    summary = notebook_summary()
    assert f"trained for {summary['seconds']} s" in README
    assert f"{summary['final']}%" in README and f"reaching 99.4% in epoch {summary['first']}" in README


def test_benchmark_tables_are_the_ones_the_bench_printed():
    from s6_bench import table

    cpu = json.loads((RESULTS / "bench.json").read_text())
    for line in lines_of(table(cpu))[:4]:
        assert line in README and line in DOCS["performance.md"], line
    for line in lines_of(table(json.loads((RESULTS / "bench-cuda.json").read_text()))):
        assert line in DOCS["performance.md"], line


def test_validation_rows_quote_the_validation_runs():
    for run in sorted((RESULTS / "validation").iterdir()):
        history = json.loads((run / "metrics.json").read_text())["history"]
        row = next(line for line in DOCS["experiments.md"].splitlines() if f"`results/validation/{run.name}`" in line)
        for epoch in (5, 10, 15, 20):
            if epoch <= len(history) and (epoch != 15 or len(history) == 15):  # 15 only as a last epoch
                assert f"{history[epoch - 1]['test_acc']:.2f}%" in row, (run.name, epoch)


def test_experiments_tables_are_the_code_and_the_experiments_command():
    from s6_experiments import table

    for line in lines_of(table(json.loads((RESULTS / "experiments.json").read_text()))):
        assert line in DOCS["experiments.md"], line
    for key in ("baseline", "arch1", "arch2", "arch3", "net"):
        cls = MODELS[key]
        row = f"| `{cls.__name__}` (`{key}`) | {count_parameters(cls()):,} | {feature_receptive_field(cls())} |"
        assert row in DOCS["experiments.md"], row
    assert f"{count_parameters(BaselineNet()):,}" in DOCS["experiments.md"]


def test_every_figure_shown_is_a_png_that_reproducing_says_how_to_write():
    shown = re.findall(r"\]\((doc/[^)]+\.png)\)", README)
    shown += [f"doc/{name}" for text in DOCS.values() for name in re.findall(r"\]\(([^)/]+\.png)\)", text)]
    assert shown
    for figure in shown:
        assert (ROOT / figure).read_bytes().startswith(b"\x89PNG"), figure
        assert f"`{figure}`" in DOCS["reproducing.md"], figure


@pytest.mark.parametrize("name", ["README.md"] + [f"doc/{name}" for name in DOCS])
def test_every_file_the_documents_name_exists(name):
    text = (ROOT / name).read_text()
    paths = re.findall(r"`((?:[\w.-]+/)*[\w.-]+\.(?:py|md|json|png|ipynb|txt))`", text)
    for path in [p for p in paths if "/" in p or p.startswith("s6")]:  # not a file name alone, like model.pt
        assert (ROOT / path).exists() or (ROOT / "doc" / path).exists(), path


def test_every_test_the_robustness_table_names_exists():
    table = README[README.index("## Robustness"):README.index("## Where things are")]
    named = set(re.findall(r"`(test_\w+)`", table))
    defined = {name for path in (ROOT / "tests").glob("test_*.py")
               for name in re.findall(r"^def (test_\w+)", path.read_text(), re.MULTILINE)}
    assert len(named) >= 20 and named <= defined, sorted(named - defined)


def paragraph_citing(text, name):
    return next(p for p in text.split("\n\n") if name in p)


def test_readme_quotes_the_photo_like_digits_results():
    total = json.loads((RESULTS / "photo-digits.json").read_text())["total"]
    numbers = {int(n) for n in re.findall(r"\b\d+\b", paragraph_citing(README, "results/photo-digits.json"))}
    assert {sum(total.values()), total["right"], total["unsure"]} <= numbers
    assert total["wrong"] == 0
