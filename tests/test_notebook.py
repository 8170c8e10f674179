"""S6.ipynb: it runs top to bottom, its loop gives fit's history, every cell can run again, and the committed copy
shows a full run. Cells are found by their tags, and a short run is made by a cell the test adds after the
config's, so the learner's cells hold no switch for the tests."""

import ast
import dataclasses
import inspect
import json
import re

import nbformat
import pytest
from conftest import DATA_DIR, ROOT, quiet, without_seconds
from nbclient import NotebookClient

import s6_utils
from s6.config import TrainConfig
from s6.training import fit, training_step
from s6_model import Net, feature_receptive_field

SHORT_RUN = "import dataclasses\nconfig = dataclasses.replace(config, epochs=1, max_batches=10)"
PRINT_RUN = "import json\nprint(json.dumps({'config': config.to_dict(), 'history': history}))"
# What pressing stop in the middle of the training cell does: a KeyboardInterrupt inside the loop, a few
# batches into the first epoch, after the model, optimizer and schedule have moved
STOP_AFTER_THREE_BATCHES = """from s6.data import FirstBatches

_train_one_epoch = train_one_epoch


def train_one_epoch(run, loader, *args, **kwargs):
    _train_one_epoch(run, FirstBatches(loader, 3), *args, **kwargs)
    raise KeyboardInterrupt"""


def code_cells(notebook):
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def tagged(notebook, tag):
    """The one cell tagged `tag`."""
    [cell] = [cell for cell in notebook.cells if tag in cell.metadata.get("tags", [])]
    return cell


def stream_text(cells, name="stdout"):
    return "".join(out.get("text", "") for cell in cells for out in cell.get("outputs", [])
                   if out.output_type == "stream" and out.name == name)


def shortened(source, long, short):
    """`source` with the one occurrence of `long` replaced by `short`: a smaller run of the same cell."""
    assert source.count(long) == 1, long
    return source.replace(long, short)


def cell_with(source, *tags):
    return nbformat.v4.new_code_cell(source, metadata={"tags": list(tags)})


@pytest.fixture(scope="module")
def committed():
    return nbformat.read(ROOT / "S6.ipynb", as_version=4)


@pytest.fixture(scope="module")
def short_run(committed):
    """The notebook as a user runs it, with its runs shortened by a cell after the config's (one epoch of a few
    batches), a smaller export check, and without the app's cell, which serves a page; then its cells run again
    in the orders people run them, each training followed by a cell that prints the config and history as JSON:
    the training cell again; the training cell stopped part-way, then run again; the data and model cells, then
    the training cell."""
    notebook = nbformat.from_dict(committed)
    for cell in code_cells(notebook):
        cell.outputs, cell.execution_count = [], None
    config_index = notebook.cells.index(tagged(notebook, "config"))
    notebook.cells.insert(config_index + 1, cell_with(SHORT_RUN, "short-run"))
    notebook.cells.remove(tagged(notebook, "app"))
    export = tagged(notebook, "export")
    export.source = shortened(export.source, "overwrite=True)", "overwrite=True, limit=1000, calibration_images=300)")
    training, data, model = (tagged(notebook, tag).source for tag in ("training", "data", "model"))
    notebook.cells.insert(notebook.cells.index(tagged(notebook, "training")) + 1, cell_with(PRINT_RUN, "printed"))
    notebook.cells += [
        cell_with(training), cell_with(PRINT_RUN, "printed"),
        cell_with(STOP_AFTER_THREE_BATCHES), cell_with(training, "raises-exception", "stopped"),
        cell_with("train_one_epoch = _train_one_epoch"), cell_with(training), cell_with(PRINT_RUN, "printed"),
        cell_with(data), cell_with(model), cell_with(training), cell_with(PRINT_RUN, "printed"),
    ]
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    return notebook


def printed_runs(notebook):
    return [json.loads(cell.outputs[0]["text"]) for cell in notebook.cells
            if "printed" in cell.metadata.get("tags", [])]


def test_the_notebook_runs_top_to_bottom_and_draws_its_figures(short_run, committed):
    cells = code_cells(short_run)[:len(code_cells(committed))]
    errors = [out for cell in cells for out in cell.outputs if out.output_type == "error"]
    assert not errors, errors[0]["evalue"] if errors else ""
    assert [cell.execution_count for cell in cells] == list(range(1, len(cells) + 1))
    images = sum("image/png" in out.get("data", {}) for cell in cells for out in cell.outputs)
    assert images == 8, ("ladder, ablation, samples, receptive fields, curves, misclassified digits, confusion matrix, "
                         "feature maps")


