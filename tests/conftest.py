import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from s6_utils import TrainConfig  # noqa: E402

# The real MNIST files: `../shared/mnist/install data` offline, torchvision's download online.
DATA_DIR = os.environ.get("S6_DATA_DIR", str(ROOT / "data"))


@pytest.fixture
def small_config():
    """A config for runs of a few batches on the CPU; keyword arguments override fields."""
    def make(**overrides):
        settings = dict(epochs=2, max_batches=3, batch_size=32, data_dir=DATA_DIR, device="cpu")
        return TrainConfig(**{**settings, **overrides})
    return make
