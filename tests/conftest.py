"""Shared set-up: paths, small configs, running the scripts as a user does, and one short run for many tests."""

import contextlib
import importlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from s6_utils import recipe  # noqa: E402

# The real MNIST files: `../shared/mnist/install data` offline, torchvision's download online.
DATA_DIR = os.environ.get("S6_DATA_DIR", str(ROOT / "data"))
WEIGHTS = ROOT / "results" / "net-seed1" / "model.pt"
# s6_train.py flags for a run of a few batches on the CPU: the run of `small_config()`. Each epoch evaluates
# max-batches batches of 1,000 test images, most of such a run's time, so they are few.
SMALL = ["--epochs", "2", "--max-batches", "3", "--batch-size", "32", "--device", "cpu",
         "--data-dir", DATA_DIR, "--no-progress"]


def quiet(*_):
    """A `log` for fit that prints nothing."""


def stop_after_epoch(epoch):
    """A `log` for fit that stops the run, as Ctrl-C does, once `epoch` is saved: when it logs the next one."""
    def log(line):
        if line.startswith(f"{epoch + 1:5d} |"):
            raise KeyboardInterrupt
    return log


class LikeNet(nn.Module):
    """Net's layers, written out here as a user would write a network of their own."""

    def __init__(self, dropout=0.05):
        super().__init__()

        def block(c_in, c_out, p=0.0):
            return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
                                 *([nn.Dropout(p)] if p else []))

        self.features = nn.Sequential(block(1, 8), block(8, 16), nn.MaxPool2d(2), block(16, 20), block(20, 20),
                                      nn.MaxPool2d(2), block(20, 24, dropout), block(24, 32))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(32, 10, 1), nn.Flatten())

    def forward(self, x):
        return self.head(self.features(x))


def without_seconds(history):
    return [{k: v for k, v in record.items() if k != "seconds"} for record in history]


def run_script(script, *args, timeout=300, **kwargs):
    """Run one of the scripts in a subprocess, as a user would from the repository's root: for the tests of
    what only a process shows (its exit code, a signal, all it prints); the others use `run_in_process`."""
    return subprocess.run([sys.executable, str(ROOT / script), *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, **kwargs)


@pytest.fixture
def run_in_process(capsys, monkeypatch, tmp_path_factory):
    """`run_script` without a new process and its seconds of torch start-up: the script's main(argv) as its
    `__main__` runs it ("s6_train.py", or "tools/bench.py" for the module tools.bench), with one-line errors and
    exit code 1 from run_main, argparse's exit code 2, its stdout and stderr, in a CompletedProcess. It runs in an
    empty folder, so that a default path writes nothing here."""
    from s6.cli import run_main

    def run(script, *args):
        module = importlib.import_module(Path(script).with_suffix("").as_posix().replace("/", "."))  # tools.bench
        argv = [str(arg) for arg in args]
        monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
        capsys.readouterr()  # what the test printed before
        try:
            code = run_main(module.main, argv)
        except SystemExit as exit:
            code = exit.code
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess([script, *argv], code, out, err)
    return run


def assert_one_line_error(result):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def as_photo(digit, size=(240, 300)):
    """An MNIST digit (28x28 uint8 array) as a user might photograph it: dark ink on light paper, large,
    in colour, off-centre."""
    from PIL import Image

    paper = Image.new("RGB", size, (235, 230, 220))
    ink = Image.fromarray(255 - digit).convert("RGB").resize((150, 150))
    paper.paste(ink, (20, 90))
    return paper


@pytest.fixture
def read_only():
    """make(folder): `folder`, made if missing, then read-only until the test ends: a read-only bind mount where the
    tests run as root (root writes whatever the permission bits say), else its permission bits."""
    mounted, chmodded = [], []

    def make(folder):
        folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            folder.chmod(0o555)
            chmodded.append(folder)
            return folder
        if subprocess.run(["mount", "--bind", folder, folder], capture_output=True).returncode:
            pytest.skip("as root, a read-only folder needs a bind mount, which this machine does not allow")
        mounted.append(folder)
        if subprocess.run(["mount", "-o", "remount,ro,bind", folder], capture_output=True).returncode:
            pytest.skip("as root, a read-only folder needs a read-only bind mount, which this machine does not allow")
        return folder

    yield make
    for folder in mounted:
        subprocess.run(["umount", folder], check=True)
    for folder in chmodded:
        folder.chmod(0o755)


def file_size_limit(limit):
    """A preexec_fn for a subprocess whose files cannot grow past `limit` bytes, as on a disk that is full."""
    import resource

    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


@pytest.fixture(scope="session")
def model():
    """The committed Net (results/net-seed1/model.pt), in eval mode, for the tests that read digits with it."""
    from s6.checkpoints import load_weights
    from s6_model import Net

    return load_weights(Net(), WEIGHTS).eval()


@pytest.fixture(scope="session")
def features():
    """The committed DigitFeatures of the committed Net."""
    from s6.reading import features_beside

    return features_beside(WEIGHTS)


@pytest.fixture(scope="session")
def mnist_test():
    """The MNIST test set as (uint8 images (N, 28, 28), labels (N,))."""
    from s6.data import mnist_dataset

    dataset = mnist_dataset(DATA_DIR, train=False)
    return dataset.data, dataset.targets


@pytest.fixture(scope="session")
def test_digits(mnist_test):
    """The first 20 MNIST test digits, as (uint8 arrays, labels)."""
    images, labels = mnist_test
    return images[:20].numpy(), labels[:20].tolist()


@pytest.fixture
def offline(monkeypatch):
    """No MNIST download: torchvision's fails as it does without a network."""
    from torchvision import datasets

    def no_network(self):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")
    monkeypatch.setattr(datasets.MNIST, "download", no_network)


def small(recipe_name="default", model="net", **overrides):
    """A config for runs of a few batches on the CPU, SMALL's: `model`'s recipe `recipe_name` (s6.config.recipe)
    with those settings, and the keyword arguments, on top."""
    settings = dict(epochs=2, max_batches=3, batch_size=32, data_dir=DATA_DIR, device="cpu")
    return recipe(recipe_name, model, **{**settings, **overrides})


@pytest.fixture
def small_config():
    """`small`, the config for runs of a few batches on the CPU; keyword arguments override fields."""
    return small


@pytest.fixture(scope="session")
def small_run():
    """`fit(small())`, run once for the tests that read it: (model, history, the lines it logged)."""
    from s6.training import fit

    lines = []
    model, history = fit(small(), progress=False, log=lines.append)
    return model, history, lines


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
    """A folder holding a finished `s6_train.py` run of two short epochs; copy it before changing it."""
    import s6_train

    out = tmp_path_factory.mktemp("finished") / "run"
    with contextlib.redirect_stdout(io.StringIO()):
        assert s6_train.main([*SMALL, "--out", str(out)]) == 0
    return out
