"""s6/config.py: settings are checked where they are made; the device is the best available or the one asked for."""

import dataclasses
import json

import pytest
import torch
from conftest import ROOT

from s6.config import NAMED_RECIPES, RECIPES, TrainConfig, get_device, machine_name


@pytest.mark.parametrize("name, value", [("epochs", 0), ("lr", -0.1), ("dropout", 1.0), ("model", "resnet"),
                                         ("pipeline", "ffcv"), ("device", "tpu"), ("precision", "fp8"),
                                         ("weight_decay", float("inf")), ("lr", float("nan")),
                                         ("momentum", 0.99), ("seed", -1), ("seed", 2**32),
                                         ("schedule", "cosine")])
def test_invalid_config_value_raises_value_error_naming_the_field(name, value):
    with pytest.raises(ValueError, match=f"TrainConfig.{name}="):
        TrainConfig(**{name: value})


@pytest.mark.parametrize("model", RECIPES)
def test_every_setting_in_a_models_recipe_row_takes_effect(model):
    row = {**RECIPES["net"], **RECIPES[model]}
    assert set(RECIPES[model]) <= set(RECIPES["net"]), "Net's row names every setting that varies by model"
    config = TrainConfig(model=model)
    assert {name: getattr(config, name) for name in row} == row


@pytest.mark.parametrize("change", [{"model": "tiny"}, {"recipe": "quick"}, {"model": "tiny", "lr": 0.1}])
def test_equal_configs_stay_equal_under_replace_and_a_setting_given_is_never_dropped(change):
    made = TrainConfig()
    rebuilt = TrainConfig(**dataclasses.asdict(made))
    assert made == rebuilt and repr(made) == repr(rebuilt)
    assert dataclasses.replace(made, **change) == dataclasses.replace(rebuilt, **change)
    replaced = dataclasses.replace(made, **change)
    assert all(getattr(replaced, name) == value for name, value in change.items())
    unchanged = {f.name for f in dataclasses.fields(TrainConfig)} - set(change)
    assert all(getattr(replaced, name) == getattr(made, name) for name in unchanged), "replace changes what it names"


def test_a_new_config_of_another_model_takes_its_recipe_and_keeps_what_was_given():
    assert TrainConfig(model="tiny", lr=0.1).lr == 0.1
    tiny = TrainConfig(model="tiny", seed=3)
    assert (tiny.epochs, tiny.lr, tiny.seed) == (RECIPES["tiny"]["epochs"], RECIPES["tiny"]["lr"], 3)


def test_each_model_takes_its_own_recipe_unless_told_otherwise():
    assert TrainConfig().epochs == RECIPES["net"]["epochs"] == 20
    assert TrainConfig(model="small").epochs == RECIPES["small"]["epochs"]
    assert TrainConfig(model="small").rotate_degrees == RECIPES["small"]["rotate_degrees"]
    assert TrainConfig(model="small", epochs=3).epochs == 3
    assert TrainConfig(model="arch1").epochs == 20  # not in RECIPES: Net's recipe


def test_the_default_config_is_still_the_one_the_committed_net_seeds_trained_with():
    saved = json.loads((ROOT / "results" / "net" / "seeds.json").read_text())["config"]
    assert TrainConfig(**saved) == TrainConfig()


def test_the_quick_recipe_changes_nets_row_and_a_setting_given_still_wins():
    quick = TrainConfig(recipe="quick")
    row = {**RECIPES["net"], **NAMED_RECIPES["quick"]["net"]}
    assert set(NAMED_RECIPES["quick"]["net"]) <= set(RECIPES["net"]), "only a setting in RECIPES can be changed"
    assert {name: getattr(quick, name) for name in row} == row
    assert quick.epochs < TrainConfig().epochs and not quick.eval_each_epoch
    assert TrainConfig(recipe="quick", epochs=5).epochs == 5
    assert TrainConfig(**quick.to_dict()) == quick


@pytest.mark.parametrize("model, recipe", [("micro", "quick"), ("net", "fastest")])
def test_a_recipe_the_model_does_not_have_is_a_value_error_naming_the_field(model, recipe):
    with pytest.raises(ValueError, match=f"TrainConfig.recipe='{recipe}'"):
        TrainConfig(model=model, recipe=recipe)


def test_config_survives_a_round_trip_through_its_dict():
    config = TrainConfig(model="tiny", epochs=15, seed=3)
    assert TrainConfig(**config.to_dict()) == config


@pytest.mark.parametrize("cuda, mps, best", [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")])
def test_the_default_device_is_cuda_else_mps_else_cpu_and_an_explicit_cpu_wins(monkeypatch, cuda, mps, best):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert get_device() == torch.device(best)
    assert get_device("cpu") == torch.device("cpu")


def test_unavailable_device_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="device 'cuda' is not available"):
        get_device("cuda")


def test_machine_name_of_a_cpu_gives_the_thread_count():
    assert machine_name(torch.device("cpu")).endswith(f"{torch.get_num_threads()} threads")
