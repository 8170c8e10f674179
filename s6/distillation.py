"""Knowledge distillation: a student learns from a trained teacher's softened probabilities as well as the labels.

The loss of Hinton, Vinyals and Dean, "Distilling the Knowledge in a Neural Network" (2015): a mix of the label
loss and T² times the KL divergence from the teacher's probabilities at temperature T to the student's. The
teacher is one or more of S6's own trained networks (an ensemble averages their probabilities); it runs in eval
mode on the same augmented batch as the student, under torch.inference_mode().
"""

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from s6.checkpoints import CheckpointError, evaluated_weights, load_torch_file, read_metrics
from s6.speed import speed_up_teacher
from s6_model import MODELS


class Teacher(nn.Module):
    """Trained networks whose probabilities, averaged, are the student's soft targets."""

    def __init__(self, members):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, images, temperature):
        """(N, 1, 28, 28) images -> (N, 10) probabilities at `temperature`, the members' mean: targets, which
        carry no autograd history."""
        with torch.inference_mode():
            # the networks return log-probabilities, which differ from logits by a constant per image: the
            # same softmax at any temperature
            probs = torch.stack([F.softmax(member(images) / temperature, dim=1) for member in self.members])
        # a copy made outside inference mode: autograd refuses to save an inference tensor for the backward
        return probs.mean(0).clone()


def teacher_files(path):
    """The model.pt files `path` names: a model.pt, a run folder holding one, or a --seeds folder such as
    results/net, whose seeds.json lists the seeds trained into results/net-seed<N>/. CheckpointError if none."""
    path = Path(path)
    if path.is_dir() and (path / "seeds.json").is_file():
        try:
            seeds = json.loads((path / "seeds.json").read_text())["summary"]["seeds"]
        except (ValueError, KeyError, TypeError):
            raise CheckpointError(f"{path / 'seeds.json'} is damaged: it lists no seeds") from None
        return [path.parent / f"{path.name}-seed{seed}" / "model.pt" for seed in seeds]
    if path.is_dir() and (path / "model.pt").is_file():
        return [path / "model.pt"]
    if path.is_dir():
        raise CheckpointError(f"teacher {path}: a folder without model.pt or seeds.json (a finished run, or a "
                              f"--seeds folder such as results/net)")
    return [path]


def load_network(path, device):
    """The network a model.pt (or a checkpoint's weight average) holds, in eval mode and without gradients.

    A model.pt is a bare state_dict, so each class in s6_model.MODELS is tried in turn until the weights fit
    one. Raises CheckpointError where the file is not S6's or fits none of them.
    """
    state = evaluated_weights(load_torch_file(path, device))
    for model_class in MODELS.values():
        network = model_class().to(device)
        try:
            network.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError):
            continue
        return network.eval().requires_grad_(False)
    raise CheckpointError(f"{path} holds weights of none of the models in s6_model ({', '.join(MODELS)})")


def check_no_leak(file, val_split):
    """ValueError where a run that holds out `val_split` images would distil from a teacher that trained on them."""
    metrics = file.parent / "metrics.json"
    held_out = read_metrics(metrics)["config"].get("val_split", 0) if metrics.is_file() else None
    # the validation split is the first `val_split` images of one fixed order (s6.data.split_indices): a
    # teacher that held out at least as many never saw them
    if held_out is None or held_out < val_split:
        trained_on = ("all 60,000 training images" if held_out == 0 else
                      "an unknown split (no metrics.json beside it)" if held_out is None else
                      f"all but {held_out:,}")
        raise ValueError(f"teacher {file} trained on {trained_on}, so it has seen this run's {val_split:,} "
                         f"validation images: distil from a teacher trained with --val-split {val_split}")


def build_teacher(config, device):
    """The Teacher of `config.teacher` with its speed tricks on, or None where the config has none.

    Raises CheckpointError for a file that is not a trained S6 network, and ValueError where the config
    holds out a validation split that the teacher trained on.
    """
    if not config.teacher:
        return None
    files = teacher_files(config.teacher)
    if config.val_split:
        for file in files:
            check_no_leak(file, config.val_split)
    teacher = Teacher([load_network(file, device) for file in files]).eval()
    speed_up_teacher(teacher, config)
    return teacher


def distillation_loss(log_probs, teacher_probs, label_loss, temperature, mix):
    """(1 - mix) * label_loss + mix * T² * KL(teacher || student), both softened by the temperature T.

    log_probs: (N, 10) the student's log-probabilities (logits up to a constant per image, so the same softmax);
    teacher_probs: (N, 10) from `Teacher` at the same T. T² keeps the soft term's gradients on the scale of the
    label loss's as T changes (Hinton et al., section 2).
    """
    student = F.log_softmax(log_probs / temperature, dim=1)
    soft = F.kl_div(student, teacher_probs, reduction="batchmean") * temperature**2
    return (1 - mix) * label_loss + mix * soft
