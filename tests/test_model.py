"""s6_model.py: the budgets, the ingredients, the receptive fields; and the lab's networks (tools/networks.py)."""

import re

import pytest
import torch
from torch import nn

from s6.plots import model_summary
from s6_model import (
    MODELS,
    Net,
    ReceptiveFieldError,
    count_parameters,
    describe,
    feature_receptive_field,
    ingredients,
    layer_costs,
    receptive_field,
    separable_bn,
)
from tools.networks import NETWORKS, BaselineNet


@pytest.mark.parametrize("model_class", MODELS.values())
def test_each_budget_model_is_under_its_budget(model_class):
    assert count_parameters(model_class()) < model_class.budget


@pytest.mark.parametrize("model_class", MODELS.values())
def test_each_budget_model_sees_32_pixels_before_the_average_and_keeps_28x28_to_7x7(model_class):
    rows = receptive_field(model_class())
    assert feature_receptive_field(model_class()) == 32
    assert [r["output_size"] for r in rows if r["type"] == "MaxPool2d"] == [14, 7]


def test_separable_block_costs_a_depthwise_and_a_pointwise_convolution():
    block = separable_bn(16, 24)
    assert count_parameters(block) == 16 * 9 + 16 * 24 + 2 * 24  # depthwise, pointwise, BatchNorm
    assert block(torch.zeros(2, 16, 7, 7)).shape == (2, 24, 7, 7)


def test_s6s_networks_are_one_per_budget_found_by_the_keys_the_flags_and_results_folders_use():
    assert {key: cls.budget for key, cls in MODELS.items()} == {"net": 20_000, "small": 8_000, "tiny": 5_000,
                                                               "micro": 2_000}
    assert not set(MODELS) & set(NETWORKS), "the lab's networks are no product choice"


@pytest.mark.parametrize("model_class", MODELS.values())
def test_compact_models_use_batchnorm_dropout_and_global_average_pooling(model_class):
    kinds = {type(layer) for layer in model_class().modules()}
    assert nn.BatchNorm2d in kinds
    assert nn.Dropout in kinds
    assert nn.AdaptiveAvgPool2d in kinds
    assert nn.Linear not in kinds, "the head is global average pooling and a 1x1 conv, not a dense layer"


def test_net_has_dropout_at_7x7_only_where_it_draws_fewest_random_numbers():
    blocks = []  # (has dropout, output width) per feature block
    x = torch.zeros(1, 1, 28, 28)
    for block in Net().features:
        x = block(x)
        blocks.append((any(isinstance(m, nn.Dropout) for m in block.modules()), x.shape[-1]))
    assert {width for has_dropout, width in blocks if has_dropout} == {7}
    assert not blocks[-1][0], "no dropout right before the average"


def test_net_with_dropout_zero_has_no_dropout_layers():
    assert not any(isinstance(m, nn.Dropout) for m in Net(dropout=0.0).modules())


@pytest.mark.parametrize("name", [*MODELS, *NETWORKS])
def test_every_model_maps_images_to_logits(name):
    model = {**MODELS, **NETWORKS}[name]().eval()
    out = model(torch.randn(5, 1, 28, 28))
    assert out.shape == (5, 10)
    assert not torch.allclose(out.exp().sum(1), torch.ones(5), atol=1e-3)  # not log-probabilities
    assert torch.allclose(out.softmax(1).sum(1), torch.ones(5), atol=1e-5)


def test_baseline_has_593200_parameters_as_torchsummary_reports():
    model = BaselineNet()
    assert count_parameters(model) == 593_200
    assert "Total params: 593,200" in model_summary(model)


def test_receptive_field_of_baseline_matches_hand_computation():
    rows = receptive_field(BaselineNet())
    # conv3 RF 3,5 | pool: 6, jump 2 | conv3: 6+2*2=10, 10+2*2=14 | pool: 14+1*2=16, jump 4
    assert [r["receptive_field"] for r in rows] == [3, 5, 6, 10, 14, 16]
    assert [r["output_size"] for r in rows] == [26, 24, 12, 10, 8, 4]
    assert [r["jump"] for r in rows] == [1, 1, 2, 2, 2, 4]


def test_receptive_field_of_net_matches_hand_computation():
    rows = receptive_field(Net())
    # 3,5 | pool 6 (jump 2) | 10,14 | pool 16 (jump 4) | 24,32 | GAP over 7x7: 32+6*4=56 | 1x1 head
    assert [r["receptive_field"] for r in rows] == [3, 5, 6, 10, 14, 16, 24, 32, 56, 56]
    assert [r["output_size"] for r in rows] == [28, 28, 14, 14, 14, 7, 7, 7, 1, 1]
    assert rows[-2]["type"] == "AdaptiveAvgPool2d" and rows[-2]["kernel"] == 7
    assert feature_receptive_field(Net()) == 32
    assert feature_receptive_field(BaselineNet()) == 16


def test_receptive_field_follows_dilation_and_stride():
    model = nn.Sequential(nn.Conv2d(1, 1, 3, stride=2), nn.Conv2d(1, 1, 3, dilation=2))
    rows = receptive_field(model, (1, 28, 28))
    # stride 2: RF 3, size 13, jump 2 | dilation 2: RF 3 + 2*2*2 = 11, size 13 - 4 = 9
    assert [(r["receptive_field"], r["output_size"], r["jump"]) for r in rows] == [(3, 13, 2), (11, 9, 2)]


