"""s6/config.py: settings are checked where they are made; a config is plain values, and a recipe a function that
returns a complete one; what a config says it is is derived from its values; the device is the best available or
the one asked for."""

import dataclasses
import json

import pytest
import torch
from conftest import ROOT

from s6.checkpoints import config_from_record
from s6.config import (
    MODEL_RECIPES,
    NAMED_RECIPES,
    NO_VALUE,
    TrainConfig,
    differences,
    get_device,
    machine_name,
    recipe,
    recipe_of,
)
from s6.files import CheckpointError
from s6.networks import build_model


@pytest.mark.parametrize("name, value", [("epochs", 0), ("lr", -0.1), ("dropout", 1.0), ("model", ""),
                                         ("pipeline", "ffcv"), ("device", "tpu"), ("precision", "fp8"),
                                         ("weight_decay", float("inf")), ("lr", float("nan")),
                                         ("momentum", 0.99), ("seed", -1), ("seed", 2**32),
                                         ("schedule", "sideways")])
def test_invalid_config_value_raises_value_error_naming_the_field(name, value):
    with pytest.raises(ValueError, match=f"TrainConfig.{name}="):
        TrainConfig(**{name: value})


def test_a_model_s6_does_not_have_is_named_when_no_network_is_given():
    with pytest.raises(ValueError, match="TrainConfig.model='resnet' is not one of S6's networks"):
        build_model(TrainConfig(model="resnet"), "cpu")


@pytest.mark.parametrize("model", MODEL_RECIPES)
def test_each_models_recipe_is_a_complete_config_with_its_row_on_nets_defaults(model):
    made = recipe("default", model)
    expected = {**dataclasses.asdict(TrainConfig()), "model": model, **MODEL_RECIPES[model]}
    assert made.to_dict() == expected
    assert recipe_of(made) == "default"


def test_a_named_recipe_changes_its_models_own_and_a_setting_given_still_wins():
    quick = recipe("quick")
    assert quick.to_dict() == {**recipe().to_dict(), **NAMED_RECIPES["quick"]["net"]}
    assert quick.epochs < TrainConfig().epochs and not quick.eval_each_epoch
    assert recipe("quick", epochs=5).epochs == 5 and recipe_of(recipe("quick", epochs=5)) == "quick, with epochs=5"
    assert TrainConfig(**quick.to_dict()) == quick


@pytest.mark.parametrize("change", [{"model": "tiny"}, {"lr": 0.2}, {"model": "tiny", "lr": 0.1}])
def test_equal_configs_stay_equal_under_replace_which_changes_only_what_it_names(change):
    made = recipe("quick")
    rebuilt = TrainConfig(**dataclasses.asdict(made))
    assert made == rebuilt and repr(made) == repr(rebuilt)
    replaced = dataclasses.replace(made, **change)
    assert replaced == dataclasses.replace(rebuilt, **change)
    assert differences(made, replaced, ignore=()) == {name: (getattr(made, name), value)
                                                      for name, value in change.items() if getattr(made, name) != value}


def test_no_config_can_say_it_is_a_recipe_its_values_are_not():
    with pytest.raises(TypeError):  # no field holds a recipe's name apart from its values
        dataclasses.replace(TrainConfig(), recipe="quick")
    assert recipe_of(recipe("quick")) == "quick"
    assert recipe_of(dataclasses.replace(recipe("quick"), seed=3)) == "quick"  # any seed
    assert recipe_of(dataclasses.replace(TrainConfig(), epochs=3)) == "default, with epochs=3"
    tiny_with_nets = dataclasses.replace(TrainConfig(), model="tiny")  # Net's values, for TinyNet
    assert tiny_with_nets.epochs == TrainConfig().epochs
    assert recipe_of(tiny_with_nets).startswith("default, with epochs=20, lr=0.1")


@pytest.mark.parametrize("model, name", [("micro", "quick"), ("net", "fastest")])
def test_a_recipe_the_model_does_not_have_is_a_one_line_error_naming_what_it_has(model, name):
    with pytest.raises(ValueError, match=f"recipe '{name}' is not one of {model}'s: it has 'default'"):
        recipe(name, model)


def test_config_survives_a_round_trip_through_its_dict():
    config = recipe(model="tiny", epochs=15, seed=3)
    assert TrainConfig(**config.to_dict()) == config


@pytest.mark.parametrize("run, recipe_name", [("net-seed1", "default"), ("net-seed5", "default"),
                                              ("quick-seed2", "quick"), ("tiny-seed1", "default"),
                                              ("small-seed3", "default"), ("micro-seed4", "default")])
def test_committed_runs_read_as_the_recipes_they_trained_with(run, recipe_name):
    """Records made before some fields existed read them as what those runs trained with (their `before`)."""
    record = json.loads((ROOT / "results" / run / "metrics.json").read_text())
    assert recipe_of(config_from_record(record["config"], run)) == recipe_name


def test_a_record_without_a_field_reads_it_as_what_ran_before_it_existed_not_as_todays_default():
    saved = TrainConfig().to_dict()
    del saved["schedule"], saved["channels_last_pooling"]
    read = config_from_record(saved, "metrics.json")
    assert (read.schedule, read.channels_last_pooling) == ("onecycle", False)  # their `before`s
    assert read.channels_last_pooling != TrainConfig().channels_last_pooling


def test_a_record_without_a_field_whose_earlier_value_is_unknown_is_a_one_line_error():
    field = next(f for f in dataclasses.fields(TrainConfig) if f.name == "label_smoothing")
    assert field.metadata["before"] is NO_VALUE
    saved = TrainConfig().to_dict()
    del saved["label_smoothing"]
    with pytest.raises(CheckpointError, match="written before TrainConfig.label_smoothing existed"):
        config_from_record(saved, "metrics.json")


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
