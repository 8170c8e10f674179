"""s6/training.py: the loop learns, repeats under a seed, stops on divergence; the weight average is right."""

import dataclasses
import json
import math
import random
import re
import shutil
import time
from itertools import chain

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import DATA_DIR, LikeNet, quiet, stop_after_epoch, without_seconds
from torch import nn
from torch.optim.swa_utils import AveragedModel

from s6.checkpoints import CheckpointError, load_weights
from s6.config import TrainConfig, UserError, seed_everything
from s6.data import fast_loaders, make_loaders
from s6.results import summarize
from s6.runs import MADE_FROM_WEIGHTS
from s6.training import (
    TrainingDiverged,
    build_ema,
    build_optimizer,
    evaluate,
    evaluated,
    fit,
    set_up,
    train_one_epoch,
)
from s6_model import MODELS, Net

RECORD_KEYS = {"epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds"}


def test_one_optimizer_step_on_a_fixed_batch_lowers_the_loss():
    torch.manual_seed(0)
    config = TrainConfig(data_dir=DATA_DIR, epochs=1)
    train, _ = fast_loaders(config, torch.device("cpu"))
    images, labels = next(iter(train))
    model = Net(dropout=0.0)
    optimizer, _ = build_optimizer(model, dataclasses.replace(config, lr=0.05), steps_per_epoch=10)
    model.train()
    before = F.cross_entropy(model(images), labels)
    optimizer.zero_grad()
    before.backward()
    optimizer.step()
    assert F.cross_entropy(model(images), labels).item() < before.item()


def test_the_momentum_setting_is_what_the_schedule_moves_the_momentum_around():
    optimizer, scheduler = build_optimizer(Net(), TrainConfig(momentum=0.8), steps_per_epoch=100)
    assert optimizer.param_groups[0]["momentum"] == pytest.approx(0.85)  # + 0.05 at the lowest rate
    default, _ = build_optimizer(Net(), TrainConfig(), steps_per_epoch=100)
    reference = torch.optim.SGD(Net().parameters(), lr=0.1, momentum=0.9, nesterov=True)
    torch.optim.lr_scheduler.OneCycleLR(reference, max_lr=0.1, total_steps=2000)  # its own 0.85 to 0.95
    assert default.param_groups[0]["momentum"] == reference.param_groups[0]["momentum"]
    assert optimizer.param_groups[0]["base_momentum"] == pytest.approx(0.75)  # - 0.05 at the peak


def test_fit_on_a_few_batches_returns_the_model_and_a_well_formed_history(small_config):
    model, history = fit(small_config(epochs=3), progress=False, log=quiet)
    assert isinstance(model, Net)
    assert [r["epoch"] for r in history] == [1, 2, 3]
    for record in history:
        assert set(record) == RECORD_KEYS
        assert 0 <= record["train_acc"] <= 100 and 0 <= record["test_acc"] <= 100
        assert record["train_loss"] > 0 and record["lr"] > 0 and record["seconds"] > 0


def test_fit_prints_the_config_once_and_one_line_per_epoch(small_run):
    _, history, lines = small_run
    assert sum(line.startswith("config:") for line in lines) == 1
    assert [line.split("|")[0].strip() for line in lines[-2:]] == ["1", "2"]
    assert f"{history[-1]['test_acc']:.2f}%" in lines[-1]


def test_same_seed_twice_gives_identical_metrics_on_cpu(small_run, small_config):
    _, first, _ = small_run
    _, second = fit(small_config(), progress=False, log=quiet)
    _, other_seed = fit(small_config(seed=2), progress=False, log=quiet)
    assert without_seconds(first) == without_seconds(second)
    assert without_seconds(first) != without_seconds(other_seed)


def test_the_notebooks_loop_gives_fits_history(small_config, small_run):
    config = small_config()
    _, fitted, _ = small_run
    # the training cell of S6.ipynb, whose source tests/test_notebook.py runs in the notebook itself
    device = torch.device("cpu")
    train_loader, test_loader = make_loaders(config, device)
    run = set_up(config, device, len(train_loader))
    history = []
    for epoch in range(1, config.epochs + 1):
        started = time.perf_counter()
        train = train_one_epoch(run, train_loader, config, epoch)
        test = evaluate(evaluated(run.model, run.ema), test_loader)
        history.append({"epoch": epoch, **train, **test, "seconds": time.perf_counter() - started})
    assert without_seconds(history) == without_seconds(fitted)


def test_a_validation_run_records_validation_accuracy_not_test_accuracy(small_config):
    _, history = fit(small_config(val_split=5_000), progress=False, log=quiet)
    assert all({"val_loss", "val_acc"} <= set(record) for record in history)
    assert not [key for record in history for key in record if key.startswith("test")]
    summary = summarize(history)
    assert summary["final_val_acc"] == history[-1]["val_acc"] and not [key for key in summary if "test" in key]