class PoolRegisteredFirst(nn.Module):
    """A network of one's own whose layers are registered in another order than its forward runs them."""

    def __init__(self):
        super().__init__()
        self.pool = nn.MaxPool2d(2)
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 10, 3, padding=1)
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(0.1), nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x):
        return self.head(self.conv2(self.pool(torch.relu(self.conv1(x)))))


def test_receptive_field_follows_a_network_of_ones_own_in_the_order_its_forward_runs_its_layers():
    rows = receptive_field(PoolRegisteredFirst())
    assert [(r["name"], r["receptive_field"], r["output_size"]) for r in rows] == [
        ("conv1", 3, 28), ("pool", 4, 14), ("conv2", 8, 14), ("head.2", 34, 1)]
    assert feature_receptive_field(PoolRegisteredFirst()) == 8


@pytest.mark.parametrize("network, named", [
    (nn.Sequential(nn.Conv2d(1, 4, 3), nn.Upsample(scale_factor=2), nn.Conv2d(4, 10, 1), nn.AdaptiveAvgPool2d(1)),
     "at 1 (Upsample)"),
    (nn.Sequential(nn.Conv2d(1, 4, 3), nn.ConvTranspose2d(4, 10, 3), nn.AdaptiveAvgPool2d(1)),
     "at 1 (ConvTranspose2d)"),
])
def test_a_layer_the_receptive_field_cannot_follow_is_named_in_one_line(network, named):
    with pytest.raises(ReceptiveFieldError, match=re.escape(named)) as error:
        receptive_field(network)
    assert "\n" not in str(error.value)
    assert describe(network).startswith("Sequential: ") and named in describe(network)


def test_a_size_changed_outside_a_layer_is_named_where_the_receptive_field_loses_track():
    class PoolsInForward(PoolRegisteredFirst):
        def forward(self, x):
            return self.head(self.conv2(torch.nn.functional.max_pool2d(self.conv1(x), 2)))

    with pytest.raises(ReceptiveFieldError, match="at conv2: its input is 14 pixels wide where the layer before gave"):
        receptive_field(PoolsInForward())


def test_a_module_with_weights_beside_its_layers_is_named_where_the_receptive_field_loses_track():
    class OwnWeights(PoolRegisteredFirst):
        def __init__(self):
            super().__init__()
            self.extra = nn.Parameter(torch.ones(8, 8, 3, 3))

    with pytest.raises(ReceptiveFieldError, match="at its top: a module with layers of its own also has weights"):
        receptive_field(OwnWeights())


class LayersInAList(nn.Module):
    """A network of one's own that keeps its convolutions in a plain Python list: torch does not see them."""

    def __init__(self):
        super().__init__()
        self.convs = [nn.Conv2d(1, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1)]
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(8, 10, 1), nn.Flatten())

    def forward(self, x):
        for conv in self.convs:
            x = torch.relu(conv(x))
        return self.head(x)


def test_layers_kept_in_a_plain_list_are_named_where_the_receptive_field_would_miss_them():
    with pytest.raises(ReceptiveFieldError, match="at a Conv2d that is not its submodule"):
        receptive_field(LayersInAList())
    assert "nn.ModuleList" in describe(LayersInAList())


@pytest.mark.parametrize("given, said", [
    (Net, "Net is a class: give a network of it, Net()"),
    (3, "3 is not a network (an nn.Module)"),
    (nn.Linear(3, 4), "Linear: 16 parameters, receptive_field cannot run Linear on a (1, 1, 28, 28) image: "
                      "RuntimeError: mat1 and mat2 shapes cannot be multiplied"),
], ids=["a class", "a number", "a network that cannot read a digit"])
def test_what_describe_is_given_it_describes_in_one_line_or_says_why_it_cannot(given, said):
    assert describe(given).startswith(said) and "\n" not in describe(given)
    with pytest.raises(ReceptiveFieldError):
        receptive_field(given)


def test_a_network_without_parameters_or_layers_is_described_without_an_error():
    assert describe(nn.Flatten()) == "Flatten: 0 parameters, a receptive field of 1 pixel before the head"
    assert receptive_field(nn.Sequential(nn.MaxPool2d(2), nn.Flatten()))[0]["receptive_field"] == 2


def test_a_convolutions_parameters_do_not_depend_on_its_maps_size_and_its_multiply_adds_do():
    network = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.Conv2d(16, 16, 3, padding=1), nn.MaxPool2d(2),
                            nn.Conv2d(16, 16, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    _, at_28, at_14 = layer_costs(network)
    assert at_28["parameters"] == at_14["parameters"] == 16 * 16 * 9 + 16
    assert at_28["multiply_adds"] == 4 * at_14["multiply_adds"] == 16 * 16 * 9 * 28 * 28
    nets = layer_costs(Net())
    assert nets[1]["parameters"] < nets[5]["parameters"] and nets[1]["multiply_adds"] > nets[5]["multiply_adds"]


@pytest.mark.parametrize("network, found", [
    (Net(), {"BatchNorm": True, "Dropout": True, "global average pooling": True}),
    (Net(dropout=0.0), {"BatchNorm": True, "Dropout": False, "global average pooling": True}),
    (BaselineNet(), {"BatchNorm": False, "Dropout": False, "global average pooling": False}),
    (NETWORKS["net-dense-head"](), {"BatchNorm": True, "Dropout": True, "global average pooling": False}),
], ids=["Net", "Net without dropout", "the baseline", "Net with a dense head"])
def test_ingredients_are_the_assignments_layers_the_forward_runs(network, found):
    assert ingredients(network) == {"parameters": count_parameters(network), **found}
