"""Figures of a model and a run, and torchsummary's table of a model; each function returns its figure or text."""

import contextlib
import copy
import io
import math

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from s6.config import TARGET_ACC
from s6.data import MNIST_MEAN, MNIST_STD
from s6.results import accuracy, evaluated_epochs, prefix_of
from s6_model import Net


def model_summary(model, input_size=(1, 28, 28)):
    """torchsummary's table as a string, from an eval-mode CPU copy: `model` itself is left untouched."""
    from torchsummary import summary

    probe = copy.deepcopy(model).cpu().eval()
    with contextlib.redirect_stdout(io.StringIO()) as text:
        summary(probe, input_size, device="cpu")
    return text.getvalue()


def _show_digit(ax, image, title, color="black"):
    ax.imshow((image.squeeze().float() * MNIST_STD + MNIST_MEAN).numpy(), cmap="gray_r", vmin=0, vmax=1)
    ax.set_title(title, fontsize=9, color=color)
    ax.axis("off")


def plot_samples(images, labels, rows=4, cols=8):
    """A grid of (normalised) images with their labels."""
    fig = Figure(figsize=(cols * 1.1, rows * 1.25), layout="constrained")
    for ax, image, label in zip(fig.subplots(rows, cols).flat, images, labels, strict=False):  # first rows*cols
        _show_digit(ax, image, f"label {int(label)}")
    return fig