@pytest.mark.parametrize("epochs, batches", [(1, 5), (5, 1), (1, 1)])
def test_runs_of_a_handful_of_steps_train(small_config, epochs, batches):
    config = small_config(epochs=epochs, max_batches=batches)
    seed_everything(config.seed)
    initial = MODELS[config.model](dropout=config.dropout).state_dict()  # what fit starts from
    model, history = fit(config, progress=False, log=quiet)
    assert [r["epoch"] for r in history] == list(range(1, epochs + 1))
    assert all(math.isfinite(r["train_loss"]) and r["test_acc"] is not None for r in history[-1:])
    trained = model.state_dict()
    assert any(not torch.equal(initial[name], trained[name]) for name in initial if "weight" in name)


def test_non_finite_loss_stops_training_naming_the_epoch(small_config):
    with pytest.raises(TrainingDiverged, match=r"epoch 1 \(by batch \d+\).*lower learning rate"):
        fit(small_config(lr=1e12, max_batches=20), progress=False, log=quiet)


def test_weight_average_matches_torch_averaged_model_with_the_same_decays():
    def decayed_average(averaged, current, num_averaged):  # S6's warm-up decay, one tensor at a time
        decay = min(0.998, (1 + num_averaged) / (10 + num_averaged))
        return decay * averaged + (1 - decay) * current

    torch.manual_seed(0)
    model = Net()
    ours = build_ema(model, TrainConfig(ema_decay=0.998))
    reference = AveragedModel(model, avg_fn=decayed_average, use_buffers=True)
    with torch.no_grad():
        for _ in range(50):
            for tensor in chain(model.parameters(), model.buffers()):
                if tensor.is_floating_point():
                    tensor.add_(torch.rand_like(tensor))
            ours.update_parameters(model)
            reference.update_parameters(model)
    for name, value in reference.state_dict().items():
        if value.is_floating_point():
            torch.testing.assert_close(ours.state_dict()[name], value, rtol=0, atol=0)


def test_weight_average_forgets_the_random_initial_weights_within_a_few_steps():
    model = Net()
    ema = build_ema(model, TrainConfig(ema_decay=0.998))
    with torch.no_grad():
        for _ in range(30):
            for p in model.parameters():
                p.fill_(1.0)
            ema.update_parameters(model)
    # a plain 0.998 average would still hold 0.998**30 = 94% of the initial weights
    assert all((p - 1).abs().max() < 0.25 for p in ema.module.parameters())


def test_without_a_weight_average_the_trained_model_itself_is_evaluated():
    model = Net()
    assert evaluated(model, None) is model
    assert evaluated(model, build_ema(model, TrainConfig())) is not model


def test_a_network_of_ones_own_trains_through_fit_and_the_notebooks_loop_as_the_same_network_from_models(
        small_config, small_run):
    config = small_config()
    _, as_net, _ = small_run
    network, history = fit(config, progress=False, log=quiet, model=LikeNet)
    assert isinstance(network, LikeNet) and without_seconds(history) == without_seconds(as_net)
    train_loader, test_loader = make_loaders(config, "cpu")
    run = set_up(config, "cpu", len(train_loader), model=LikeNet)
    looped = [{"epoch": epoch, **train_one_epoch(run, train_loader, config, epoch, progress=False),
               **evaluate(evaluated(run.model, run.ema), test_loader)} for epoch in (1, 2)]
    assert looped == without_seconds(as_net)


def test_a_run_of_ones_own_network_resumes_with_its_class_and_its_model_pt_loads_into_it(small_config, small_run,
                                                                                       tmp_path):
    _, uninterrupted, _ = small_run

    def stop_at_epoch_2(line):
        if line.startswith("    2 |"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(small_config(), out_dir=tmp_path, progress=False, log=stop_at_epoch_2, model=LikeNet)
    with pytest.raises(CheckpointError, match="is a run of LikeNet, not of Net"):
        fit(small_config(), out_dir=tmp_path, resume=True, progress=False, log=quiet)
    _, resumed = fit(small_config(), out_dir=tmp_path, resume=True, progress=False, log=quiet, model=LikeNet)
    assert without_seconds(resumed) == without_seconds(uninterrupted)
    assert isinstance(load_weights(LikeNet(), tmp_path / "model.pt"), LikeNet)


def test_a_network_without_max_pools_skips_that_speed_trick_and_one_over_its_budget_trains_with_a_note(small_config):
    def strided():  # a function that builds the network is as good as a class
        return nn.Sequential(nn.Conv2d(1, 16, 3, stride=2), nn.ReLU(), nn.Conv2d(16, 32, 3, stride=2), nn.ReLU(),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))

    lines = []
    fit(small_config(epochs=1), progress=False, log=lines.append, model=strided, budget=1_000)
    said = "\n".join(lines)
    assert "no channels-last max-pooling (the model has no nn.MaxPool2d)" in said
    assert "note: Sequential has 5,130 parameters, not under the budget of 1,000: trained anyway" in said


