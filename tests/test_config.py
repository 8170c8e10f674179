"""s6/config.py: settings are checked where they are made; the device is the best available or the one asked for."""

import pytest
import torch

from s6.config import RECIPES, TrainConfig, get_device, machine_name


@pytest.mark.parametrize("name, value", [("epochs", 0), ("lr", -0.1), ("dropout", 1.0), ("model", "resnet"),
                                         ("pipeline", "ffcv"), ("device", "tpu"), ("precision", "fp8"),
                                         ("weight_decay", float("inf")), ("lr", float("nan")),
                                         ("momentum", 0.99)])
def test_invalid_config_value_raises_value_error_naming_the_field(name, value):
    with pytest.raises(ValueError, match=f"TrainConfig.{name}="):
        TrainConfig(**{name: value})


@pytest.mark.parametrize("model", RECIPES)
def test_every_setting_in_a_models_recipe_row_takes_effect(model):
    row = {**RECIPES["net"], **RECIPES[model]}
    assert set(RECIPES[model]) <= set(RECIPES["net"]), "Net's row names every setting that varies by model"
    config = TrainConfig(model=model)
    assert {name: getattr(config, name) for name in row} == row


def test_each_model_takes_its_own_recipe_unless_told_otherwise():
    assert TrainConfig().epochs == RECIPES["net"]["epochs"] == 20
    assert TrainConfig(model="small").epochs == RECIPES["small"]["epochs"]
    assert TrainConfig(model="small").rotate_degrees == RECIPES["small"]["rotate_degrees"]
    assert TrainConfig(model="small", epochs=3).epochs == 3
    assert TrainConfig(model="arch1").epochs == 20  # not in RECIPES: Net's recipe


def test_config_survives_a_round_trip_through_its_dict():
    config = TrainConfig(model="tiny", epochs=15, seed=3)
    assert TrainConfig(**config.to_dict()) == config


def test_explicit_cpu_preference_wins():
    assert get_device("cpu") == torch.device("cpu")
    assert get_device().type in {"cuda", "mps", "cpu"}


def test_unavailable_device_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="device 'cuda' is not available"):
        get_device("cuda")


def test_machine_name_of_a_cpu_gives_the_thread_count():
    assert machine_name(torch.device("cpu")).endswith(f"{torch.get_num_threads()} threads")