def test_the_notebooks_loop_gives_the_history_fit_gives_for_its_config(short_run):
    printed = printed_runs(short_run)[0]
    config = dataclasses.replace(TrainConfig(**printed["config"]), data_dir=DATA_DIR)
    _, history = fit(config, progress=False, log=quiet)
    assert without_seconds(printed["history"]) == without_seconds(history)


def test_the_training_cell_run_again_after_finishing_after_a_stop_or_after_the_data_cell_trains_afresh(short_run):
    first, *again = printed_runs(short_run)
    assert len(again) == 3, "again after finishing; after a stop part-way; after the data and model cells"
    assert len(first["history"]) == first["config"]["epochs"]
    assert first["history"][0]["train_loss"] > 0 and first["history"][0]["test_acc"] > 10, "it trained"
    for run in again:
        assert without_seconds(run["history"]) == without_seconds(first["history"])
    stopped = tagged(short_run, "stopped")
    assert [out["ename"] for out in stopped.outputs if out.output_type == "error"] == ["KeyboardInterrupt"]


def test_a_network_defined_in_the_notebook_is_described_and_trained_there_as_the_settings_cell_shortened(short_run):
    said = stream_text([tagged(short_run, "own-network"), tagged(short_run, "own-training")])
    assert re.search(r"^MyNet: [\d,]+ parameters, a receptive field of 16 pixels before the head$", said, re.M)
    assert re.search(r"^MyNet, quick recipe: \d+\.\d\d% in \d+ s on cpu$", said, re.M)
    printed = json.loads(re.search(r"^config: (.*)$", said, re.M).group(1))
    assert printed["model"] == "MyNet", "the run's config names the network it trains"
    assert (printed["epochs"], printed["max_batches"]) == (1, 10), "the short run's, as the settings cell shortened"


def test_the_notebook_tells_whether_each_network_meets_the_assignment_and_answers_its_question(short_run):
    cell = tagged(short_run, "assignment")
    table = next(out["data"]["text/markdown"] for out in cell.outputs if "text/markdown" in out.get("data", {}))
    header, _, *rows = table.splitlines()
    assert [row.split(" | ")[0].strip("| ") for row in rows] == ["Net", "MyNet"]
    assert "under 20,000 parameters" in header and "≥ 99.4% within 20 epochs" in header
    assert rows[1].split(" | ")[3] == "no", "MyNet has no Dropout"
    assert re.search(r"MyNet's features see 16 pixels of the 28, Net's 32", stream_text([cell]))


def test_the_notebook_shows_the_training_step_that_train_one_epoch_runs(committed):
    markdown = "\n".join(cell.source for cell in committed.cells if cell.cell_type == "markdown")
    assert f"```python\n{inspect.getsource(training_step).rstrip()}\n```" in markdown


def test_the_notebook_imports_of_s6_utils_are_what_it_exports(committed):
    imported = set()
    for cell in code_cells(committed):
        python = "\n".join(line for line in cell.source.splitlines() if not line.startswith("%"))  # no magics
        imported |= {alias.name for node in ast.walk(ast.parse(python)) if isinstance(node, ast.ImportFrom)
                     and node.module == "s6_utils" for alias in node.names}
    assert imported and imported <= set(s6_utils.__all__)


def test_the_committed_notebook_ran_in_order_and_shows_a_full_run(committed):
    cells = code_cells(committed)
    assert [cell.execution_count for cell in cells] == list(range(1, len(cells) + 1))
    assert not [out for cell in cells for out in cell.outputs if out.output_type == "error"]
    training = tagged(committed, "training")
    epochs = re.findall(r"^ +(\d+) \| .*\| +[\d.]+ +([\d.]+)% \|", stream_text([training]), re.MULTILINE)
    assert [int(epoch) for epoch, _ in epochs] == list(range(1, 21)), "the committed notebook shows all 20 epochs"
    assert float(epochs[-1][1]) >= 99.4
    bars = [line for line in stream_text([training], "stderr").splitlines() if line.startswith("epoch ")]
    assert len(bars) == 20 and all("100%|" in bar and "469/469" in bar for bar in bars), bars[:1]
    assert "\r" not in stream_text([training], "stderr"), "each progress bar's last frame only"


def test_the_committed_receptive_field_table_ends_where_the_text_and_describe_say(committed):
    rows = re.findall(r"receptive field (\d+)$", stream_text([tagged(committed, "receptive-field")]), re.MULTILINE)
    said = re.search(r"a receptive field of (\d+) pixels", stream_text([tagged(committed, "receptive-field")]))
    assert int(rows[-1]) == int(said.group(1)) == feature_receptive_field(Net())
