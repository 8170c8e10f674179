"""S6 training utilities: device, config, MNIST data, train/test loops, history, plots.

The notebook, `s6_train.py`, `s6_experiments.py` and `s6_bench.py` all call these; none of
them holds training logic of its own.
"""

import contextlib
import copy
import io
import json
import math
import os
import platform
import random
import time
import warnings
from dataclasses import asdict, dataclass, field, fields
from functools import cache, partial
from itertools import chain, islice
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torch import nn
from torch.utils.data import DataLoader, Subset
from tqdm.auto import tqdm

from s6_model import MODELS, count_parameters

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
TARGET_ACC = 99.4
# The four raw files torchvision reads, with their sizes and IDX magic numbers (0x801 labels, 0x803 images).
MNIST_FILES = {
    "train-images-idx3-ubyte": (47_040_016, 0x803),
    "train-labels-idx1-ubyte": (60_008, 0x801),
    "t10k-images-idx3-ubyte": (7_840_016, 0x803),
    "t10k-labels-idx1-ubyte": (10_008, 0x801),
}
PRECISIONS = ("auto", "bf16", "fp32")
PIPELINES = ("fast", "torchvision")
DEVICES = ("cpu", "cuda", "mps")


class MnistDataError(RuntimeError):
    """The MNIST files are missing, truncated or corrupt; the message says what to do."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


class CheckpointError(RuntimeError):
    """A file is not an S6 checkpoint or model, or does not fit the model."""


# ----------------------------------------------------------------------------- config


def _field(default, help):
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    """Every hyperparameter of a run. The defaults produce the README result."""

    model: str = _field("net", f"model class from s6_model.MODELS: {', '.join(MODELS)}")
    epochs: int = _field(20, "training epochs")
    batch_size: int = _field(128, "training batch size")
    lr: float = _field(0.1, "peak learning rate of the OneCycle schedule (SGD, Nesterov momentum)")
    momentum: float = _field(0.9, "SGD momentum")
    weight_decay: float = _field(1e-4, "L2 weight decay; small, since a 20K-parameter net barely overfits")
    pct_start: float = _field(0.2, "fraction of steps spent warming up to the peak rate: early peak, long anneal")
    label_smoothing: float = _field(0.05, "label smoothing: keeps ambiguous digits from dominating late epochs")
    dropout: float = _field(0.05, "rate of the dropout layers; small, as augmentation already regularises")
    ema_decay: float = _field(0.998, "evaluate an exponential moving average of the weights with this decay "
                                   "(0: off); it averages out the noise of a high learning rate")
    rotate_degrees: float = _field(10.0, "random rotation range (+-degrees) per training image")
    translate: float = _field(0.1, "random shift range per training image, as a fraction of its width")
    scale: float = _field(0.1, "random zoom range per training image: 1 +- scale")
    pipeline: str = _field("fast", "'fast' (tensors on the device, batch augmentation) or 'torchvision' (reference)")
    precision: str = _field("auto", "'bf16' autocast, 'fp32', or 'auto': bf16 on a CPU that has it, else fp32")
    channels_last: bool = _field(False, "NHWC memory layout; off, as it measured slower for these channel counts "
                                        "(README, \"Performance\")")
    channels_last_pooling: bool = _field(True, "on a CPU, max-pool NCHW batches in channels-last layout: the same "
                                               "values and gradients, faster (README, \"Performance\")")
    cuda_graphs: bool = _field(True, "on CUDA, replay each full batch's forward and backward as CUDA graphs: "
                                     "launching a step's many small kernels, not running them, bounds a GPU here")
    val_split: int = _field(0, "hold out this many training images and evaluate on them instead of the test set")
    seed: int = _field(1, "seed for weights, data order, augmentation and dropout")
    device: str | None = _field(None, "cpu, cuda or mps; default: the best available")
    data_dir: str = _field("data", "folder holding MNIST/raw/ (downloaded there when online)")
    max_batches: int = _field(0, "batches per epoch for smoke runs; 0 means all")

    def __post_init__(self):
        checks = {
            "model": self.model in MODELS,
            "epochs": self.epochs >= 1,
            "batch_size": self.batch_size >= 1,
            "lr": self.lr > 0,
            "momentum": 0 <= self.momentum < 1,
            "weight_decay": self.weight_decay >= 0,
            "pct_start": 0 < self.pct_start < 1,
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
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"TrainConfig.{name}={getattr(self, name)!r} is not valid: {_help(name)}")

    def to_dict(self):
        return asdict(self)


def _help(name):
    return next(f.metadata["help"] for f in fields(TrainConfig) if f.name == name)


# ----------------------------------------------------------------------------- device


def get_device(preference=None):
    """CUDA, else Apple MPS, else CPU; an explicit preference wins, and must be available."""
    available = {
        "cuda": torch.cuda.is_available(),
        "mps": torch.backends.mps.is_available(),
        "cpu": True,
    }
    if preference is not None:
        if not available.get(preference, False):
            raise ValueError(f"device {preference!r} is not available here; use one of "
                             f"{[name for name, ok in available.items() if ok]}")
        return torch.device(preference)
    return torch.device(next(name for name, ok in available.items() if ok))


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
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_model()}, {torch.get_num_threads()} threads"


def use_bf16(precision, device):
    """Whether to train under bfloat16 autocast: 'auto' means on a CPU with AVX-512-BF16 or AMX only.

    Not on CUDA: measured on an H200, autocast made a step slower, since a step of a 20K-parameter
    net is bound by kernel launches and autocast adds a cast of every weight (README, "Performance").
    """
    if precision != "auto":
        return precision == "bf16"
    if device.type == "cpu":
        return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return False


def use_cuda_graphs(config, device):
    """Whether to replay the training step's passes as CUDA graphs: on CUDA, unless the config turns it off."""
    return config.cuda_graphs and device.type == "cuda"


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# ----------------------------------------------------------------------------- data


