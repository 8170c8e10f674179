"""Reading an MNIST-like digit (s6/preparing.py prepares one from a picture): the network's digit, whether it is
unsure, and whether the picture is a digit at all.

The network has ten answers for any input. `DigitFeatures` says when an input is none of them: the
network's features of a digit (each channel's average, after every block) lie near those of its class in
the training set, those of a letter, a doodle or two digits side by side further away (Mahalanobis
distance to the nearest class, as in Lee et al. 2018, "A simple unified framework for detecting
out-of-distribution samples").
"""

from pathlib import Path
from typing import NamedTuple

import torch
from PIL import Image
from torch import nn

from s6.checkpoints import CheckpointError, load_torch_file
from s6.data import mnist_dataset, split_indices
from s6.files import save_torch
from s6.preparing import mnist_like
from s6.runs import FEATURES_FILE  # DigitFeatures.save writes it beside the model.pt it describes

# The network is unsure when its top probability is below this. Above it, the runner-up has at most 0.25,
# so a reading that passes is also at least 0.5 ahead of the second likeliest digit.
MIN_PROBABILITY = 0.75
# A small picture (up to SMALL_PICTURE pixels) is "not a digit" only beyond this many times DigitFeatures'
# threshold: at 8 to 16 pixels so little of a digit is left that its features stray further from MNIST's. Of
# 1.5, 2 and 3, the lowest at which the reader names as many small digits right as the plainly upscaled picture
# does on the most sets (doc/reader.md).
SMALL_PICTURE_DISTANCE = 2.0
# The share of held-out training digits that DigitFeatures' threshold lets through as digits: of 0.995 and 0.99, the
# one that called more of the chosen-on letters not a digit with under 1% of MNIST's test digits (doc/reader.md).
DIGIT_QUANTILE = 0.99


def pooled_features(model, digits):
    """(features (N, C), logits (N, 10)) of a model for normalised (N, 1, 28, 28) digits, from one pass of
    its own forward.

    The features are the mean and the standard deviation over the image of each channel after every ReLU, early
    and late (C is twice the sum of their widths: 240 for Net): the early blocks see strokes, the late ones whole
    digits, and a letter or a doodle is unlike a digit in one or the other, in how much of a feature it has or in
    how it is spread. Forward hooks collect them, so they follow whatever `forward` does.
    """
    pooled = []

    def keep_channel_statistics(module, inputs, output):
        # a dense layer's output as it is
        pooled.extend([output.mean((2, 3)), output.std((2, 3))] if output.dim() == 4 else [output])

    hooks = [module.register_forward_hook(keep_channel_statistics) for module in model.modules()
             if isinstance(module, nn.ReLU)]
    try:
        logits = model(digits)
    finally:
        for hook in hooks:
            hook.remove()
    return torch.cat(pooled, 1), logits


def pooled_on_cpu(model, digits):
    """pooled_features' features, computed where the model is and returned on the CPU."""
    return pooled_features(model, digits.to(next(model.parameters()).device))[0].float().cpu()


def as_read(images):
    """uint8 MNIST images (N, 28, 28), each made MNIST-like as a PNG of it would be: (N, 1, 28, 28)."""
    return torch.stack([mnist_like(Image.fromarray(image)) for image in images.numpy()])


class DigitFeatures(NamedTuple):
    """Where the network's features of real digits lie (pooled_features): each class's mean, one covariance
    shared by the ten, and the distance beyond which a picture is "not a digit".

    Fitted on training images only (`fit`), and saved beside the weights (FEATURES_FILE).
    """

    means: torch.Tensor  # (10, C)
    precision: torch.Tensor  # (C, C), the inverse of the shared covariance
    threshold: float  # squared Mahalanobis distance to the nearest class mean

    @classmethod
    @torch.inference_mode()
    def fit(cls, model, digits, labels, held_out, quantile):
        """Means and covariance of normalised (N, 1, 28, 28) training `digits` with `labels` (N,); the
        threshold is the `quantile` of the distances of other training digits, `held_out` (M, 1, 28, 28),
        so that a share 1 - quantile of digits like them lies beyond it."""
        model.eval()
        pooled = torch.cat([pooled_on_cpu(model, batch) for batch in digits.split(1000)]).double()
        means = torch.stack([pooled[labels == k].mean(0) for k in range(10)])
        centred = pooled - means[labels]
        covariance = centred.T @ centred / len(pooled)
        # a small ridge: a channel that ReLU leaves at 0 for nearly every digit makes it singular
        ridge = 1e-6 * covariance.diagonal().mean() * torch.eye(len(covariance), dtype=covariance.dtype)
        features = cls(means.float(), torch.linalg.inv(covariance + ridge).float(), 0.0)
        distances = torch.cat([features.distances(pooled_on_cpu(model, batch)) for batch in held_out.split(1000)])
        return features._replace(threshold=torch.quantile(distances.double(), quantile).item())

    @classmethod
    def fit_on_mnist(cls, model, data_dir="data"):
        """Fitted on MNIST's training images, each made MNIST-like as a PNG of it would be: means and covariance
        from the 50,000 of the validation split's training part, the threshold (DIGIT_QUANTILE) from the
        10,000 it holds out. About a minute on a CPU."""
        train = mnist_dataset(data_dir, train=True)
        fit, held_out = split_indices(10_000)
        return cls.fit(model, as_read(train.data[fit]), train.targets[fit], as_read(train.data[held_out]),
                       DIGIT_QUANTILE)

    def distances(self, pooled):
        """Squared Mahalanobis distance (N,) of pooled features (N, C) to the nearest class mean; CheckpointError
        for features of another width than these were fitted on (a file from an earlier S6)."""
        if pooled.shape[1] != self.means.shape[1]:
            raise CheckpointError(f"these digit features were fitted on {self.means.shape[1]} features of the "
                                  f"network, not the {pooled.shape[1]} the reader takes now: fit them again with "
                                  f"python s6_predict.py --calibrate --overwrite")
        difference = pooled.unsqueeze(1) - self.means  # (N, 10, C)
        return torch.einsum("nkc,cd,nkd->nk", difference, self.precision, difference).min(1).values

    def save(self, path):
        save_torch(path, {"means": self.means, "precision": self.precision, "threshold": torch.tensor(self.threshold)})

    @classmethod
    def load(cls, path):
        """The features saved at `path`; CheckpointError for a file that is not one."""
        state = load_torch_file(path)
        if not isinstance(state, dict) or set(state) != {"means", "precision", "threshold"} or not all(
                isinstance(value, torch.Tensor) for value in state.values()):
            raise CheckpointError(f"{path} does not hold digit features (written by s6_predict.py --calibrate)")
        means, precision, threshold = state["means"], state["precision"], state["threshold"]
        shapes_as_written = means.dim() == 2 and len(means) == 10 and precision.shape == (means.shape[1],) * 2
        if not shapes_as_written or threshold.numel() != 1:
            raise CheckpointError(f"{path} is damaged: its digit features are not of the shapes S6 writes; fit them "
                                  f"again with python s6_predict.py --calibrate --overwrite")
        return cls(means, precision, threshold.item())