def test_a_network_that_does_not_return_ten_logits_is_a_one_line_error_before_training(small_config):
    with pytest.raises(UserError, match=r"returns \(2, 20\) for 2 images of \(1, 28, 28\)"):
        set_up(small_config(), "cpu", 3, model=lambda: nn.Sequential(nn.Flatten(), nn.Linear(784, 20)))


def test_a_network_given_built_starts_from_its_own_weights_and_is_left_as_it_was(small_config, small_run):
    _, as_net, _ = small_run
    torch.manual_seed(small_config().seed)  # as set_up seeds before it builds a network from its class
    built = LikeNet()
    before = {name: value.clone() for name, value in built.state_dict().items()}
    _, history = fit(small_config(), progress=False, log=quiet, model=built)
    assert without_seconds(history) == without_seconds(as_net)
    assert all(torch.equal(before[name], value) for name, value in built.state_dict().items())


def test_a_run_of_ones_own_network_records_and_prints_its_class_as_the_configs_model(small_config, tmp_path):
    lines = []
    fit(small_config(epochs=1), out_dir=tmp_path, progress=False, log=lines.append, model=LikeNet)
    record = json.loads((tmp_path / "metrics.json").read_text())
    assert record["config"]["model"] == record["model_class"] == "LikeNet"
    assert json.loads(lines[0].removeprefix("config: "))["model"] == "LikeNet"
    assert lines[1].startswith("model LikeNet: ")


def test_a_resume_that_would_not_continue_the_saved_run_is_refused_in_one_line_and_the_run_still_finishes(
        small_config, tmp_path):
    three = small_config(epochs=3)
    _, uninterrupted = fit(three, progress=False, log=quiet, model=LikeNet)
    with pytest.raises(KeyboardInterrupt):
        fit(three, out_dir=tmp_path, progress=False, log=stop_after_epoch(2), model=LikeNet)
    saved = (tmp_path / "checkpoint.pt").read_bytes()
    for change, said in [({"epochs": 5}, "epochs 3 there, 5 here"), ({"seed": 2}, "seed 1 there, 2 here"),
                         ({"lr": 0.05}, "lr 0.1 there, 0.05 here")]:
        with pytest.raises(UserError, match=rf"holds a run of another config \({said}\).*load_config") as error:
            fit(dataclasses.replace(three, **change), out_dir=tmp_path, resume=True, progress=False, log=quiet,
                model=LikeNet)
        assert "\n" not in str(error.value)
    with pytest.raises(UserError, match="is not a checkpoint of this network") as error:
        fit(three, out_dir=tmp_path, resume=True, progress=False, log=quiet, model=SameNameOtherLayers)
    assert "\n" not in str(error.value)
    assert (tmp_path / "checkpoint.pt").read_bytes() == saved, "a refused resume changes nothing"
    _, resumed = fit(three, out_dir=tmp_path, resume=True, progress=False, log=quiet, model=LikeNet)
    assert without_seconds(resumed) == without_seconds(uninterrupted)


class SameNameOtherLayers(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Conv2d(1, 10, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x):
        return self.layers(x)


SameNameOtherLayers.__name__ = "LikeNet"  # another network of the same name as the one the run trained


class DrawsFromPythonsRandom(LikeNet):
    """A network of one's own whose forward draws from Python's random and numpy's, as some augmentations do."""

    def forward(self, x):
        if self.training:
            x = x * (1 + 0.1 * random.random()) + 0.1 * float(np.random.rand())
        return super().forward(x)


def test_a_network_drawing_from_pythons_random_resumes_exactly_where_an_uninterrupted_run_ends(small_config,
                                                                                              tmp_path):
    _, uninterrupted = fit(small_config(), progress=False, log=quiet, model=DrawsFromPythonsRandom)
    with pytest.raises(KeyboardInterrupt):
        fit(small_config(), out_dir=tmp_path, progress=False, log=stop_after_epoch(1), model=DrawsFromPythonsRandom)
    random.seed(99), np.random.seed(99)  # whatever the process drew in between
    _, resumed = fit(small_config(), out_dir=tmp_path, resume=True, progress=False, log=quiet,
                     model=DrawsFromPythonsRandom)
    assert without_seconds(resumed) == without_seconds(uninterrupted)


class LayersInAList(nn.Module):
    def __init__(self):
        super().__init__()
        self.convs = [nn.Conv2d(1, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1)]  # not registered
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(8, 10, 1), nn.Flatten())

    def forward(self, x):
        for conv in self.convs:
            x = torch.relu(conv(x))
        return self.head(x)