def _missing_message(raw):
    names = "\n".join(f"  {raw / name}" for name in MNIST_FILES)
    return (f"MNIST is not in {raw} and could not be downloaded. Put the four uncompressed files there:\n"
            f"{names}\n(the .gz files from an MNIST mirror, unpacked with gunzip), or run once on a machine "
            f"with internet, where torchvision downloads them.")


def check_mnist_files(data_dir):
    """Raise MnistDataError naming any raw file that is present but truncated or not an IDX file."""
    raw = Path(data_dir) / "MNIST" / "raw"
    for name, (size, magic) in MNIST_FILES.items():
        path = raw / name
        if not path.exists():
            continue
        with path.open("rb") as f:
            header = int.from_bytes(f.read(4), "big")
        if path.stat().st_size != size or header != magic:
            raise MnistDataError(
                f"{path} is truncated or corrupt ({path.stat().st_size:,} bytes, expected {size:,}). "
                f"Delete it and re-create it: gunzip {name}.gz from an MNIST mirror, or let torchvision "
                f"download it again on a machine with internet.")


def mnist_dataset(data_dir="data", train=True, transform=None):
    """torchvision's MNIST, downloaded when online; a MnistDataError instead of a network traceback."""
    from torchvision import datasets

    check_mnist_files(data_dir)
    raw = Path(data_dir) / "MNIST" / "raw"
    have_all = all((raw / name).exists() for name in MNIST_FILES)
    try:
        # torchvision prints each failed mirror; the error below says all that matters
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return datasets.MNIST(data_dir, train=train, download=not have_all, transform=transform)
    except (OSError, RuntimeError) as error:
        raise MnistDataError(_missing_message(raw)) from error


def _split_indices(val_split):
    """A fixed train/validation split of the 60,000 training images, independent of the run's seed."""
    order = torch.randperm(60_000, generator=torch.Generator().manual_seed(0))
    return order[val_split:], order[:val_split]


def mnist_tensors(data_dir, train, device):
    """All images as one uint8 tensor (N, 1, 28, 28) and labels (N,), on the device."""
    dataset = mnist_dataset(data_dir, train=train)
    return dataset.data.to(device).unsqueeze(1), dataset.targets.to(device)


