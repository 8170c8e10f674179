"""The one place for a run's settings: TrainConfig, every hyperparameter as a plain value; the recipes, functions
that return a complete TrainConfig; and where a run runs (device, seeds)."""

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
# Settings that change how fast a run computes, not what: the layouts give the same values (tests/test_speed.py),
# and CUDA graphs replay the same kernels. With PLACEMENT, the settings two runs may differ in and be the same run.
SAME_RESULT = (*PLACEMENT, "channels_last_pooling", "channels_last_evaluation", "cuda_graphs")
NO_VALUE = object()  # a field's `before` where records made before the field existed cannot say what they ran


class UserError(ValueError):
    """Something a user gave S6 (a setting, a flag, a file, a folder) that it cannot use. The scripts print it as
    one line; any other exception is a bug and keeps its traceback."""


def _field(default, help, before=NO_VALUE, choices=None):
    """A TrainConfig field. `before`: the value that every run recorded before the field existed trained with, so
    that such a record is read as what it ran, not as today's default. `choices`: the values a flag accepts."""
    return field(default=default, metadata={"help": help, "before": before, "choices": choices})


@dataclass
class TrainConfig:
    """Every hyperparameter of a run, as plain values: no field implies another, and equal configs train alike. The
    defaults are Net's recipe, which produces the README result; `recipe(name, model)` gives another model's, or a
    named recipe's, complete config. Raises UserError for an invalid value."""

    model: str = _field("net", "the network trained: one of S6's (s6_model.MODELS), or the name of a network of "
                               "your own that fit trains", choices=tuple(MODELS))
    epochs: int = _field(20, "training epochs")
    batch_size: int = _field(128, "training batch size")
    lr: float = _field(0.1, "learning rate (SGD, Nesterov momentum): the OneCycle schedule's peak, or the step and "
                            "constant schedules' start")
    momentum: float = _field(0.9, "SGD momentum, which OneCycle moves opposite to the rate: 0.05 above this at the "
                                  "lowest rate, 0.05 below it at the peak")
    weight_decay: float = _field(1e-4, "L2 weight decay; small, since a 20K-parameter net barely overfits")
    pct_start: float = _field(0.2, "fraction of steps spent warming up to the peak rate: early peak, long anneal")
    schedule: str = _field("onecycle", "the learning rate's schedule: 'onecycle' (up to --lr, then annealed to almost "
                                       "0), 'step' (--lr, divided by 10 at half and at three quarters of the steps) "
                                       "or 'constant' (--lr throughout)", before="onecycle", choices=SCHEDULES)
    label_smoothing: float = _field(0.05, "label smoothing: keeps ambiguous digits from dominating late epochs")
    dropout: float = _field(0.05, "rate of the dropout layers; small, as augmentation already regularises")
    ema_decay: float = _field(0.998, "evaluate an exponential moving average of the weights with this decay "
                                     "(0: off); it averages out the noise of a high learning rate", before=0.0)
    rotate_degrees: float = _field(10.0, "random rotation range (+-degrees) per training image")
    translate: float = _field(0.1, "random shift range per training image, as a fraction of its width")
    scale: float = _field(0.1, "random zoom range per training image: 1 +- scale")
    pipeline: str = _field("fast", "'fast' (tensors on the device, batch augmentation) or 'torchvision' (reference)",
                           choices=PIPELINES)
    precision: str = _field("auto", "'bf16' autocast, 'fp32', or 'auto': bf16 on a CPU that has it, else fp32",
                            choices=PRECISIONS)
    channels_last: bool = _field(False, "NHWC memory layout; off, as it measured slower for these channel counts "
                                        "(doc/performance.md)")
    channels_last_pooling: bool = _field(True, "on a CPU, max-pool NCHW batches in channels-last layout: the same "
                                               "values and gradients, faster (doc/performance.md)", before=False)
    channels_last_evaluation: bool = _field(True, "on a CPU, keep the weight average, the network evaluated, in "
                                                  "channels-last layout: the same predictions, evaluated faster "
                                                  "(doc/performance.md)", before=False)
    cuda_graphs: bool = _field(True, "on CUDA, replay each full batch's forward and backward as CUDA graphs: "
                                     "launching a step's many small kernels, not running them, bounds a GPU here",
                               before=False)
    val_split: int = _field(0, "hold out this many training images and evaluate on them instead of the test set")
    eval_each_epoch: bool = _field(True, "evaluate after every epoch; off: after the last only, the run's result, "
                                         "which spares a short run evaluations that cannot reach the target",
                                   before=True)
    seed: int = _field(1, "seed for weights, data order, augmentation and dropout")
    device: str | None = _field(None, "cpu, cuda or mps; default: the best available", choices=DEVICES)
    data_dir: str = _field("data", "folder holding MNIST/raw/ (downloaded there when online)")
    max_batches: int = _field(0, "batches per epoch for smoke runs; 0 means all")

    def __post_init__(self):
        checks = {
            "model": isinstance(self.model, str) and self.model.strip() != "",
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


# The settings of the training images' random augmentation, each at the value that switches it off: for the
# recipes and the ablation that train without it
AUGMENTATION_OFF = dict(rotate_degrees=0.0, translate=0.0, scale=0.0)
# Each model's recipe, as what it changes from Net's (TrainConfig's defaults), chosen on the validation split
# (doc/experiments.md); and the named recipes, as what each changes from a model's own, for the models it was
# chosen for.
MODEL_RECIPES = {
    "net": {},
    "small": dict(epochs=15, lr=0.4, rotate_degrees=5.0, translate=0.05, scale=0.05),
    "tiny": dict(epochs=15, lr=0.4, rotate_degrees=5.0, translate=0.05, scale=0.05),
    "micro": dict(pct_start=0.3),
}
NAMED_RECIPES = {
    # 99.4% as soon as possible: a OneCycle compressed to three epochs at twice the peak rate, with neither
    # augmentation nor dropout (a short run underfits), evaluated after the last epoch only
    "quick": {"net": dict(epochs=3, lr=0.2, dropout=0.0, ema_decay=0.99, **AUGMENTATION_OFF, eval_each_epoch=False)},
}
RECIPE_NAMES = ("default", *NAMED_RECIPES)
# The settings that some recipe changes
RECIPE_FIELDS = {name for row in [*MODEL_RECIPES.values(), *(row for rows in NAMED_RECIPES.values()
                                                            for row in rows.values())] for name in row}


def recipe(name="default", model="net", **settings):
    """The complete TrainConfig of `model`'s recipe: its own ("default") or a named one (NAMED_RECIPES) for the
    models it names, with any `settings` given on top. Raises UserError for a recipe the model does not have."""
    if model not in MODEL_RECIPES:
        raise UserError(f"S6 has recipes for {', '.join(MODEL_RECIPES)}, not for {model!r}: train another network "
                        f"with TrainConfig's settings, fit(TrainConfig(), model=...)")
    changes = NAMED_RECIPES.get(name, {}).get(model) if name != "default" else {}
    if changes is None:
        having = ["default", *(other for other, rows in NAMED_RECIPES.items() if model in rows)]
        raise UserError(f"recipe {name!r} is not one of {model}'s: it has {', '.join(map(repr, having))}")
    return TrainConfig(**{"model": model, **MODEL_RECIPES[model], **changes, **settings})


def differences(a, b, ignore=SAME_RESULT):
    """{field: (a's value, b's value)} for each field in which configs `a` and `b` differ, less those in `ignore`."""
    return {f.name: (getattr(a, f.name), getattr(b, f.name)) for f in fields(TrainConfig)
            if f.name not in ignore and getattr(a, f.name) != getattr(b, f.name)}


def recipe_of(config):
    """What `config` is, in words derived from its values: the recipe of its model it is ('quick'), or the nearest
    one and what differs ('default, with lr=0.2'); a network S6 has no recipe for is measured against Net's. The
    seed and the settings that change no result are not counted."""
    model = config.model if config.model in MODEL_RECIPES else "net"
    ignore = (*SAME_RESULT, "seed", "model")
    candidates = {name: recipe(name, model) for name in RECIPE_NAMES if name == "default" or model in
                  NAMED_RECIPES[name]}
    name, changed = min(((name, differences(made, config, ignore)) for name, made in candidates.items()),
                        key=lambda item: len(item[1]))
    return name + (", with " + ", ".join(f"{key}={value!r}" for key, (_, value) in changed.items()) if changed else "")


def described(differing):
    """The fields of `differences` in words: "lr 0.1 there, 0.2 here"."""
    return "; ".join(f"{name} {there!r} there, {here!r} here" for name, (there, here) in differing.items())


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
