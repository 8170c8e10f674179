"""s6/plots.py: every plot returns a figure; the tables and counts are right."""

import json

import pytest
import torch
from conftest import ROOT
from matplotlib.figure import Figure

from s6.data import make_loaders
from s6.plots import (
    model_summary,
    plot_confusion_matrix,
    plot_history,
    plot_misclassified,
    plot_samples,
    plot_test_accuracy,
)
from s6.results import markdown_table
from s6.training import confusion_matrix, predict
from s6_model import Net, count_parameters


def test_predictions_are_the_evaluated_ones_and_plots_return_figures(small_config, small_run):
    model, history, _ = small_run
    train, test = make_loaders(small_config(), "cpu")  # 3 batches of 1,000 test images, as the run evaluated
    images, labels = next(iter(train))
    images, labels, probs = predict(model, test)
    assert probs.shape == (3_000, 10) and torch.allclose(probs.sum(1), torch.ones(3_000))
    assert 100 * (probs.argmax(1) == labels).float().mean().item() == pytest.approx(history[-1]["test_acc"])
    matrix = confusion_matrix(labels, probs.argmax(1))
    assert matrix.sum() == 3_000 and matrix.shape == (10, 10)
    assert matrix.trace().item() == (probs.argmax(1) == labels).sum().item()
    figures = [plot_samples(images[:32], labels[:32]), plot_history(history),
               plot_misclassified(images, labels, probs), plot_confusion_matrix(matrix),
               plot_test_accuracy({"run": history})]
    assert all(isinstance(fig, Figure) and fig.axes for fig in figures)


def test_confusion_matrix_counts_true_rows_and_predicted_columns():
    labels = torch.tensor([0, 0, 1, 2, 2, 2])
    predictions = torch.tensor([0, 1, 1, 2, 2, 0])
    matrix = confusion_matrix(labels, predictions, classes=3)
    assert matrix.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]


def test_markdown_table_has_a_header_a_rule_and_one_line_per_row():
    table = markdown_table([{"a": 1, "b": "x"}, {"a": 2, "b": "y"}])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| 1 | x |", "| 2 | y |"]


def test_model_summary_leaves_the_model_as_it_was():
    model = Net().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    text = model_summary(model)
    assert f"Total params: {count_parameters(model):,}" in text
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_a_run_evaluated_after_its_last_epoch_only_is_plotted_with_its_one_test_point():
    history = json.loads((ROOT / "results/quick-seed1/metrics.json").read_text())["history"]
    assert history[0]["test_acc"] is None, "the quick recipe skips evaluations that cannot matter"
    curves, accuracy = plot_history(history), plot_test_accuracy({"quick": history})
    test_accuracy = [line for line in curves.axes[1].lines if line.get_label() == "test"][0]
    assert list(test_accuracy.get_xdata()) == [history[-1]["epoch"]]
    assert list(accuracy.axes[0].lines[0].get_ydata()) == [history[-1]["test_acc"]]
