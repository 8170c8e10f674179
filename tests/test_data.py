"""s6/data.py: MNIST is read right, the fast path equals torchvision's, augmentation behaves, bad files are named."""

import shutil
from pathlib import Path

import pytest
import torch
from conftest import DATA_DIR, WEIGHTS

from s6.checkpoints import load_weights
from s6.config import TrainConfig
from s6.data import (
    MNIST_FILES,
    MnistDataError,
    fast_loaders,
    make_loaders,
    mnist_dataset,
    mnist_tensors,
    normalize,
    random_affine,
    to_unit_range,
    torchvision_loaders,
)
from s6_model import Net

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def loaders():
    config = TrainConfig(data_dir=DATA_DIR, batch_size=256)
    return fast_loaders(config, CPU), torchvision_loaders(config, CPU)


def test_mnist_has_60000_training_and_10000_test_images_of_28x28():
    assert mnist_dataset(DATA_DIR, train=True).data.shape == (60_000, 28, 28)
    assert mnist_dataset(DATA_DIR, train=False).data.shape == (10_000, 28, 28)


def test_test_images_are_normalised_to_mean_0_and_std_1(loaders):
    (_, fast_test), _ = loaders
    images = torch.cat([x for x, _ in fast_test])
    assert images.shape == (10_000, 1, 28, 28)
    assert abs(images.mean().item()) < 0.02
    assert abs(images.std().item() - 1) < 0.02


def test_fast_path_without_augmentation_equals_torchvision_path(loaders):
    (_, fast_test), (_, torchvision_test) = loaders
    for (fast_x, fast_y), (ref_x, ref_y) in zip(fast_test, torchvision_test, strict=True):
        assert torch.equal(fast_y, ref_y)
        assert torch.allclose(fast_x, ref_x, atol=1e-6)


def test_test_loader_does_not_shuffle(loaders):
    (_, fast_test), _ = loaders
    first = torch.cat([y for _, y in fast_test])
    second = torch.cat([y for _, y in fast_test])
    assert torch.equal(first, second)
    assert torch.equal(first, mnist_dataset(DATA_DIR, train=False).targets)


def test_training_loader_reshuffles_every_epoch(loaders):
    (fast_train, _), _ = loaders
    first, second = next(iter(fast_train))[1], next(iter(fast_train))[1]
    assert not torch.equal(first, second)


@pytest.mark.parametrize("pipeline", ["fast", "torchvision"])
def test_validation_split_holds_out_training_images_that_are_not_trained_on(pipeline):
    train, val = make_loaders(TrainConfig(data_dir=DATA_DIR, val_split=10_000, pipeline=pipeline), CPU)
    if pipeline == "fast":
        trained, held_out = train.images, val.images
    else:  # Subsets of the training set: the images behind their indices
        images = mnist_dataset(DATA_DIR, train=True).data.unsqueeze(1)
        trained, held_out = images[train.dataset.indices], images[val.dataset.indices]
        assert val.dataset.dataset.train and train.dataset.dataset.train
    assert len(trained) == 50_000 and len(held_out) == 10_000
    # each image as one number, to compare sets of images: MNIST's training images are all different
    weights = torch.randint(1, 2**31, (28 * 28,), generator=torch.Generator().manual_seed(0))
    fingerprints = {name: set((images.flatten(1).long() @ weights).tolist())
                    for name, images in [("trained", trained), ("held out", held_out),
                                         ("training set", mnist_dataset(DATA_DIR, train=True).data.unsqueeze(1)),
                                         ("test set", mnist_dataset(DATA_DIR, train=False).data.unsqueeze(1))]}
    assert len(fingerprints["training set"]) == 60_000
    assert fingerprints["held out"] <= fingerprints["training set"]
    assert not fingerprints["held out"] & fingerprints["trained"]
    assert not fingerprints["held out"] & fingerprints["test set"]


@pytest.mark.parametrize("pipeline", ["fast", "torchvision"])
def test_max_batches_cuts_every_epoch_of_both_loaders(pipeline):
    train, test = make_loaders(TrainConfig(data_dir=DATA_DIR, pipeline=pipeline, max_batches=3), CPU)
    assert len(train) == len(test) == 3
    assert [len(list(loader)) for loader in (train, train, test)] == [3, 3, 3]


def test_augmentation_keeps_shapes_and_labels_and_differs_between_images(loaders):
    (fast_train, _), _ = loaders
    torch.manual_seed(0)
    images, labels = next(iter(fast_train))
    assert images.shape == (256, 1, 28, 28) and labels.shape == (256,)
    same = to_unit_range(fast_train.images[[0] * 8])
    moved = random_affine(same, degrees=10, translate=0.1, scale=0.1)
    assert moved.shape == same.shape
    differences = [(moved[0] - moved[i]).abs().sum().item() for i in range(1, 8)]
    assert min(differences) > 1, "each image of a batch gets its own rotation and shift"