def features_beside(weights):
    """The DigitFeatures saved beside a model.pt, or None where there are none."""
    path = Path(weights).parent / FEATURES_FILE
    return DigitFeatures.load(path) if path.exists() else None


class Reading(NamedTuple):
    """What the network makes of one picture."""

    digit: int  # the likeliest
    runner_up: int  # the second likeliest
    probabilities: list  # of the ten classes
    unsure: bool  # the likeliest digit's probability is below MIN_PROBABILITY
    not_a_digit: bool = False  # its features lie beyond DigitFeatures.threshold from every digit's
    distance: float | None = None  # that distance, where DigitFeatures were given


@torch.inference_mode()
def read_digit(model, digit, features=None, small=None):
    """The network's reading of one (1, 28, 28) MNIST-like digit.

    features: DigitFeatures of the model, to say when the picture is no digit (without, it never is).
    small: a small picture's preparations (Prepared.small, (2, 2, 1, 28, 28)), read in place of `digit` and
    weighed by `weigh_small`; it is "not a digit" beyond SMALL_PICTURE_DISTANCE times the threshold.
    """
    model.eval()
    candidates = digit.unsqueeze(0) if small is None else small.flatten(0, 1)
    candidates = candidates.to(next(model.parameters()).device)
    if features is None:
        logits, distances = model(candidates), None
    else:
        pooled, logits = pooled_features(model, candidates)
        distances = features.distances(pooled.float().cpu())
    probabilities = torch.softmax(logits.float(), dim=1).cpu()
    threshold = None if features is None else features.threshold
    if small is not None:
        probabilities, distances = weigh_small(probabilities, distances)
        threshold = None if threshold is None else threshold * SMALL_PICTURE_DISTANCE
    probabilities, distance = probabilities[0], None if distances is None else distances[0].item()
    top, runner_up = probabilities.topk(2).indices.tolist()
    return Reading(top, runner_up, probabilities.tolist(), bool(probabilities[top] < MIN_PROBABILITY),
                   distance is not None and distance > threshold, distance)


def weigh_small(probabilities, distances):
    """A small picture's reading from its four, ordered as Prepared.small: probabilities (4, 10) and distances
    (4,) or None -> (1, 10) and (1,) or None. Of the two polarities, the one nearer a digit's features (the
    nearer of its two preparations; without distances, the one read more surely), its two preparations'
    probabilities averaged."""
    per_polarity = probabilities.view(2, 2, -1).mean(1)
    if distances is None:
        return per_polarity[per_polarity.max(1).values.argmax()].unsqueeze(0), None
    nearest = distances.view(2, 2).min(1).values
    polarity = nearest.argmin()
    return per_polarity[polarity].unsqueeze(0), nearest[polarity].unsqueeze(0)


def verdict(reading):
    """What the reader says of a picture, in the words both s6_predict.py and the app use: '7 (99.2%)',
    'unsure: 7 (52.0%) or 1 (40.3%)' or 'not a digit (as a digit: 7, 61.0%)'."""
    first, second, probabilities = reading.digit, reading.runner_up, reading.probabilities
    if reading.not_a_digit:
        return f"not a digit (as a digit: {first}, {probabilities[first]:.1%})"
    if reading.unsure:
        return f"unsure: {first} ({probabilities[first]:.1%}) or {second} ({probabilities[second]:.1%})"
    return f"{first} ({probabilities[first]:.1%})"
