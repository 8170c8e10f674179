"""S6.ipynb: it runs top to bottom, its loop gives fit's history, and the committed copy shows a full run."""

import dataclasses
import inspect
import json
import os
import re

import nbformat
import pytest
from conftest import DATA_DIR, ROOT, quiet, without_seconds
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

import s6_utils
from s6.config import TrainConfig
from s6.training import fit, training_step


def code_cells(notebook):
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def stream_text(notebook, name):
    return "".join(out.get("text", "") for cell in code_cells(notebook) for out in cell.outputs
                   if out.output_type == "stream" and out.name == name)


@pytest.fixture(scope="module")
def committed():
    return nbformat.read(ROOT / "S6.ipynb", as_version=4)


def cell_with(source, *tags):
    return nbformat.v4.new_code_cell(source, metadata={"tags": list(tags)})


def cell_index(notebook, text):
    """The index of the one code cell whose source holds `text`."""
    [index] = [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code" and text in cell.source]
    return index


PRINT_RUN = "import json\nprint(json.dumps({'config': config.to_dict(), 'history': history}))"
# What pressing stop in the middle of the training cell does: a KeyboardInterrupt inside the loop, a few
# batches into the first epoch, after the model, optimizer and schedule have moved
STOP_AFTER_THREE_BATCHES = """from s6.data import FirstBatches

_train_one_epoch = train_one_epoch


def train_one_epoch(model, loader, *args, **kwargs):
    _train_one_epoch(model, FirstBatches(loader, 3), *args, **kwargs)
    raise KeyboardInterrupt"""


@pytest.fixture(scope="module")
def smoke_run(committed):
    """The notebook executed in smoke mode (one epoch of a few batches), then its cells run again in the
    orders people run them, each training followed by a cell that prints the config and history as JSON:
    the whole notebook; the training cell again; the training cell stopped part-way, then run again; the
    model cell, then the training cell."""
    notebook = nbformat.from_dict(committed)
    training = notebook.cells[cell_index(notebook, "train_one_epoch(")].source
    model = notebook.cells[cell_index(notebook, "model_summary(")].source
    notebook.cells += [
        cell_with(PRINT_RUN),
        cell_with(training), cell_with(PRINT_RUN),
        cell_with(STOP_AFTER_THREE_BATCHES), cell_with(training, "raises-exception"),
        cell_with("train_one_epoch = _train_one_epoch"), cell_with(training), cell_with(PRINT_RUN),
        cell_with(model), cell_with(training), cell_with(PRINT_RUN),
    ]
    os.environ["S6_SMOKE"] = "1"
    try:
        NotebookClient(notebook, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(ROOT)}}).execute()
    finally:
        del os.environ["S6_SMOKE"]
    return notebook


def printed_runs(notebook):
    return [json.loads(cell.outputs[0]["text"]) for cell in code_cells(notebook) if cell.source == PRINT_RUN]


def test_notebook_runs_top_to_bottom_without_errors(smoke_run, committed):
    code = code_cells(smoke_run)[:len(code_cells(committed))]
    errors = [out for cell in code for out in cell.outputs if out.output_type == "error"]
    assert not errors, errors[0]["evalue"] if errors else ""
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1))
    images = sum("image/png" in out.get("data", {}) for cell in code for out in cell.outputs)
    assert images == 4, "samples, curves, misclassified digits, confusion matrix"


def test_the_notebooks_loop_gives_the_history_fit_gives_for_its_config(smoke_run):
    printed = printed_runs(smoke_run)[0]
    config = dataclasses.replace(TrainConfig(**printed["config"]), data_dir=DATA_DIR)
    _, history = fit(config, progress=False, log=quiet)
    assert without_seconds(printed["history"]) == without_seconds(history)


def test_the_training_cell_run_again_after_finishing_after_a_stop_or_after_the_model_cell_trains_afresh(smoke_run):
    first, *again = printed_runs(smoke_run)
    assert len(again) == 3, "again after finishing; after a stop part-way; after the model cell"
    assert len(first["history"]) == first["config"]["epochs"]
    assert first["history"][0]["train_loss"] > 0 and first["history"][0]["test_acc"] > 10, "it trained"
    for run in again:
        assert without_seconds(run["history"]) == without_seconds(first["history"])
    stopped = [cell for cell in code_cells(smoke_run) if "raises-exception" in cell.metadata.get("tags", [])]
    assert [out["ename"] for out in stopped[0].outputs if out.output_type == "error"] == ["KeyboardInterrupt"]


