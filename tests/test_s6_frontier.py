"""s6_frontier.py: the frontier table and figure, written from the four committed seed sweeps."""

import pytest

import s6_frontier
from s6.config import TrainConfig
from s6_model import MODELS, count_parameters


def test_each_budget_is_its_models_five_seeds_with_its_recipes_epochs_under_the_budget():
    for budget, stats in s6_frontier.load_sweeps().items():
        key = s6_frontier.BUDGETS[budget]
        assert stats["parameters"] == count_parameters(MODELS[key]()) < budget
        assert stats["seeds"] == [1, 2, 3, 4, 5]
        assert stats["epochs"] == TrainConfig(model=key).epochs


def test_frontier_writes_the_figure_and_prints_one_row_per_budget(tmp_path, capsys):
    figure = tmp_path / "frontier.png"
    assert s6_frontier.main(["--out", str(figure)]) == 0
    assert figure.read_bytes().startswith(b"\x89PNG")
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| under")]
    assert [row.split(" | ")[1] for row in rows] == ["net", "small", "tiny", "micro"]


def test_frontier_refuses_to_replace_its_figure_unless_told_to(tmp_path):
    figure = tmp_path / "frontier.png"
    figure.write_bytes(b"a figure of the user's")
    with pytest.raises(ValueError, match="--overwrite"):
        s6_frontier.main(["--out", str(figure)])
    assert figure.read_bytes() == b"a figure of the user's"


def test_a_budget_where_some_seed_never_reached_the_target_says_how_many_did():
    stats = {"seeds": [1, 2, 3, 4, 5], "parameters": 1_750, "epochs": 20, "final_test_acc_mean": 99.0,
             "final_test_acc_std": 0.05, "final_test_acc_min": 98.9, "final_test_acc_max": 99.1,
             "median_first_epoch_at_target": None, "seeds_at_target": 2}
    assert "| — (2 of 5 seeds reach it) |" in s6_frontier.table({2_000: stats})


def test_the_references_are_one_public_point_per_budget_each_under_it():
    budgets = sorted(s6_frontier.BUDGETS)
    for count, *_ in s6_frontier.REFERENCES:
        assert count < budgets[-1]
    under = [min(budget for budget in budgets if count < budget) for count, *_ in s6_frontier.REFERENCES]
    assert sorted(under) == budgets


def test_the_references_table_prints_one_row_per_point_with_its_count_figure_and_repository():
    header, rule, *rows = s6_frontier.references_table().splitlines()
    assert header == "| parameters | test accuracy | repository | what the figure is |"
    assert rows[0].startswith("| 18,594 | 99.60% | `piygr/s6erav1` | the best of 20 logged epochs")
    assert len(rows) == len(s6_frontier.REFERENCES)