def to_unit_range(images):
    """uint8 pixels -> float in [0, 1], as transforms.ToTensor does."""
    return images.float() / 255


def normalize(images):
    return (images - MNIST_MEAN) / MNIST_STD


def random_affine(images, degrees, translate, scale):
    """Rotate, shift and zoom each image of a batch by its own random amounts, on the images' device.

    images: (N, C, H, W) with background 0, so the zero padding of grid_sample is background too.
    """
    n, device = images.shape[0], images.device
    angle = (torch.rand(n, device=device) * 2 - 1) * math.radians(degrees)
    zoom = 1 + (torch.rand(n, device=device) * 2 - 1) * scale
    shift = (torch.rand(n, 2, device=device) * 2 - 1) * translate * 2  # grid units: the image spans [-1, 1]
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1),
                         torch.stack([sin, cos, shift[:, 1]], 1)], 1)  # (N, 2, 3), output -> input coords
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


class TensorLoader:
    """Batches cut from whole-dataset tensors that already live on the training device.

    Replaces DataLoader + per-sample PIL transforms: a per-epoch permutation, a gather, one batched
    augmentation and a normalisation, all on the device. Randomness comes from torch's global RNG,
    which `fit` seeds per epoch.
    """

    def __init__(self, images, labels, batch_size, shuffle=False, augment=None):
        self.images, self.labels = images, labels
        self.batch_size, self.shuffle, self.augment = batch_size, shuffle, augment

    def __len__(self):
        return math.ceil(len(self.labels) / self.batch_size)

    def __iter__(self):
        n = len(self.labels)
        device = self.labels.device
        order = torch.randperm(n, device=device) if self.shuffle else torch.arange(n, device=device)
        for start in range(0, n, self.batch_size):
            index = order[start:start + self.batch_size]
            images = to_unit_range(self.images[index])  # gather uint8: a quarter of the bytes of float
            if self.augment:
                images = random_affine(images, **self.augment)
            yield normalize(images), self.labels[index]


def augment_settings(config):
    return dict(degrees=config.rotate_degrees, translate=config.translate, scale=config.scale)


def fast_loaders(config, device, eval_batch_size=1000):
    """(train, eval) TensorLoaders; eval is the test set, or the validation split when val_split > 0."""
    images, labels = mnist_tensors(config.data_dir, train=True, device=device)
    if config.val_split:
        train_index, val_index = (index.to(device) for index in _split_indices(config.val_split))
        eval_images, eval_labels = images[val_index], labels[val_index]
        images, labels = images[train_index], labels[train_index]
    else:
        eval_images, eval_labels = mnist_tensors(config.data_dir, train=False, device=device)
    train = TensorLoader(images, labels, config.batch_size, shuffle=True, augment=augment_settings(config))
    return train, TensorLoader(eval_images, eval_labels, eval_batch_size)


def torchvision_transforms(config=None):
    """Per-sample PIL transforms, the conventional pipeline; with a config, its augmentation first."""
    from torchvision import transforms

    steps = [transforms.ToTensor(), transforms.Normalize((MNIST_MEAN,), (MNIST_STD,))]
    if config is not None:
        steps.insert(0, transforms.RandomAffine(config.rotate_degrees, translate=(config.translate,) * 2,
                                                scale=(1 - config.scale, 1 + config.scale)))
    return transforms.Compose(steps)


def torchvision_loaders(config, device, eval_batch_size=1000):
    """(train, eval) DataLoaders over torchvision's MNIST: the reference pipeline."""
    train_set = mnist_dataset(config.data_dir, train=True, transform=torchvision_transforms(config))
    if config.val_split:
        train_index, val_index = _split_indices(config.val_split)
        eval_set = Subset(mnist_dataset(config.data_dir, train=True, transform=torchvision_transforms()),
                          val_index.tolist())
        train_set = Subset(train_set, train_index.tolist())
    else:
        eval_set = mnist_dataset(config.data_dir, train=False, transform=torchvision_transforms())
    pin = device.type == "cuda"
    workers = 2 if device.type == "cuda" else 0  # on a 2-core CPU, workers compete with the training step
    train = DataLoader(train_set, config.batch_size, shuffle=True, num_workers=workers, pin_memory=pin)
    return train, DataLoader(eval_set, eval_batch_size, num_workers=workers, pin_memory=pin)


