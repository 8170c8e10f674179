"""The notebook runs top to bottom, headless, in smoke mode (one epoch of a few batches)."""

import os

import nbformat
from conftest import ROOT
from nbclient import NotebookClient


def test_notebook_runs_top_to_bottom_without_errors(tmp_path):
    notebook = nbformat.read(ROOT / "S6.ipynb", as_version=4)
    os.environ["S6_SMOKE"] = "1"
    try:
        NotebookClient(notebook, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(ROOT)}}).execute()
    finally:
        del os.environ["S6_SMOKE"]
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    errors = [out for cell in code for out in cell.outputs if out.output_type == "error"]
    assert not errors, errors[0]["evalue"] if errors else ""
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1))
    images = sum("image/png" in out.get("data", {}) for cell in code for out in cell.outputs)
    assert images == 4, "samples, curves, misclassified digits, confusion matrix"


def test_committed_notebook_was_executed_in_order_and_shows_a_full_run():
    notebook = nbformat.read(ROOT / "S6.ipynb", as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1))
    assert not [out for cell in code for out in cell.outputs if out.output_type == "error"]
    log = "".join(out.get("text", "") for cell in code for out in cell.outputs if out.output_type == "stream")
    last_epoch = [line for line in log.splitlines() if line.strip().startswith("20 |")]
    assert last_epoch, "the committed notebook shows all 20 epochs"
    assert float(last_epoch[0].split("|")[2].split()[1].rstrip("%")) >= 99.4