def test_augmentation_is_reproducible_under_a_seed(loaders):
    (fast_train, _), _ = loaders
    batch = to_unit_range(fast_train.images[:64])
    torch.manual_seed(5)
    first = random_affine(batch, degrees=10, translate=0.1, scale=0.1)
    torch.manual_seed(5)
    assert torch.equal(first, random_affine(batch, degrees=10, translate=0.1, scale=0.1))


def test_zero_augmentation_is_the_identity(loaders):
    (fast_train, _), _ = loaders
    batch = to_unit_range(fast_train.images[:16])
    assert torch.allclose(random_affine(batch, degrees=0, translate=0, scale=0), batch, atol=1e-5)


def test_augmented_test_digits_stay_recognisable_to_the_trained_model():
    model = load_weights(Net(), WEIGHTS).eval()
    images, labels = mnist_tensors(DATA_DIR, train=False, device=CPU)
    torch.manual_seed(0)
    augmented = normalize(random_affine(to_unit_range(images[:2000]), degrees=10, translate=0.1, scale=0.1))
    with torch.inference_mode():
        accuracy = (model(augmented).argmax(1) == labels[:2000]).float().mean().item()
    assert accuracy > 0.98


@pytest.fixture
def data_copy(tmp_path):
    """A copy of the four MNIST files in tmp_path/MNIST/raw, to damage."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in MNIST_FILES:
        shutil.copy(Path(DATA_DIR) / "MNIST" / "raw" / name, raw / name)
    return raw


def test_missing_data_is_one_line_naming_the_folder_and_the_files_it_lacks(tmp_path, offline):
    raw = tmp_path / "MNIST" / "raw"
    with pytest.raises(MnistDataError) as error:
        mnist_dataset(tmp_path, train=True)
    message = str(error.value)
    assert "\n" not in message and f"MNIST is not in {raw}" in message
    assert all(name in message for name in MNIST_FILES)
    raw.mkdir(parents=True)
    shutil.copy(Path(DATA_DIR) / "MNIST" / "raw" / "t10k-labels-idx1-ubyte", raw)
    with pytest.raises(MnistDataError) as error:
        mnist_dataset(tmp_path, train=False)
    assert "t10k-labels-idx1-ubyte" not in str(error.value) and "t10k-images-idx3-ubyte" in str(error.value)


def test_truncated_file_is_named_with_how_to_recreate_it(data_copy, offline):
    broken = data_copy / "t10k-images-idx3-ubyte"
    broken.write_bytes(broken.read_bytes()[:1000])
    with pytest.raises(MnistDataError, match="t10k-images-idx3-ubyte is truncated or corrupt.*re-create"):
        mnist_dataset(data_copy.parent.parent, train=False)


def test_a_label_outside_0_to_9_is_named_before_training(data_copy, offline):
    labels = data_copy / "t10k-labels-idx1-ubyte"
    content = bytearray(labels.read_bytes())
    content[8 + 5] = 12  # the sixth test label
    labels.write_bytes(bytes(content))
    with pytest.raises(MnistDataError, match="t10k-labels-idx1-ubyte is corrupt: label 5 is 12, not a digit"):
        mnist_dataset(data_copy.parent.parent, train=False)


def test_a_changed_image_byte_fails_the_checksum(data_copy, offline):
    images = data_copy / "train-images-idx3-ubyte"
    content = bytearray(images.read_bytes())
    content[1000] ^= 0xFF
    images.write_bytes(bytes(content))
    with pytest.raises(MnistDataError, match="train-images-idx3-ubyte is corrupt: its content differs"):
        mnist_dataset(data_copy.parent.parent, train=True)


def test_an_unreadable_file_is_named(data_copy, offline):
    unreadable = data_copy / "train-labels-idx1-ubyte"
    unreadable.unlink()
    unreadable.mkdir()  # unreadable as a file even for root, unlike a chmod
    with pytest.raises(MnistDataError, match="train-labels-idx1-ubyte cannot be read"):
        mnist_dataset(data_copy.parent.parent, train=True)


def test_a_gpu_machines_loader_workers_live_as_long_as_the_loader_not_one_pass():
    config = TrainConfig(data_dir=DATA_DIR, pipeline="torchvision")
    for loader in torchvision_loaders(config, torch.device("cuda")):  # built only: no GPU is needed for that
        assert loader.num_workers == 2 and loader.persistent_workers
    assert all(loader.num_workers == 0 for loader in torchvision_loaders(config, CPU))