def make_loaders(config, device):
    return (fast_loaders if config.pipeline == "fast" else torchvision_loaders)(config, device)


def mnist_like(image):
    """A PIL image of one digit -> a normalised (1, 28, 28) tensor, made the way MNIST's digits were.

    Grayscale, light ink on a dark ground (a dark-on-light photo is inverted, judged by its border),
    cropped to the ink, scaled so that its longer side is 20 pixels, and placed in 28x28 with its
    centre of mass at the centre. Raises ValueError for an image with no ink.
    """
    from PIL import Image

    gray = np.asarray(image.convert("L"), dtype=np.float32) / 255
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if np.median(border) > 0.5:
        gray, border = 1 - gray, 1 - border
    gray = np.clip(gray - np.median(border), 0, 1)  # a photo's grey paper becomes black
    if gray.max() < 0.1:
        raise ValueError("no digit found: the image is blank")
    rows, cols = np.nonzero(gray > 0.2 * gray.max())
    crop = gray[rows.min():rows.max() + 1, cols.min():cols.max() + 1] / gray.max()
    height, width = crop.shape
    size = (max(1, round(20 * width / max(height, width))), max(1, round(20 * height / max(height, width))))
    digit = np.asarray(Image.fromarray(np.uint8(crop * 255)).resize(size, Image.LANCZOS), np.float32) / 255
    mass_y, mass_x = np.indices(digit.shape)
    total = digit.sum()
    centre = ((mass_y * digit).sum() / total, (mass_x * digit).sum() / total)
    top, left = (int(np.clip(round(14 - c), 0, 28 - n)) for c, n in zip(centre, digit.shape, strict=True))
    canvas = np.zeros((28, 28), np.float32)
    canvas[top:top + digit.shape[0], left:left + digit.shape[1]] = digit
    return normalize(torch.from_numpy(canvas).unsqueeze(0))


def load_digit(path):
    """mnist_like() of an image file; one-line ValueError for a missing, unreadable or blank file."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise ValueError("no such file")
    try:
        with Image.open(path) as image:
            image.load()
            return mnist_like(image)
    except UnidentifiedImageError:
        raise ValueError("not an image PIL can read (PNG or JPEG expected)") from None
    except OSError as error:
        raise ValueError(f"the image is damaged ({error})") from None


# ----------------------------------------------------------------------------- training


def use_channels_last_pooling(config, device):
    """Whether to swap the model's max-pools for MaxPool2dNHWC: on a CPU, for an NCHW model only."""
    return config.channels_last_pooling and not config.channels_last and torch.device(device).type == "cpu"


class MaxPool2dNHWC(nn.MaxPool2d):
    """nn.MaxPool2d that pools an NCHW batch in channels-last layout and returns it as NCHW.

    Same values and gradients (the same pixel wins each window), but on a CPU PyTorch's NCHW
    max-pool kernel is many times slower than its channels-last one, which is vectorised across
    channels, and the two layout copies cost less than the difference (README, "Performance").
    """

    def forward(self, x):
        if x.is_contiguous(memory_format=torch.channels_last):  # channels-last already, or 1 channel
            return super().forward(x)
        x_nhwc = x.contiguous(memory_format=torch.channels_last)
        y_nhwc = super().forward(x_nhwc)
        if x_nhwc.requires_grad:
            # autograd hands a copy's gradient back in the copy's layout, and mixed layouts would
            # send the backward passes on either side down slow paths; convert them instead
            x_nhwc.register_hook(lambda grad: grad.contiguous())
            y_nhwc.register_hook(lambda grad: grad.contiguous(memory_format=torch.channels_last))
        return y_nhwc.contiguous()


def pool_in_channels_last(model):
    """Replace every nn.MaxPool2d in `model` with an equivalent MaxPool2dNHWC, in place."""
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if type(child) is nn.MaxPool2d and not child.return_indices:
                setattr(parent, name, MaxPool2dNHWC(child.kernel_size, child.stride, child.padding,
                                                    child.dilation, ceil_mode=child.ceil_mode))
    return model


