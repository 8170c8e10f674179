"""MNIST: the raw files, the two loader paths (fast, torchvision), and batch augmentation."""

import contextlib
import hashlib
import io
import math
import warnings
from functools import cache
from itertools import islice
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset

from s6.files import cannot_write_in, reason

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
# The four raw files torchvision reads: size, IDX magic number (0x801 labels, 0x803 images), SHA-256.
MNIST_FILES = {
    "train-images-idx3-ubyte": (47_040_016, 0x803,
                                "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    "train-labels-idx1-ubyte": (60_008, 0x801, "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    "t10k-images-idx3-ubyte": (7_840_016, 0x803, "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    "t10k-labels-idx1-ubyte": (10_008, 0x801, "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
}
LABEL_HEADER_BYTES = 8


class MnistDataError(RuntimeError):
    """The MNIST files are missing, truncated or corrupt; the message says what to do."""


def _missing_message(raw, error):
    """One line: why MNIST's files are not in `raw`, which they are, and how to get them there. Where nothing can be
    written there, that is the cause, whether the .gz files are there to unpack or are to be downloaded; where
    writing failed otherwise (`error`, an OSError: a full disk), so is that; else no download could be made."""
    missing = [name for name in MNIST_FILES if not (raw / name).exists()]
    packed = [name for name in missing if (raw / f"{name}.gz").exists()]
    unwritable = cannot_write_in(raw)
    if unwritable:
        way = "unpack the .gz files there with gunzip" if packed else f"put {', '.join(missing)} there"
        return (f"MNIST is not unpacked in {raw}, and S6 cannot write there to unpack or download it "
                f"({unwritable}): {way}, or give a --data-dir that S6 may write to")
    if isinstance(error, OSError):
        return (f"MNIST could not be unpacked or downloaded into {raw} ({reason(error)}): free some space there, or "
                f"put {', '.join(missing)} there unpacked")
    return (f"MNIST is not in {raw} and could not be downloaded: put {', '.join(missing)} there (unpacked "
            f"with gunzip from an MNIST mirror's .gz files), or run once with internet, where torchvision "
            f"downloads them")


@cache  # a run reads the same files for its training and test sets
def _sha256(path, size, modified):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _damage(path, size, magic, sha256):
    """What is wrong with one present MNIST file, or None."""
    with path.open("rb") as f:
        header = int.from_bytes(f.read(4), "big")
    actual = path.stat().st_size
    if actual != size or header != magic:
        return f"is truncated or corrupt ({actual:,} bytes, expected {size:,})"
    if _sha256(str(path), actual, path.stat().st_mtime_ns) == sha256:
        return None
    if magic == 0x801:
        labels = path.read_bytes()[LABEL_HEADER_BYTES:]
        bad = next((i for i, label in enumerate(labels) if label > 9), None)
        if bad is not None:
            return f"is corrupt: label {bad} is {labels[bad]}, not a digit 0-9"
    return "is corrupt: its content differs from MNIST's (SHA-256)"


def check_mnist_files(data_dir):
    """Raise MnistDataError naming any raw file that is present but unreadable, truncated or altered."""
    raw = Path(data_dir) / "MNIST" / "raw"
    for name, (size, magic, sha256) in MNIST_FILES.items():
        path = raw / name
        if not path.exists():
            continue
        try:
            damage = _damage(path, size, magic, sha256)
        except OSError as error:
            raise MnistDataError(f"{path} cannot be read ({error.strerror}): check its permissions") from None
        if damage:
            raise MnistDataError(
                f"{path} {damage}. Delete it and re-create it: gunzip {name}.gz from an MNIST mirror, or let "
                f"torchvision download it again on a machine with internet.")


def torchvision():
    """torchvision, imported where first needed. It imports torch.onnx, whose onnxscript 0.1 (beside torch 2.3)
    warns of its own deprecations, nothing a user of S6 can act on: those warnings are not shown."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module="onnxscript")
        import torchvision
    return torchvision


def mnist_dataset(data_dir="data", train=True, transform=None):
    """torchvision's MNIST, downloaded when online; a MnistDataError instead of a network traceback."""
    datasets = torchvision().datasets

    check_mnist_files(data_dir)
    raw = Path(data_dir) / "MNIST" / "raw"
    have_all = all((raw / name).exists() for name in MNIST_FILES)
    try:
        # torchvision prints each failed mirror; the error below says all that matters
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return datasets.MNIST(data_dir, train=train, download=not have_all, transform=transform)
    except (OSError, RuntimeError) as error:
        raise MnistDataError(_missing_message(raw, error)) from error


def split_indices(val_split):
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


def augment_settings(config):
    """The ranges of the random affine, or None where all are 0: then no image is resampled (grid_sample) at
    all, and no random numbers are drawn for it."""
    settings = dict(degrees=config.rotate_degrees, translate=config.translate, scale=config.scale)
    return settings if any(settings.values()) else None


class TensorLoader:
    """Batches cut from whole-dataset tensors that already live on the training device.

    Replaces DataLoader + per-sample PIL transforms: a per-epoch permutation, a gather, one batched
    augmentation and a normalisation, all on the device. Randomness comes from torch's global RNG,
    which training reseeds every epoch.
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


class FirstBatches:
    """The first `count` batches of every pass over `loader`: the short epochs of a smoke run."""

    def __init__(self, loader, count):
        self.loader, self.count = loader, count

    def __len__(self):
        return min(len(self.loader), self.count)

    def __iter__(self):
        return islice(self.loader, len(self))


def fast_loaders(config, device, eval_batch_size=1000):
    """(train, eval) TensorLoaders; eval is the test set, or the validation split when val_split > 0."""
    images, labels = mnist_tensors(config.data_dir, train=True, device=device)
    if config.val_split:
        train_index, val_index = (index.to(device) for index in split_indices(config.val_split))
        eval_images, eval_labels = images[val_index], labels[val_index]
        images, labels = images[train_index], labels[train_index]
    else:
        eval_images, eval_labels = mnist_tensors(config.data_dir, train=False, device=device)
    train = TensorLoader(images, labels, config.batch_size, shuffle=True, augment=augment_settings(config))
    return train, TensorLoader(eval_images, eval_labels, eval_batch_size)


def torchvision_transforms(config=None):
    """Per-sample PIL transforms, the conventional pipeline; with a config, its augmentation first."""
    transforms = torchvision().transforms

    steps = [transforms.ToTensor(), transforms.Normalize((MNIST_MEAN,), (MNIST_STD,))]
    if config is not None:
        steps.insert(0, transforms.RandomAffine(config.rotate_degrees, translate=(config.translate,) * 2,
                                                scale=(1 - config.scale, 1 + config.scale)))
    return transforms.Compose(steps)


def torchvision_loaders(config, device, eval_batch_size=1000):
    """(train, eval) DataLoaders over torchvision's MNIST: the reference pipeline."""
    train_set = mnist_dataset(config.data_dir, train=True, transform=torchvision_transforms(config))
    if config.val_split:
        train_index, val_index = split_indices(config.val_split)
        eval_set = Subset(mnist_dataset(config.data_dir, train=True, transform=torchvision_transforms()),
                          val_index.tolist())
        train_set = Subset(train_set, train_index.tolist())
    else:
        eval_set = mnist_dataset(config.data_dir, train=False, transform=torchvision_transforms())
    pin = torch.device(device).type == "cuda"
    # on a 2-core CPU, workers compete with the training step; on a GPU machine they live as long as the loader,
    # not one pass, as a training run's do
    workers = dict(num_workers=2, persistent_workers=True) if pin else {}
    train = DataLoader(train_set, config.batch_size, shuffle=True, pin_memory=pin, **workers)
    return train, DataLoader(eval_set, eval_batch_size, pin_memory=pin, **workers)


def make_loaders(config, device):
    """(train, eval) loaders of the config's pipeline, cut to `max_batches` per epoch when it is set."""
    loaders = (fast_loaders if config.pipeline == "fast" else torchvision_loaders)(config, device)
    if config.max_batches:
        return tuple(FirstBatches(loader, config.max_batches) for loader in loaders)
    return loaders
