"""s6/speed.py: every trick gives the plain path's values (bit for bit where the arithmetic is the same)."""

import copy

import pytest
import torch
import torch.nn.functional as F
from conftest import quiet, without_seconds

from s6 import speed
from s6.config import TrainConfig
from s6.networks import build_model
from s6.speed import MaxPool2dNHWC, capture_cuda_graphs, capture_weight_average, speed_up
from s6.training import build_ema, fit
from s6_model import Net

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_channels_last_max_pool_gives_max_pools_values_and_gradients_even_for_ties(dtype):
    torch.manual_seed(0)
    # coarse steps after a ReLU: many windows hold two or more equal maxima, where the first must win
    x = (torch.randn(8, 16, 28, 28) * 2).round().relu().to(dtype)
    grad_out = torch.randn(8, 16, 14, 14, dtype=dtype)
    outputs, grads = [], []
    for pool in (torch.nn.MaxPool2d(2), MaxPool2dNHWC(2)):
        leaf = x.clone().requires_grad_()
        y = pool(leaf)
        y.backward(grad_out)
        outputs.append(y)
        grads.append(leaf.grad)
    assert outputs[1].is_contiguous() and grads[1].is_contiguous()  # NCHW in, NCHW out, both ways
    torch.testing.assert_close(outputs[1], outputs[0], rtol=0, atol=0)
    torch.testing.assert_close(grads[1], grads[0], rtol=0, atol=0)


def test_cpu_model_pools_in_channels_last_with_the_same_weights_and_gradients():
    config = TrainConfig(dropout=0.0, precision="bf16")
    torch.manual_seed(0)
    reference = Net(dropout=0.0)
    model = copy.deepcopy(reference)
    speed = speed_up(model, config)
    assert speed.names == ["channels-last max-pooling", "bf16 autocast"]
    assert [type(m) for m in model.modules() if isinstance(m, torch.nn.MaxPool2d)] == [MaxPool2dNHWC] * 2
    assert model.state_dict().keys() == reference.state_dict().keys()  # the swap adds no state
    images, labels = torch.randn(32, 1, 28, 28), torch.randint(0, 10, (32,))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        F.cross_entropy(reference(images).float(), labels).backward()
    logits = speed.forward(model, images)  # autocast inside, fp32 logits out
    assert logits.dtype == torch.float32
    F.cross_entropy(logits, labels).backward()
    for a, b in zip(reference.parameters(), model.parameters(), strict=True):
        torch.testing.assert_close(b.grad, a.grad, rtol=0, atol=0)


@pytest.mark.parametrize("overrides", [dict(channels_last_pooling=False), dict(channels_last=True)])
def test_model_keeps_plain_max_pools_when_channels_last_pooling_is_off_or_moot(overrides):
    model = build_model(TrainConfig(**overrides), "cpu")
    speed_up(model, TrainConfig(**overrides))
    assert not any(isinstance(m, MaxPool2dNHWC) for m in model.modules())


@pytest.mark.parametrize("trick", ["channels_last_pooling", "channels_last_evaluation"])
def test_channels_last_pooling_and_evaluation_change_no_result_of_a_run(trick, small_run, small_config):
    _, fast, _ = small_run
    _, plain = fit(small_config(**{trick: False}), progress=False, log=quiet)
    assert without_seconds(fast) == without_seconds(plain)


def test_channels_last_evaluation_keeps_the_weight_average_channels_last_and_the_trained_network_as_it_is():
    config = TrainConfig()
    model = Net()
    ema = build_ema(model, config)
    assert "channels-last evaluation" in speed_up(model, config, ema).names
    weight = ema.module.features[1][0].weight  # 16x8x3x3: the first conv has one input channel
    assert weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
    assert model.features[1][0].weight.is_contiguous()
    images = torch.randn(50, 1, 28, 28)
    ema.module.eval()
    nchw = copy.deepcopy(ema.module).to(memory_format=torch.contiguous_format)
    assert torch.equal(ema.module(images).argmax(1), nchw(images).argmax(1))
    assert torch.allclose(ema.module(images), nchw(images), atol=1e-5)


def test_no_trick_replaces_a_method_the_sped_up_network_is_its_own_class():
    config = TrainConfig(precision="bf16")
    model = Net()
    ema = build_ema(model, config)
    speed_up(model, config, ema)
    for module in [model, ema, *model.modules(), *ema.modules()]:
        assert not {"forward", "update_parameters"} & set(vars(module)), type(module).__name__
    images = torch.randn(4, 1, 28, 28)
    model.eval()
    assert torch.equal(model(images), type(model).forward(model, images))  # eval runs the class's own fp32 forward