def build_model(config, device):
    model = MODELS[config.model](dropout=config.dropout).to(device)
    if config.channels_last:
        return model.to(memory_format=torch.channels_last)
    return pool_in_channels_last(model) if use_channels_last_pooling(config, device) else model


class WeightEMA(nn.Module):
    """An exponential moving average of a model's weights and BatchNorm statistics, evaluated instead of it.

    What torch.optim.swa_utils.AveragedModel(use_buffers=True) does with an EMA, and with the same
    state_dict keys, but its update never reads a device value on the host: AveragedModel checks its
    step counter on the host twice per step, and each check makes the CPU wait for a GPU's queue.
    """

    def __init__(self, model, decay):
        super().__init__()
        self.module = copy.deepcopy(model)
        self.decay = decay
        device = next(model.parameters()).device
        self.register_buffer("n_averaged", torch.zeros((), dtype=torch.long, device=device))
        self.captured = None  # (CUDA graph, the model whose update it recorded): see capture_cuda_graph

    @torch.no_grad()
    def update_parameters(self, model):
        if self.captured is not None and self.captured[1] is model:
            self.captured[0].replay()  # one launch instead of about ten
        else:
            self._update(model)

    def _update(self, model):
        averaged = list(chain(self.module.parameters(), self.module.buffers()))
        current = list(chain(model.parameters(), model.buffers()))
        floats = [i for i, t in enumerate(averaged) if t.is_floating_point()]
        counters = [i for i, t in enumerate(averaged) if not t.is_floating_point()]  # num_batches_tracked
        # keep 0 at the first update (a copy), then (1 + t) / (10 + t) up to `decay`: the random initial
        # weights are forgotten within a few steps; computed on the device, so nothing waits for it
        n = self.n_averaged
        keep = torch.where(n == 0, 0.0, torch.clamp((1 + n) / (10 + n), max=self.decay))
        torch._foreach_mul_([averaged[i] for i in floats], keep)
        torch._foreach_add_([averaged[i] for i in floats], torch._foreach_mul([current[i] for i in floats], 1 - keep))
        torch._foreach_copy_([averaged[i] for i in counters], [current[i] for i in counters])
        self.n_averaged += 1

    @torch.no_grad()
    def capture_cuda_graph(self, model):
        """Record the update from `model` as a CUDA graph, which later updates from it replay."""
        state = copy.deepcopy(self.state_dict())
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            self._update(model)  # a warm-up outside the graph, as capture requires; undone below
        torch.cuda.current_stream().wait_stream(side)
        self.load_state_dict(state)
        self.captured = (torch.cuda.CUDAGraph(), model)  # a tuple, so that `model` is no submodule of this
        with torch.cuda.graph(self.captured[0]):
            self._update(model)


def build_ema(model, config):
    """The moving average of the weights (BatchNorm statistics included) that is evaluated, or None."""
    return WeightEMA(model, config.ema_decay) if config.ema_decay else None


def capture_cuda_graphs(model, batch_size, bf16=False, ema=None):
    """Make `model`'s training forward and backward replay as CUDA graphs for batches of `batch_size`,
    and the weight average's update too.

    torch.cuda.make_graphed_callables captures each pass once; a replay then launches all of its kernels
    at once. Batches of another size (an epoch's last) and eval mode run the ordinary forward.
    release_cuda_graphs(model) undoes this.
    """
    # The capture warms up on a side stream, and the first real backward then warns once that the
    # parameters' gradient accumulators were made there: expected, and harmless here.
    warnings.filterwarnings("ignore", message="The AccumulateGrad node's stream does not match")
    eager_forward = model.forward
    state = copy.deepcopy(model.state_dict())  # the capture's warm-up passes update BatchNorm's statistics
    sample = torch.randn(batch_size, 1, 28, 28, device=next(model.parameters()).device)
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16, cache_enabled=False):
        torch.cuda.make_graphed_callables(model, (sample,))
    model.load_state_dict(state)
    graphed_forward = model.forward
    model.forward = lambda images: (graphed_forward if len(images) == batch_size else eager_forward)(images)
    if ema is not None:
        ema.capture_cuda_graph(model)


