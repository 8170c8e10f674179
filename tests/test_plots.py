"""s6/plots.py: every plot returns a figure, and shows what its title says; the tables and counts are right."""

import json

import pytest
import torch
from conftest import ROOT
from matplotlib.figure import Figure

from s6.data import make_loaders, normalize
from s6.plots import (
    model_summary,
    plot_confusion_matrix,
    plot_feature_maps,
    plot_history,
    plot_misclassified,
    plot_receptive_fields,
    plot_samples,
    plot_test_accuracy,
)
from s6.results import assignment_row, markdown_table
from s6.training import confusion_matrix, predict
from s6_model import Net, count_parameters, layer_costs
from tools.networks import NETWORKS


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


def digit(mnist_test, index=0):
    images, _ = mnist_test
    return normalize(images[index].float().unsqueeze(0) / 255)


def test_the_feature_maps_show_each_convolutions_activations_under_titles_that_say_what_they_are(mnist_test):
    net = Net().eval()
    before = {name: tensor.clone() for name, tensor in net.state_dict().items()}
    fig = plot_feature_maps(net, digit(mnist_test), channels=4)
    titles = [ax.get_title(loc="left") for ax in fig.axes if ax.get_title(loc="left")]
    costs = layer_costs(net)[:-1]  # the convolutions of the features, not the head's after the average
    assert titles == [f"convolution {i} ({row['name']}): {row['out_channels']} channels, "
                      f"{row['output_size']}x{row['output_size']}" for i, row in enumerate(costs, 1)]
    assert len(fig.axes) == 4 * (len(costs) + 1) and fig.axes[0].get_title() == "the digit, 28x28"
    assert all(torch.equal(before[name], tensor) for name, tensor in net.state_dict().items())


def test_the_receptive_field_squares_are_each_layers_receptive_field_up_to_the_average(mnist_test):
    fig = plot_receptive_fields(digit(mnist_test), {"Net": Net(), "arch3": NETWORKS["arch3"]()})
    net, arch3 = fig.axes
    sides = [[patch.get_width() for patch in ax.patches][:-1] for ax in (net, arch3)]  # less the digit's outline
    assert sides == [[3, 5, 6, 10, 14, 16, 24, 32], [3, 5, 6, 10]]
    assert net.get_title() == "Net: one output of each layer sees" and net.get_xlabel().startswith("pixels")
    assert net.get_xlim()[1] - net.get_xlim()[0] > 32, "Net's 32 pixels are drawn whole, past the digit"


def test_the_assignment_row_says_what_each_rule_found(small_config, small_run):
    _, history, _ = small_run  # two short epochs: far below 99.4%
    row = assignment_row("Net", Net(), history)
    assert row == {"network": "Net", "under 20,000 parameters": "yes (19,506)", "BatchNorm": "yes", "Dropout": "yes",
                   "global average pooling": "yes",
                   "≥ 99.4% within 20 epochs": f"no ({history[-1]['test_acc']:.2f}% after 2)"}
    done = [{**history[-1], "epoch": epoch, "test_acc": 99.5} for epoch in range(1, 21)]
    assert assignment_row("Net", Net(), done)["≥ 99.4% within 20 epochs"] == "yes (99.50% after 20)"
    dense = assignment_row("dense head", NETWORKS["net-dense-head"](dropout=0.0))
    assert (dense["Dropout"], dense["global average pooling"]) == ("no", "no") and len(dense) == 5