class NeedsWidth(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.layers = nn.Sequential(nn.Conv2d(1, width, 3), nn.AdaptiveAvgPool2d(1), nn.Conv2d(width, 10, 1),
                                    nn.Flatten())

    def forward(self, x):
        return self.layers(x)


class WrongView(nn.Module):
    def __init__(self):
        super().__init__()
        self.convolution = nn.Conv2d(1, 10, 3)

    def forward(self, x):
        return self.convolution(x).view(-1, 7)[:, :10]  # 26x26 maps of 10 channels are no rows of 7


def frozen():
    network = LikeNet()
    network.requires_grad_(False)
    return network


@pytest.mark.parametrize("network, said", [
    (lambda: nn.Sequential(LikeNet(), nn.Softmax(dim=1)), "returns probabilities (each row sums to 1"),
    (LayersInAList, "runs layers that are not its submodules (Conv2d)"),
    (lambda: nn.Flatten(), "Flatten has no parameters to train"),
    (frozen, "LikeNet has no parameters to train"),
    (lambda: nn.Sequential(nn.Conv2d(3, 10, 28), nn.Flatten()), "cannot read (N, 1, 28, 28) images: RuntimeError"),
    (NeedsWidth, "NeedsWidth() could not build a network (TypeError: NeedsWidth.__init__() missing 1 required "
                 "positional argument: 'width')"),
    (WrongView, f"(test_training.py:{WrongView.forward.__code__.co_firstlineno + 1})"),
    (lambda: [nn.Conv2d(1, 10, 28)], "<lambda>() returned list, not a network"),
    ("Net", "model='Net' is not a network"),
], ids=["ends in a softmax", "layers in a plain list", "no parameters", "all frozen", "takes colour images",
        "a class that needs arguments", "a layer that fails, named at the user's line", "a function returning a list",
        "a string"])
def test_a_network_s6_cannot_train_as_given_is_a_one_line_error_saying_why_before_training(small_config, network,
                                                                                           said):
    with pytest.raises(UserError, match=re.escape(said)) as error:
        fit(small_config(), progress=False, log=quiet, model=network)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("config, budget, said", [
    ({"epochs": 1}, None, "a run takes a TrainConfig, not dict"),
    (None, "20k", "budget='20k' is not a number of parameters"),
])
def test_fit_given_no_config_or_a_budget_that_is_no_number_is_a_one_line_error(small_config, config, budget, said):
    with pytest.raises(UserError, match=re.escape(said)):
        fit(config or small_config(), progress=False, log=quiet, model=LikeNet, budget=budget)


def test_a_fit_into_a_folder_holding_a_run_is_refused_and_overwrite_removes_the_files_of_its_weights(
        small_config, finished_run, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(finished_run, folder)
    for name in MADE_FROM_WEIGHTS:
        (folder / name).write_bytes(b"made from the earlier weights")
    with pytest.raises(UserError, match=f"{folder} already holds a finished run .*--overwrite"):
        fit(small_config(), out_dir=folder, progress=False, log=quiet)
    assert all((folder / name).exists() for name in MADE_FROM_WEIGHTS)
    fit(small_config(epochs=1), out_dir=folder, overwrite=True, progress=False, log=quiet)
    assert not [name for name in MADE_FROM_WEIGHTS if (folder / name).exists()]
    assert json.loads((folder / "metrics.json").read_text())["config"]["epochs"] == 1


class InlineLayers(nn.Module):
    """Layers without weights made in the forward, as many write a ReLU or a pool: nothing to train or save there."""

    def __init__(self):
        super().__init__()
        self.convolution = nn.Conv2d(1, 16, 3, padding=1)
        self.head = nn.Conv2d(16, 10, 1)

    def forward(self, x):
        x = nn.MaxPool2d(2)(nn.ReLU()(self.convolution(x)))
        return nn.Flatten()(self.head(nn.AdaptiveAvgPool2d(1)(x)))


class OwnNet(Net):
    """A network of one's own that is Net by inheritance."""


@pytest.mark.parametrize("network, name", [
    (InlineLayers, "InlineLayers"),
    (lambda: nn.Sequential(nn.LazyConv2d(8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.LazyLinear(10)),
     "Sequential"),
    (OwnNet, "OwnNet"),
], ids=["layers without weights made in the forward", "lazy layers", "a subclass of Net"])
def test_networks_fit_can_train_are_trained_and_recorded_under_their_own_class(small_config, tmp_path, network, name):
    fit(small_config(epochs=1), out_dir=tmp_path, progress=False, log=quiet, model=network)
    record = json.loads((tmp_path / "metrics.json").read_text())
    assert record["config"]["model"] == record["model_class"] == name and record["parameters"] > 0