def release_cuda_graphs(model):
    """Back to the class's own forward, so that copies and later uses see an ordinary module."""
    vars(model).pop("forward", None)


def build_optimizer(model, config, steps_per_epoch):
    # on CUDA one fused kernel per step instead of several multi-tensor ones: a GPU step here is launch-bound
    fused = True if next(model.parameters()).is_cuda else None
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                nesterov=True, weight_decay=config.weight_decay, fused=fused)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=config.epochs * steps_per_epoch, pct_start=config.pct_start)
    return optimizer, scheduler


def _batches(loader, max_batches):
    total = min(len(loader), max_batches) if max_batches else len(loader)
    return islice(loader, total), total


def train_one_epoch(model, loader, optimizer, scheduler, *, device, bf16=False, label_smoothing=0.0,
                    channels_last=False, ema=None, max_batches=0, epoch=1, progress=True, log_every=20):
    """One pass over the training loader. Returns {"loss", "acc"} (acc in percent).

    `ema`, a WeightEMA, is updated after every step.
    Sums stay on the device and are read every `log_every` batches, not every step: each read
    makes a GPU wait for its queue to drain.
    """
    model.train()
    batches, total = _batches(loader, max_batches)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    first_bad = torch.full((), -1, device=device)
    seen = 0
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    bar = tqdm(batches, total=total, desc=f"epoch {epoch}", leave=False, disable=not progress)
    for batch, (images, labels) in enumerate(bar, 1):
        images = images.to(device, non_blocking=True, memory_format=memory_format)
        labels = labels.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            log_probs = model(images)
        # log_softmax is idempotent, so cross_entropy on log-probabilities is the NLL, smoothed
        loss = F.cross_entropy(log_probs.float(), labels, label_smoothing=label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if ema is not None:
            ema.update_parameters(model)
        loss_sum += loss.detach() * len(labels)
        correct += (log_probs.argmax(1) == labels).sum()
        first_bad = torch.where((first_bad < 0) & ~torch.isfinite(loss), batch, first_bad)
        seen += len(labels)
        if batch % log_every == 0 or batch == total:
            if first_bad.item() >= 0:
                raise TrainingDiverged(
                    f"loss became {loss_sum.item()} in epoch {epoch}, batch {first_bad.item()}: "
                    f"training diverged; try a lower learning rate (--lr).")
            bar.set_postfix(loss=f"{loss_sum.item() / seen:.4f}", acc=f"{100 * correct.item() / seen:.2f}")
    return {"loss": loss_sum.item() / seen, "acc": 100 * correct.item() / seen}


@torch.inference_mode()
def evaluate(model, loader, *, device, max_batches=0):
    """Mean NLL loss and accuracy (percent) over the loader, in fp32."""
    model.eval()
    batches, _ = _batches(loader, max_batches)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    seen = 0
    for images, labels in batches:
        images, labels = images.to(device), labels.to(device)
        log_probs = model(images)
        loss_sum += F.nll_loss(log_probs, labels, reduction="sum")
        correct += (log_probs.argmax(1) == labels).sum()
        seen += len(labels)
    return {"loss": loss_sum.item() / seen, "acc": 100 * correct.item() / seen}


def summarize(history, target=TARGET_ACC):
    """Final and best test accuracy, the best epoch, and the first epoch at or above the target."""
    accs = [record["test_acc"] for record in history]
    best = max(range(len(accs)), key=accs.__getitem__)
    first = next((record["epoch"] for record in history if record["test_acc"] >= target), None)
    return {"final_test_acc": accs[-1], "best_test_acc": accs[best], "best_epoch": history[best]["epoch"],
            "first_epoch_at_target": first, "target": target}


EPOCH_HEADER = "epoch | train loss  train acc | test loss  test acc |     lr    | seconds"


def format_epoch(record):
    return (f"{record['epoch']:5d} | {record['train_loss']:10.4f} {record['train_acc']:9.2f}% | "
            f"{record['test_loss']:9.4f} {record['test_acc']:8.2f}% | {record['lr']:.3e} | "
            f"{record['seconds']:7.1f}")


def atomic_write(path, write):
    """Write through a temporary file and rename it into place: a crash never leaves half a file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def save_json(path, data):
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2) + "\n"))


def run_record(config, model, device, history):
    """Everything metrics.json holds: the config, the model's size, where it ran, and the history."""
    return {"config": config.to_dict(), "parameters": count_parameters(model), "device": str(device),
            "machine": machine_name(device),
            "torch": torch.__version__, "eval_set": "validation" if config.val_split else "test",
            "summary": summarize(history) if history else None, "history": history}


def load_torch_file(path, device="cpu"):
    """torch.load with weights_only=True, and a one-line CheckpointError for anything that is not ours."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as error:  # pickle, zip and EOF errors all mean the same thing here
        raise CheckpointError(f"{path} is not an S6 checkpoint or model.pt ({type(error).__name__})") from None


def load_weights(model, path, device="cpu"):
    """Load a model.pt state_dict (or a checkpoint's model) into `model`, with a clear error on mismatch."""
    state = load_torch_file(path, device)
    state = state.get("model", state) if isinstance(state, dict) else state
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as error:
        first_line = str(error).strip().splitlines()[0]
        raise CheckpointError(f"{path} does not hold weights for {type(model).__name__}: {first_line}") from None
    return model


def _restore(path, model, optimizer, scheduler, ema):
    state = load_torch_file(path)
    try:
        model.load_state_dict(state["model"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        return state["epoch"], state["history"]
    except (KeyError, TypeError, RuntimeError, ValueError) as error:
        raise CheckpointError(f"{path} is not a checkpoint of this run ({type(error).__name__}: {error})") from None


def load_config(path):
    """The TrainConfig saved in a checkpoint."""
    state = load_torch_file(path)
    if not isinstance(state, dict) or "config" not in state:
        raise CheckpointError(f"{path} holds weights only, not a checkpoint of a run: it cannot be resumed")
    return TrainConfig(**state["config"])


def fit(config, out_dir=None, resume=False, progress=True, log=print):
    """Train `config.model` as the config says. Returns (model, history): one record per epoch.

    The returned model is the one evaluated: the weight average when config.ema_decay is set.
    With `out_dir`, each epoch ends by writing checkpoint.pt and metrics.json there (atomically), and
    the run ends with model.pt; `resume=True` continues from out_dir/checkpoint.pt. Every epoch
    reseeds torch from (seed, epoch), so shuffling, augmentation and dropout of epoch k do not
    depend on how the run got there: a resumed run repeats an uninterrupted one exactly.
    """
    device = get_device(config.device)
    seed_everything(config.seed)
    model = build_model(config, device)
    train_loader, eval_loader = make_loaders(config, device)
    steps_per_epoch = min(len(train_loader), config.max_batches or len(train_loader))
    optimizer, scheduler = build_optimizer(model, config, steps_per_epoch)
    ema = build_ema(model, config)
    bf16 = use_bf16(config.precision, device)
    out_dir = Path(out_dir) if out_dir else None
    start, history = 1, []
    if resume:
        done, history = _restore(out_dir / "checkpoint.pt", model, optimizer, scheduler, ema)
        start = done + 1
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
    graphs = use_cuda_graphs(config, device)
    if graphs:
        capture_cuda_graphs(model, config.batch_size, bf16, ema)

    log(f"config: {json.dumps(config.to_dict())}")
    log(f"model {config.model}: {count_parameters(model):,} parameters | device {device} | "
        f"{'bf16 autocast' if bf16 else 'fp32'} | pipeline {config.pipeline}" + (" | CUDA graphs" if graphs else "")
        + (" | channels-last max-pooling" if use_channels_last_pooling(config, device) else "")
        + (f" | resuming after epoch {start - 1}" if resume else ""))
    log(EPOCH_HEADER)
    for epoch in range(start, config.epochs + 1):
        torch.manual_seed(config.seed * 10_000 + epoch)
        started = time.perf_counter()
        lr = scheduler.get_last_lr()[0]
        train = train_one_epoch(model, train_loader, optimizer, scheduler, device=device, bf16=bf16,
                                label_smoothing=config.label_smoothing, channels_last=config.channels_last,
                                ema=ema, max_batches=config.max_batches, epoch=epoch, progress=progress)
        test = evaluate(evaluated(model, ema), eval_loader, device=device, max_batches=config.max_batches)
        history.append({"epoch": epoch, "train_loss": train["loss"], "train_acc": train["acc"],
                        "test_loss": test["loss"], "test_acc": test["acc"], "lr": lr,
                        "seconds": time.perf_counter() - started})
        log(format_epoch(history[-1]))
        if out_dir:
            checkpoint = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                          "scheduler": scheduler.state_dict(), "epoch": epoch, "history": history,
                          "config": config.to_dict(), "ema": ema.state_dict() if ema else None}
            atomic_write(out_dir / "checkpoint.pt", partial(torch.save, checkpoint))
            save_json(out_dir / "metrics.json", run_record(config, model, device, history))
    release_cuda_graphs(model)
    model = evaluated(model, ema)
    if out_dir:
        atomic_write(out_dir / "model.pt", partial(torch.save, model.state_dict()))
    return model, history


def evaluated(model, ema):
    """The network whose test accuracy is reported: the moving average where there is one."""
    return ema.module if ema is not None else model


# ----------------------------------------------------------------------------- inspection


def model_summary(model, input_size=(1, 28, 28)):
    """torchsummary's table as a string, from an eval-mode CPU copy: `model` itself is left untouched."""
    from torchsummary import summary

    probe = copy.deepcopy(model).cpu().eval()
    with contextlib.redirect_stdout(io.StringIO()) as text:
        summary(probe, input_size, device="cpu")
    return text.getvalue()


@torch.inference_mode()
def predict(model, loader, *, device):
    """(images, labels, probabilities) for a whole loader, on the CPU; images as the model saw them."""
    model.eval()
    images, labels, probs = [], [], []
    for x, y in loader:
        images.append(x.cpu())
        labels.append(y.cpu())
        probs.append(model(x.to(device)).exp().float().cpu())
    return torch.cat(images), torch.cat(labels), torch.cat(probs)


def confusion_matrix(labels, predictions, classes=10):
    """(classes, classes) counts: row = true label, column = prediction."""
    return torch.bincount(labels * classes + predictions, minlength=classes * classes).view(classes, classes)


def markdown_table(rows, columns=None):
    """A GitHub markdown table from a list of dicts; columns default to the first row's keys."""
    columns = columns or list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- plots


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


def plot_history(history, target=TARGET_ACC):
    """Train and test loss, and train and test accuracy with a line at the target, per epoch."""
    epochs = [r["epoch"] for r in history]
    fig = Figure(figsize=(11, 4), layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)
    for split in ("train", "test"):
        loss_ax.plot(epochs, [r[f"{split}_loss"] for r in history], marker="o", ms=3, label=split)
        acc_ax.plot(epochs, [r[f"{split}_acc"] for r in history], marker="o", ms=3, label=split)
    acc_ax.axhline(target, color="gray", linestyle="--", label=f"{target}%")
    acc_ax.set_ylim(max(90.0, min(r["test_acc"] for r in history) - 0.5), 100)
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


def plot_test_accuracy(curves, target=TARGET_ACC, title="test accuracy"):
    """Test accuracy per epoch, one line per entry of `curves` ({label: history})."""
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.subplots()
    for label, history in curves.items():
        ax.plot([r["epoch"] for r in history], [r["test_acc"] for r in history], marker="o", ms=3, label=label)
    ax.axhline(target, color="gray", linestyle="--", label=f"{target}%")
    low = min(r["test_acc"] for history in curves.values() for r in history)
    ax.set(title=title, xlabel="epoch", ylabel="test accuracy (%)", ylim=(max(low, 97.0) - 0.2, 100))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig
