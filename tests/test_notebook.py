"""S6.ipynb: it runs top to bottom, its loop gives fit's history, and the committed copy shows a full run."""

import dataclasses
import json
import os
import re

import nbformat
import pytest
from conftest import DATA_DIR, ROOT, quiet, without_seconds
from nbclient import NotebookClient

import s6_utils
from s6.config import TrainConfig
from s6.training import fit


def code_cells(notebook):
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def stream_text(notebook, name):
    return "".join(out.get("text", "") for cell in code_cells(notebook) for out in cell.outputs
                   if out.output_type == "stream" and out.name == name)


@pytest.fixture(scope="module")
def committed():
    return nbformat.read(ROOT / "S6.ipynb", as_version=4)


@pytest.fixture(scope="module")
def smoke_run(committed):
    """The notebook executed in smoke mode (one epoch of a few batches), with one cell added at the end
    that prints its config and history as JSON."""
    notebook = nbformat.from_dict(committed)
    notebook.cells.append(nbformat.v4.new_code_cell(
        "import json\nprint(json.dumps({'config': config.to_dict(), 'history': history}))"))
    os.environ["S6_SMOKE"] = "1"
    try:
        NotebookClient(notebook, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(ROOT)}}).execute()
    finally:
        del os.environ["S6_SMOKE"]
    return notebook


def test_notebook_runs_top_to_bottom_without_errors(smoke_run):
    code = code_cells(smoke_run)
    errors = [out for cell in code for out in cell.outputs if out.output_type == "error"]
    assert not errors, errors[0]["evalue"] if errors else ""
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1))
    images = sum("image/png" in out.get("data", {}) for cell in code for out in cell.outputs)
    assert images == 4, "samples, curves, misclassified digits, confusion matrix"


def test_the_notebooks_loop_gives_the_history_fit_gives_for_its_config(smoke_run):
    printed = json.loads(code_cells(smoke_run)[-1].outputs[0]["text"])
    config = dataclasses.replace(TrainConfig(**printed["config"]), data_dir=DATA_DIR)
    _, history = fit(config, progress=False, log=quiet)
    assert without_seconds(printed["history"]) == without_seconds(history)


def test_notebook_builds_net_by_name_one_line_picks_another_budget_and_the_loop_is_in_view(committed):
    source = "\n".join(cell.source for cell in code_cells(committed))
    assert re.search(r"from s6_model import .*\bNet\b", source)
    assert re.search(r"^Model = Net  #", source, re.MULTILINE) and "Model(dropout=config.dropout)" in source
    assert "TrainConfig(model=Model.key)" in source
    assert "train_one_epoch(" in source and "evaluate(" in source and "fit(" not in source
    assert not re.search(r"^\s*(def|class) ", source, re.MULTILINE), "the notebook defines nothing of its own"


def test_notebook_imports_only_what_s6_utils_exports(committed):
    imports = re.search(r"from s6_utils import \(([^)]*)\)", committed.cells[3].source).group(1)
    names = {name.strip() for name in imports.split(",") if name.strip()}
    assert names <= set(s6_utils.__all__)


def test_committed_notebook_was_executed_in_order_and_shows_a_full_run(committed):
    code = code_cells(committed)
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1))
    assert not [out for cell in code for out in cell.outputs if out.output_type == "error"]
    last_epoch = [line for line in stream_text(committed, "stdout").splitlines() if line.strip().startswith("20 |")]
    assert last_epoch, "the committed notebook shows all 20 epochs"
    assert float(last_epoch[0].split("|")[2].split()[1].rstrip("%")) >= 99.4


def test_committed_notebooks_progress_bars_show_where_they_ended(committed):
    bars = [line for line in stream_text(committed, "stderr").splitlines() if line.startswith("epoch ")]
    assert len(bars) == 20
    assert all("100%|" in bar and "469/469" in bar for bar in bars), bars[0]
    assert "\r" not in stream_text(committed, "stderr")


def test_summary_and_receptive_field_tables_name_standard_layers(committed):
    text = stream_text(committed, "stdout")
    assert "MaxPool2d-7" in text and "| MaxPool2d |" in text
    assert "NHWC" not in text