def test_the_notebook_alone_stops_at_its_first_cell_saying_where_the_modules_must_be(committed, tmp_path):
    notebook = nbformat.from_dict(committed)
    for cell in code_cells(notebook):  # as a user downloads it: the committed run's outputs cleared
        cell.outputs, cell.execution_count = [], None
    nbformat.write(notebook, tmp_path / "S6.ipynb")
    with pytest.raises(CellExecutionError):
        NotebookClient(notebook, timeout=120, kernel_name="python3",
                       resources={"metadata": {"path": str(tmp_path)}}).execute()
    first, *rest = code_cells(notebook)
    [error] = first.outputs
    assert error["output_type"] == "error" and error["ename"] == "SystemExit"
    assert str(tmp_path) in error["evalue"] and "clone the repository" in error["evalue"]
    assert "REPO_URL" in error["evalue"]
    assert all(cell.execution_count is None and not cell.outputs for cell in rest), "nothing else ran"


def test_notebook_builds_net_by_name_one_line_picks_another_budget_and_the_loop_is_in_view(committed):
    source = "\n".join(cell.source for cell in code_cells(committed))
    assert re.search(r"from s6_model import .*\bNet\b", source)
    assert re.search(r"^Model = Net  #", source, re.MULTILINE) and "Model(dropout=config.dropout)" in source
    assert "TrainConfig(model=Model.key, recipe=RECIPE)" in source
    assert re.search(r'^RECIPE = "default"  # or "quick"', source, re.MULTILINE), "one line selects the recipe"
    assert "train_one_epoch(" in source and "evaluate(" in source and "fit(" not in source
    assert not re.search(r"^\s*(def|class) ", source, re.MULTILINE), "the notebook defines nothing of its own"


def test_the_notebook_shows_the_training_step_that_train_one_epoch_runs(committed):
    markdown = "\n".join(cell.source for cell in committed.cells if cell.cell_type == "markdown")
    assert f"```python\n{inspect.getsource(training_step).rstrip()}\n```" in markdown


def imported_names(committed):
    imports = re.search(r"from s6_utils import \(([^)]*)\)", committed.cells[3].source).group(1)
    return {name.strip() for name in imports.split(",") if name.strip()}


def test_notebook_imports_only_what_s6_utils_exports(committed):
    assert imported_names(committed) <= set(s6_utils.__all__)


def test_every_name_the_notebook_imports_is_used_by_a_later_cell(committed):
    imports_cell = committed.cells[3].source
    later = "\n".join([imports_cell[imports_cell.index(")"):]] + [cell.source for cell in committed.cells[4:]])
    unused = {name for name in imported_names(committed) if not re.search(rf"\b{name}\b", later)}
    assert not unused, f"imported but not used: {sorted(unused)}"


def test_committed_notebook_was_executed_in_order_and_shows_a_full_run(committed):
    code = code_cells(committed)
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1))
    assert not [out for cell in code for out in cell.outputs if out.output_type == "error"]
    last_epoch = re.findall(r"^epoch 20 \|.*test loss [\d.]+, accuracy ([\d.]+)%", stream_text(committed, "stdout"),
                            re.MULTILINE)
    assert last_epoch, "the committed notebook shows all 20 epochs"
    assert float(last_epoch[0]) >= 99.4


def test_committed_notebooks_progress_bars_show_where_they_ended(committed):
    bars = [line for line in stream_text(committed, "stderr").splitlines() if line.startswith("epoch ")]
    assert len(bars) == 20
    assert all("100%|" in bar and "469/469" in bar for bar in bars), bars[0]
    assert "\r" not in stream_text(committed, "stderr")


def test_summary_and_receptive_field_tables_name_standard_layers(committed):
    text = stream_text(committed, "stdout")
    assert "MaxPool2d-7" in text and re.search(r"^features\.2 +MaxPool2d ", text, re.MULTILINE)
    assert "NHWC" not in text