def plot_history(history, target=TARGET_ACC, eval_set="test"):
    """Train and test loss, and train and test accuracy with a line at the target, per epoch (test curves at
    the epochs that were evaluated); `eval_set` names the evaluated images ('test' or 'validation')."""
    evaluated = evaluated_epochs(history)
    fig = Figure(figsize=(11, 4), layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)
    for split, label, records in (("train", "train", history), (prefix_of(evaluated[0]), eval_set, evaluated)):
        epochs = [r["epoch"] for r in records]
        loss_ax.plot(epochs, [r[f"{split}_loss"] for r in records], marker="o", ms=3, label=label)
        acc_ax.plot(epochs, [r[f"{split}_acc"] for r in records], marker="o", ms=3, label=label)
    acc_ax.axhline(target, color="gray", linestyle="--", label=f"{target}%")
    acc_ax.set_ylim(max(90.0, min(accuracy(r) for r in evaluated) - 0.5), 100)
    loss_ax.set(title="loss", xlabel="epoch", yscale="log")
    acc_ax.set(title="accuracy (%)", xlabel="epoch")
    for ax in (loss_ax, acc_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    return fig


def plot_misclassified(images, labels, probs, count=24, cols=8):
    """The `count` most confident mistakes: true label, prediction and its probability."""
    predictions = probs.argmax(1)
    wrong = (predictions != labels).nonzero().squeeze(1)
    wrong = wrong[probs[wrong, predictions[wrong]].argsort(descending=True)][:count]
    rows = max(1, math.ceil(len(wrong) / cols))
    fig = Figure(figsize=(cols * 1.2, rows * 1.45), layout="constrained")
    axes = list(fig.subplots(rows, cols, squeeze=False).flat)
    for ax, i in zip(axes, wrong.tolist(), strict=False):  # the last row may have empty axes
        _show_digit(ax, images[i], f"true {labels[i]}, pred {predictions[i]}\n{probs[i, predictions[i]]:.0%}",
                    color="firebrick")
    for ax in axes[len(wrong):]:
        ax.axis("off")
    fig.suptitle(f"{len(wrong)} most confident of {(predictions != labels).sum()} misclassified test images")
    return fig


def plot_confusion_matrix(matrix):
    """The confusion matrix as a heat map with counts; the diagonal is left pale so errors stand out."""
    off_diagonal = matrix.clone().fill_diagonal_(0)
    fig = Figure(figsize=(6.5, 6), layout="constrained")
    ax = fig.subplots()
    ax.imshow(off_diagonal.numpy(), cmap="Reds")
    for (true, pred), count in np.ndenumerate(matrix.numpy()):
        ax.text(pred, true, str(count), ha="center", va="center", fontsize=8,
                color="black" if true == pred or count < off_diagonal.max() / 2 else "white")
    ax.set(xticks=range(10), yticks=range(10), xlabel="predicted", ylabel="true",
           title="confusion matrix (colour: errors only)")
    return fig


def plot_test_accuracy(curves, target=TARGET_ACC, title="test accuracy", eval_set="test"):
    """Test (or, with `eval_set` 'validation', validation) accuracy per evaluated epoch, one line per entry of
    `curves` ({label: history})."""
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.subplots()
    curves = {label: evaluated_epochs(history) for label, history in curves.items()}
    for label, history in curves.items():
        ax.plot([r["epoch"] for r in history], [accuracy(r) for r in history], marker="o", ms=3, label=label)
    ax.axhline(target, color="gray", linestyle="--", label=f"{target}%")
    low = min(accuracy(r) for history in curves.values() for r in history)
    ax.set(title=title, xlabel="epoch", ylabel=f"{eval_set} accuracy (%)", ylim=(max(low, 97.0) - 0.2, 100))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def plot_ablation(ablation, target=TARGET_ACC):
    """What each ingredient is worth, from results/ablation.json: each variant's last-epoch test accuracy over its
    seeds (the mean as a dot, the range as a bar) beside Net's, and the median epoch it first reached the target."""
    rows = list(ablation["rows"].values())
    fig = Figure(figsize=(11, 0.45 * len(rows) + 1.4), layout="constrained")
    ax = fig.subplots()
    for y, row in enumerate(rows):
        color = "tab:blue" if y == 0 else "tab:gray"
        ax.plot([row["min"], row["max"]], [y, y], color=color, linewidth=3, alpha=0.5)
        ax.plot(row["mean"], y, "o", color=color)
        first = row["median_first_epoch_at_target"]
        ax.annotate(f"{row['mean']:.2f}%" + (f", {target}% in epoch {first:g}" if first is not None else ""),
                    (row["max"], y), textcoords="offset points", xytext=(6, -3), fontsize=8)
    ax.axvline(rows[0]["mean"], color="tab:blue", linestyle=":", linewidth=1, label="Net's mean")
    ax.axvline(target, color="gray", linestyle="--", linewidth=1, label=f"{target}%")
    ax.set_yticks(range(len(rows)), [row["taken away"] for row in rows], fontsize=8)
    ax.invert_yaxis()
    low = min(row["min"] for row in rows)
    ax.set_xlim(max(low, 97.0) - 0.1, 100)
    ax.set(xlabel=f"last-epoch test accuracy (%), seeds {', '.join(map(str, ablation['seeds']))}: mean and range",
           title="Net's recipe with one thing taken away")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="lower center")
    return fig


def plot_ladder(experiments, target=TARGET_ACC, budget=Net.budget):
    """The path to Net, from results/experiments.json: each design's last-epoch test accuracy against its
    parameters, labelled with the receptive field its features reach before the head; a line at the budget."""
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.subplots()
    for name, run in experiments.items():
        ax.scatter(run["parameters"], run["final_test_acc"], s=40, color="tab:blue" if name == "net" else "tab:gray")
        ax.annotate(f"{name}: RF {run['receptive_field']}, {run['final_test_acc']:.2f}%",
                    (run["parameters"], run["final_test_acc"]), textcoords="offset points", xytext=(7, -3),
                    fontsize=8)
    ax.axhline(target, color="gray", linestyle="--", linewidth=1, label=f"{target}%")
    ax.axvline(budget, color="gray", linestyle=":", linewidth=1, label=f"{budget:,} parameters")
    ax.set(xscale="log", xlabel="parameters", ylabel="last-epoch test accuracy (%)",
           title="From a 593,200-parameter baseline to Net: one run each, 20 epochs",
           xlim=(3_000, 3_000_000))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return fig
