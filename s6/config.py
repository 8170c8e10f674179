"""The one place for a run's settings (TrainConfig), and where it runs (device, seeds)."""

import math
import platform
import random
from dataclasses import asdict, dataclass, field, fields
from functools import cache
from pathlib import Path

import numpy as np
import torch

from s6_model import MODELS

TARGET_ACC = 99.4
PRECISIONS = ("auto", "bf16", "fp32")
PIPELINES = ("fast", "torchvision")
SCHEDULES = ("onecycle", "step", "constant")
DEVICES = ("cpu", "cuda", "mps")
# Where a run's data is and what it runs on: settings that change neither what it computes nor its result
# (on a CPU), so a run may be resumed, or a finished seed reused, with others.
PLACEMENT = ("data_dir", "device")


class UserError(ValueError):
    """Something a user gave S6 (a setting, a flag, a file, a folder) that it cannot use. The scripts print it as
    one line; any other exception is a bug and keeps its traceback."""


def _field(default, help):
    return field(default=default, metadata={"help": help})


# The settings that differ between models or recipes: Net's, and what each other model changes, chosen on
# the validation split (doc/experiments.md). Models not listed train with Net's. A TrainConfig made without
# one of these settings takes it from its model's row.
RECIPES = {
    "net": dict(epochs=20, batch_size=128, lr=0.1, pct_start=0.2, dropout=0.05, ema_decay=0.998,
                rotate_degrees=10.0, translate=0.1, scale=0.1, eval_each_epoch=True),
    "small": dict(epochs=15, lr=0.4, rotate_degrees=5.0, translate=0.05, scale=0.05),
    "tiny": dict(epochs=15, lr=0.4, rotate_degrees=5.0, translate=0.05, scale=0.05),
    "micro": dict(pct_start=0.3),
}
# Recipes a run may select by name instead of its model's default (TrainConfig.recipe), chosen on the
# validation split too: each changes its model's RECIPES row, and a setting given explicitly still wins.
NAMED_RECIPES = {
    # 99.4% as soon as possible: a OneCycle compressed to three epochs at twice the peak rate, with neither
    # augmentation nor dropout (a short run underfits), evaluated after the last epoch only
    "quick": {"net": dict(epochs=3, lr=0.2, dropout=0.0, ema_decay=0.99, rotate_degrees=0.0, translate=0.0,
                          scale=0.0, eval_each_epoch=False)},
}


@dataclass
class TrainConfig:
    """Every hyperparameter of a run. The defaults produce the README result. Raises UserError for an invalid value.

    A field left at None takes its value, when the config is made, from its model's row of RECIPES, changed by
    its named recipe's; a value given wins. After that a config is plain values: equal configs train alike, and
    dataclasses.replace changes only the fields it is given, so that replace(config, model="tiny") keeps the
    recipe's values; TrainConfig(model="tiny") takes TinyNet's recipe.
    """

    model: str = _field("net", f"model class from s6_model.MODELS: {', '.join(MODELS)}")
    recipe: str = _field("default", "the model's 'default' recipe, or a named one that changes it: " + "; ".join(
        f"'{name}' (for {', '.join(rows)})" for name, rows in NAMED_RECIPES.items()))
    epochs: int = _field(None, "training epochs")
    batch_size: int = _field(None, "training batch size")
    lr: float = _field(None, "learning rate (SGD, Nesterov momentum): the OneCycle schedule's peak, or the step and "
                             "constant schedules' start")
    momentum: float = _field(0.9, "SGD momentum, which OneCycle moves opposite to the rate: 0.05 above this at the "
                                  "lowest rate, 0.05 below it at the peak")
    weight_decay: float = _field(1e-4, "L2 weight decay; small, since a 20K-parameter net barely overfits")
    pct_start: float = _field(None, "fraction of steps spent warming up to the peak rate: early peak, long anneal")
    schedule: str = _field("onecycle", "the learning rate's schedule: 'onecycle' (up to --lr, then annealed to almost "
                                       "0), 'step' (--lr, divided by 10 at half and at three quarters of the steps) "
                                       "or 'constant' (--lr throughout)")
    label_smoothing: float = _field(0.05, "label smoothing: keeps ambiguous digits from dominating late epochs")
    dropout: float = _field(None, "rate of the dropout layers; small, as augmentation already regularises")
    ema_decay: float = _field(None, "evaluate an exponential moving average of the weights with this decay "
                                   "(0: off); it averages out the noise of a high learning rate")
    rotate_degrees: float = _field(None, "random rotation range (+-degrees) per training image")
    translate: float = _field(None, "random shift range per training image, as a fraction of its width")
    scale: float = _field(None, "random zoom range per training image: 1 +- scale")
    pipeline: str = _field("fast", "'fast' (tensors on the device, batch augmentation) or 'torchvision' (reference)")
    precision: str = _field("auto", "'bf16' autocast, 'fp32', or 'auto': bf16 on a CPU that has it, else fp32")
    channels_last: bool = _field(False, "NHWC memory layout; off, as it measured slower for these channel counts "
                                        "(doc/performance.md)")
    channels_last_pooling: bool = _field(True, "on a CPU, max-pool NCHW batches in channels-last layout: the same "
                                               "values and gradients, faster (doc/performance.md)")
    channels_last_evaluation: bool = _field(True, "on a CPU, keep the weight average, the network evaluated, in "
                                                  "channels-last layout: the same predictions, evaluated faster "
                                                  "(doc/performance.md)")
    cuda_graphs: bool = _field(True, "on CUDA, replay each full batch's forward and backward as CUDA graphs: "
                                     "launching a step's many small kernels, not running them, bounds a GPU here")
    val_split: int = _field(0, "hold out this many training images and evaluate on them instead of the test set")
    eval_each_epoch: bool = _field(None, "evaluate after every epoch; off: after the last only, the run's result, "
                                         "which spares a short run evaluations that cannot reach the target")
    seed: int = _field(1, "seed for weights, data order, augmentation and dropout")
    device: str | None = _field(None, "cpu, cuda or mps; default: the best available")
    data_dir: str = _field("data", "folder holding MNIST/raw/ (downloaded there when online)")
    max_batches: int = _field(0, "batches per epoch for smoke runs; 0 means all")

    def __post_init__(self):
        named = NAMED_RECIPES.get(self.recipe, {})
        if self.recipe != "default" and self.model not in named:
            raise UserError(f"TrainConfig.recipe={self.recipe!r} is not valid for model {self.model!r}: "
                            f"{field_help('recipe')}")
        row = {**RECIPES["net"], **RECIPES.get(self.model, {}), **named.get(self.model, {})}
        for name, value in row.items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        checks = {
            "model": self.model in MODELS,
            "epochs": self.epochs >= 1,
            "batch_size": self.batch_size >= 1,
            "lr": self.lr > 0,
            "momentum": 0.05 <= self.momentum < 0.95,
            "weight_decay": self.weight_decay >= 0,
            "pct_start": 0 < self.pct_start < 1,
            "schedule": self.schedule in SCHEDULES,
            "label_smoothing": 0 <= self.label_smoothing < 1,
            "dropout": 0 <= self.dropout < 1,
            "ema_decay": 0 <= self.ema_decay < 1,
            "rotate_degrees": 0 <= self.rotate_degrees <= 180,
            "translate": 0 <= self.translate < 0.5,
            "scale": 0 <= self.scale < 1,
            "pipeline": self.pipeline in PIPELINES,
            "precision": self.precision in PRECISIONS,
            "val_split": 0 <= self.val_split < 60_000,
            "device": self.device is None or self.device in DEVICES,
            "max_batches": self.max_batches >= 0,
            "seed": 0 <= self.seed < 2**32,  # numpy's seeds
        }
        for name, ok in checks.items():
            value = getattr(self, name)
            if not ok or (isinstance(value, float) and not math.isfinite(value)):
                raise UserError(f"TrainConfig.{name}={value!r} is not valid: {field_help(name)}")

    def to_dict(self):
        return asdict(self)


def eval_set(config):
    """What a run's reported accuracy is measured on: 'validation' (its held-out training images) or 'test'."""
    return "validation" if config.val_split else "test"


def field_help(name):
    return next(f.metadata["help"] for f in fields(TrainConfig) if f.name == name)


def get_device(preference=None):
    """CUDA, else Apple MPS, else CPU; an explicit preference wins, and must be available."""
    available = {
        "cuda": torch.cuda.is_available(),
        "mps": torch.backends.mps.is_available(),
        "cpu": True,
    }
    if preference is not None:
        if not available.get(preference, False):
            raise UserError(f"device {preference!r} is not available here; use one of "
                             f"{[name for name, ok in available.items() if ok]}")
        return torch.device(preference)
    return torch.device(next(name for name, ok in available.items() if ok))


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@cache  # metrics.json records it every epoch, and the CPU does not change mid-run
def cpu_model():
    fallback = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        return fallback
    return next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")), fallback)


def machine_name(device):
    """The GPU's name, or the CPU's model and the threads torch uses: what a timing was measured on."""
    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_model()}, {torch.get_num_threads()} threads"
