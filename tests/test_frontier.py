"""tools/frontier.py: the frontier table and figure, written from the four committed seed sweeps; as every tool, it
checks what it will write before it starts, and holds it while it writes."""

import subprocess
import sys

import pytest
from conftest import ROOT, assert_one_line_error

from s6.config import recipe
from s6_model import MODELS, count_parameters
from tools import frontier


def test_each_budget_is_its_models_five_seeds_with_its_recipes_epochs_under_the_budget():
    for budget, stats in frontier.load_sweeps().items():
        key = frontier.BUDGETS[budget]
        assert stats["parameters"] == count_parameters(MODELS[key]()) < budget
        assert stats["seeds"] == [1, 2, 3, 4, 5]
        assert stats["epochs"] == recipe(model=key).epochs


def test_frontier_writes_the_figure_and_prints_one_row_per_budget(tmp_path, capsys):
    figure = tmp_path / "frontier.png"
    assert frontier.main(["--out", str(figure)]) == 0
    assert figure.read_bytes().startswith(b"\x89PNG")
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| under")]
    assert [row.split(" | ")[1] for row in rows] == ["net", "small", "tiny", "micro"]


def test_frontier_refuses_to_replace_its_figure_unless_told_to(tmp_path):
    figure = tmp_path / "frontier.png"
    figure.write_bytes(b"a figure of the user's")
    with pytest.raises(ValueError, match="--overwrite"):
        frontier.main(["--out", str(figure)])
    assert figure.read_bytes() == b"a figure of the user's"


def test_a_figure_into_a_read_only_folder_ends_in_one_line_before_any_work(tmp_path, read_only, run_in_process):
    folder = read_only(tmp_path / "read-only")
    result = run_in_process("tools/frontier.py", "--out", folder / "frontier.png")
    assert_one_line_error(result)
    assert f"cannot write to {folder} (" in result.stderr


def test_a_budget_where_some_seed_never_reached_the_target_says_how_many_did():
    stats = {"seeds": [1, 2, 3, 4, 5], "parameters": 1_750, "epochs": 20, "final_test_acc_mean": 99.0,
             "final_test_acc_std": 0.05, "final_test_acc_min": 98.9, "final_test_acc_max": 99.1,
             "median_first_epoch_at_target": None, "seeds_at_target": 2}
    assert "| — (2 of 5 seeds reach it) |" in frontier.table({2_000: stats})


def test_the_references_are_one_public_point_per_budget_each_under_it():
    budgets = sorted(frontier.BUDGETS)
    for count, *_ in frontier.REFERENCES:
        assert count < budgets[-1]
    under = [min(budget for budget in budgets if count < budget) for count, *_ in frontier.REFERENCES]
    assert sorted(under) == budgets


def test_the_references_table_prints_one_row_per_point_with_its_count_figure_and_repository():
    header, rule, *rows = frontier.references_table().splitlines()
    assert header == "| parameters | test accuracy | repository | what the figure is |"
    assert rows[0].startswith("| 18,594 | 99.60% | `piygr/s6erav1` | the best of 20 logged epochs")
    assert len(rows) == len(frontier.REFERENCES)


WRITER = """import sys, time
from s6.files import writing
with writing([], True, figures=[sys.argv[1]]):
    print("writing", flush=True)
    time.sleep(120)
"""


@pytest.mark.parametrize("tool, flags", [
    ("tools/frontier.py", ["--out", "f.xyz"]),
    ("tools/frontier.py", ["--out", "f.PNG "]),
    ("tools/ablation.py", ["--report", "--out", "a.json", "--plot", "a.xyz"]),
    ("tools/experiments.py", ["--models", "arch1", "--out", "e.json", "--plot", "e.xyz"]),
    ("tools/non_digits.py", ["--out", "n.json", "--plot", "n.xyz"]),
])
def test_a_figure_matplotlib_cannot_write_ends_in_one_line_before_any_work(tmp_path, run_in_process, tool, flags):
    result = run_in_process(tool, *[tmp_path / flag if "." in flag else flag for flag in flags])
    assert_one_line_error(result)
    assert "matplotlib cannot write" in result.stderr
    assert not list(tmp_path.iterdir()), "no record written: the work never started"


def test_a_second_command_writing_the_same_figure_is_refused_at_once_in_one_line(tmp_path, run_in_process):
    figure = tmp_path / "frontier.png"
    first = subprocess.Popen([sys.executable, "-c", WRITER, str(figure)], cwd=ROOT, text=True,
                             stdout=subprocess.PIPE)
    try:
        assert first.stdout.readline() == "writing\n"
        second = run_in_process("tools/frontier.py", "--out", figure, "--overwrite")
    finally:
        first.kill()
        first.wait()
    assert_one_line_error(second)
    assert f"{figure} is being written by another command still running" in second.stderr
