"""s6/plots.py: every plot returns a figure; the tables and counts are right."""

import torch
from conftest import quiet
from matplotlib.figure import Figure

from s6.data import fast_loaders
from s6.plots import (
    confusion_matrix,
    markdown_table,
    model_summary,
    plot_confusion_matrix,
    plot_history,
    plot_misclassified,
    plot_samples,
    plot_test_accuracy,
    predict,
)
from s6.training import fit
from s6_model import Net, count_parameters


def test_plots_return_figures(small_config):
    config = small_config()
    model, history = fit(config, progress=False, log=quiet)
    train, test = fast_loaders(config, torch.device("cpu"))
    images, labels = next(iter(train))
    images, labels, probs = predict(model, test)
    assert probs.shape == (10_000, 10)
    matrix = confusion_matrix(labels, probs.argmax(1))
    assert matrix.sum() == 10_000 and matrix.shape == (10, 10)
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