@needs_cuda
def test_cuda_graphs_give_the_eager_gradients_and_batchnorm_statistics():
    torch.manual_seed(0)
    eager = Net(dropout=0.0).cuda()  # no dropout: a graph draws its random numbers differently
    graphed_model = copy.deepcopy(eager)
    graphed = capture_cuda_graphs(graphed_model, batch_size=64)
    assert "forward" not in vars(graphed_model), "the model keeps its own forward"
    for batch_size in (64, 64, 32):  # the last, smaller batch runs the ordinary forward
        images = torch.randn(batch_size, 1, 28, 28, device="cuda")
        labels = torch.randint(0, 10, (batch_size,), device="cuda")
        for model, forward in ((eager, eager), (graphed_model, graphed if batch_size == 64 else graphed_model)):
            model.zero_grad(set_to_none=True)
            F.cross_entropy(forward(images), labels).backward()
        for a, b in zip(eager.parameters(), graphed_model.parameters(), strict=True):
            torch.testing.assert_close(a.grad, b.grad, rtol=2e-3, atol=2e-4)  # TF32 convolutions
        for a, b in zip(eager.buffers(), graphed_model.buffers(), strict=True):
            torch.testing.assert_close(a, b, rtol=2e-3, atol=2e-4)


@needs_cuda
def test_cuda_graphs_of_a_bf16_run_replay_the_bf16_forward():
    torch.manual_seed(0)
    model = Net(dropout=0.0).cuda()
    graphed = capture_cuda_graphs(model, batch_size=64, bf16=True)
    images = torch.randn(64, 1, 28, 28, device="cuda")
    replayed, bf16 = graphed(images), speed.bf16_forward(model, images)
    assert replayed.dtype == torch.float32
    torch.testing.assert_close(replayed, bf16, rtol=1e-2, atol=1e-2)
    assert not torch.equal(replayed, model(images)), "not the fp32 forward"


@needs_cuda
def test_weight_average_replayed_from_a_cuda_graph_matches_the_eager_update():
    torch.manual_seed(0)
    model = Net().cuda()
    eager, graphed = build_ema(model, TrainConfig()), build_ema(model, TrainConfig())
    graph = capture_weight_average(graphed, model)
    with torch.no_grad():
        for _ in range(5):
            for p in model.parameters():
                p.add_(torch.randn_like(p))
            eager.update_parameters(model)
            graph.replay()
    for name, value in eager.state_dict().items():
        torch.testing.assert_close(graphed.state_dict()[name], value, rtol=0, atol=0)


def test_a_cuda_graph_capture_that_fails_falls_back_to_the_plain_step_with_one_note(monkeypatch, small_config):
    def capture_fails(*args, **kwargs):
        raise RuntimeError("CUDA error: operation not permitted when stream is capturing\nmore detail")

    monkeypatch.setattr(speed, "use_cuda_graphs", lambda config, device: True)  # as on a GPU
    monkeypatch.setattr(torch.cuda, "make_graphed_callables", capture_fails)
    config = small_config(epochs=1)
    lines = []
    _, history = fit(config, progress=False, log=lines.append)
    [said] = [line for line in lines if "no CUDA graphs" in line]  # in the run's speed line, its first line only
    assert ("no CUDA graphs (their capture failed: RuntimeError: CUDA error: operation not permitted when stream is "
            "capturing)") in said and "more detail" not in said
    monkeypatch.undo()
    _, plain = fit(config, progress=False, log=quiet)
    assert without_seconds(history) == without_seconds(plain), "the plain step, as without the trick"


def test_without_torchs_private_bf16_probes_bf16_is_skipped_and_the_speed_list_says_so(monkeypatch):
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        monkeypatch.delattr(torch.cpu, probe, raising=False)  # as on torch 2.3, which lacks them
    config = TrainConfig(precision="auto", device="cpu")
    model = build_model(config, "cpu")
    speed = speed_up(model, config, build_ema(model, config))
    assert not speed.bf16 and "bf16 autocast" not in speed.names
    assert [trick for trick in speed.names if trick.startswith("no bf16 autocast (torch ")], speed.names


def test_a_model_that_autocast_cannot_run_trains_in_fp32_and_the_speed_list_says_why():
    class NoBf16(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = Net()

        def forward(self, x):
            if self.net.features[0](x).dtype == torch.bfloat16:  # under autocast
                raise RuntimeError("\"slow_conv2d_cpu\" not implemented for 'BFloat16'")
            return self.net(x)

    config = TrainConfig(precision="bf16")
    model = NoBf16()
    speed = speed_up(model, config)
    assert not speed.bf16
    assert "no bf16 autocast (RuntimeError: \"slow_conv2d_cpu\" not implemented for 'BFloat16')" in speed.names
    assert speed.forward(model, torch.randn(3, 1, 28, 28)).shape == (3, 10)
