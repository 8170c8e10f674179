"""Figures of a model and a run, and torchsummary's table of a model; each function returns its figure or text."""

import contextlib
import copy
import io
import math

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator
from torch import nn

from s6.config import TARGET_ACC
from s6.data import MNIST_MEAN, MNIST_STD
from s6.results import accuracy, evaluated_epochs, prefix_of
from s6_model import GLOBAL, Net, layers_called, receptive_field


def model_summary(model, input_size=(1, 28, 28)):
    """torchsummary's table as a string, from an eval-mode CPU copy: `model` itself is left untouched."""
    from torchsummary import summary

    probe = copy.deepcopy(model).cpu().eval()
    with contextlib.redirect_stdout(io.StringIO()) as text:
        summary(probe, input_size, device="cpu")
    return text.getvalue()


def _pixels(image):
    """A normalised (1, 28, 28) image as its pixels in [0, 1], for imshow."""
    return (image.squeeze().float() * MNIST_STD + MNIST_MEAN).numpy()


def _show_digit(ax, image, title, color="black"):
    ax.imshow(_pixels(image), cmap="gray_r", vmin=0, vmax=1)
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
    seeds (the mean as a dot, the range as a bar) beside Net's, and the median over its seeds of the first epoch
    whose test accuracy reached the target."""
    rows = list(ablation["rows"].values())
    fig = Figure(figsize=(13, 0.45 * len(rows) + 1.6), layout="constrained")
    ax = fig.subplots()
    for y, row in enumerate(rows):
        color = "tab:blue" if y == 0 else "tab:gray"
        ax.plot([row["min"], row["max"]], [y, y], color=color, linewidth=3, alpha=0.5)
        ax.plot(row["mean"], y, "o", color=color)
        first = row["median_first_epoch_at_target"]
        ax.annotate(f"{row['mean']:.2f}%" + (f", first ≥ {target}%: epoch {first:g}" if first is not None else ""),
                    (row["max"], y), textcoords="offset points", xytext=(6, -3), fontsize=8)
    ax.axvline(rows[0]["mean"], color="tab:blue", linestyle=":", linewidth=1, label="Net's mean")
    ax.axvline(target, color="gray", linestyle="--", linewidth=1, label=f"{target}%")
    ax.set_yticks(range(len(rows)), [row["taken away"] for row in rows], fontsize=8)
    ax.invert_yaxis()
    low = min(row["min"] for row in rows)
    ax.set_xlim(max(low, 97.0) - 0.1, 100.3)  # room for the labels right of the bars
    ax.set_xticks([tick for tick in ax.get_xticks() if tick <= 100])
    ax.set(xlabel=f"last-epoch test accuracy (%) of seeds {', '.join(map(str, ablation['seeds']))}: their mean (dot) "
                  f"and range (bar)",
           title=f"Net's recipe with one thing taken away\n(first ≥ {target}%: the first epoch whose test accuracy "
                 f"reached it, the median of the seeds')")
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


def plot_feature_maps(model, image, channels=8):
    """What `model` sees of one (1, 28, 28) normalised image: the image, then, for each ReLU that follows a
    convolution (after its BatchNorm), its maps, up to `channels` of them, light where a channel responds. Each row's
    title names the convolution before it (of a separable block, the pointwise one), its channels and its map's
    size."""
    model = copy.deepcopy(model).cpu().eval()
    maps, convolution = [], None
    for name, layer, _, output in layers_called(model, image.unsqueeze(0).cpu()):
        if isinstance(layer, nn.Conv2d):
            convolution = name
        elif isinstance(layer, nn.ReLU) and output.dim() == 4 and convolution is not None:
            maps.append((f"convolution {len(maps) + 1} ({convolution})", output[0]))
            convolution = None
    fig = Figure(figsize=(channels * 1.1 + 1.5, 1.3 * (len(maps) + 1)), layout="constrained")
    axes = fig.subplots(len(maps) + 1, channels, squeeze=False)
    _show_digit(axes[0, 0], image, "the digit, 28x28")
    for ax in axes[0, 1:]:
        ax.axis("off")
    for row, (name, activation) in zip(axes[1:], maps, strict=True):
        for column, ax in enumerate(row):
            ax.axis("off")
            if column < len(activation):
                ax.imshow(activation[column].numpy(), cmap="magma")
        row[0].set_title(f"{name}: {len(activation)} channels, {activation.shape[-1]}x{activation.shape[-1]}",
                         fontsize=8, loc="left")
    fig.suptitle(f"{type(model).__name__}'s feature maps after each convolution, its first {channels} channels "
                 f"(light: the channel responds)")
    return fig


def plot_receptive_fields(image, models):
    """How much of one (1, 28, 28) normalised image one output of each layer sees, for each of `models` ({name:
    network}): the digit, and a square per layer of its features (up to the global pooling), centred, as wide as
    the layer's receptive field (s6_model.receptive_field). A square wider than 28 pixels reaches past the digit."""
    rows = {}
    for name, model in models.items():
        layers = receptive_field(model)
        pooled = next((i for i, row in enumerate(layers) if row["type"] in {cls.__name__ for cls in GLOBAL}),
                      len(layers))
        rows[name] = layers[:pooled]
    reach = max(row["receptive_field"] for layers in rows.values() for row in layers) / 2 + 1
    fig = Figure(figsize=(6.5 * len(models), 4.6), layout="constrained")
    for ax, (name, layers) in zip(fig.subplots(1, len(models), squeeze=False)[0], rows.items(), strict=True):
        ax.imshow(_pixels(image), cmap="gray_r", vmin=0, vmax=1, extent=(0, 28, 28, 0))
        for depth, row in enumerate(layers):
            side = row["receptive_field"]
            color = colormaps["viridis"](depth / max(1, len(layers) - 1))
            ax.add_patch(Rectangle((14 - side / 2, 14 - side / 2), side, side, fill=False, color=color, linewidth=1.5,
                                   label=f"{row['name']} ({row['type']}): {side} px"))
        ax.add_patch(Rectangle((0, 0), 28, 28, fill=False, color="gray", linestyle=":", linewidth=1))
        ax.set(xlim=(14 - reach, 14 + reach), ylim=(14 + reach, 14 - reach), xlabel="pixels (dotted: the 28x28 digit)",
               title=f"{name}: one output of each layer sees")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), title="layer: receptive field")
    return fig
