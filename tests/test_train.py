import copy
import dataclasses
from itertools import chain

import pytest
import torch
import torch.nn.functional as F
from conftest import DATA_DIR
from matplotlib.figure import Figure
from torch.optim.swa_utils import AveragedModel

from s6_model import MODELS, Net
from s6_utils import (
    MaxPool2dNHWC,
    TrainConfig,
    TrainingDiverged,
    build_ema,
    build_model,
    build_optimizer,
    capture_cuda_graphs,
    confusion_matrix,
    fast_loaders,
    fit,
    get_device,
    plot_confusion_matrix,
    plot_history,
    plot_misclassified,
    plot_samples,
    plot_test_accuracy,
    predict,
    release_cuda_graphs,
)

RECORD_KEYS = {"epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds"}


def without_seconds(history):
    return [{k: v for k, v in record.items() if k != "seconds"} for record in history]


@pytest.mark.parametrize("name, value", [("epochs", 0), ("lr", -0.1), ("dropout", 1.0), ("model", "resnet"),
                                         ("pipeline", "ffcv"), ("device", "tpu"), ("precision", "fp8")])
def test_invalid_config_value_raises_value_error_naming_the_field(name, value):
    with pytest.raises(ValueError, match=f"TrainConfig.{name}="):
        TrainConfig(**{name: value})


def test_explicit_cpu_preference_wins():
    assert get_device("cpu") == torch.device("cpu")
    assert get_device().type in {"cuda", "mps", "cpu"}


def test_unavailable_device_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="device 'cuda' is not available"):
        get_device("cuda")


def test_one_optimizer_step_on_a_fixed_batch_lowers_the_loss():
    torch.manual_seed(0)
    config = TrainConfig(data_dir=DATA_DIR, epochs=1)
    train, _ = fast_loaders(config, torch.device("cpu"))
    images, labels = next(iter(train))
    model = Net(dropout=0.0)
    optimizer, _ = build_optimizer(model, dataclasses.replace(config, lr=0.05), steps_per_epoch=10)
    model.train()
    before = F.nll_loss(model(images), labels)
    optimizer.zero_grad()
    before.backward()
    optimizer.step()
    assert F.nll_loss(model(images), labels).item() < before.item()


def test_fit_on_a_few_batches_returns_the_model_and_a_well_formed_history(small_config):
    model, history = fit(small_config(epochs=3), progress=False, log=lambda *_: None)
    assert isinstance(model, Net)
    assert [r["epoch"] for r in history] == [1, 2, 3]
    for record in history:
        assert set(record) == RECORD_KEYS
        assert 0 <= record["train_acc"] <= 100 and 0 <= record["test_acc"] <= 100
        assert record["train_loss"] > 0 and record["lr"] > 0 and record["seconds"] > 0


def test_fit_prints_the_config_once_and_one_line_per_epoch(small_config):
    lines = []
    fit(small_config(), progress=False, log=lines.append)
    assert sum(line.startswith("config:") for line in lines) == 1
    assert [line.split("|")[0].strip() for line in lines[-2:]] == ["1", "2"]


def test_same_seed_twice_gives_identical_metrics_on_cpu(small_config):
    quiet = dict(progress=False, log=lambda *_: None)
    _, first = fit(small_config(), **quiet)
    _, second = fit(small_config(), **quiet)
    _, other_seed = fit(small_config(seed=2), **quiet)
    assert without_seconds(first) == without_seconds(second)
    assert without_seconds(first) != without_seconds(other_seed)


def interrupt_during_epoch(k):
    """A log callback that raises KeyboardInterrupt when epoch k's line is printed, before it is saved."""
    def log(line):
        if line.startswith(f"{k:5d} |"):
            raise KeyboardInterrupt
    return log


def test_resumed_run_ends_with_the_same_history_and_weights_as_an_uninterrupted_one(small_config, tmp_path):
    config = small_config(epochs=4)
    _, uninterrupted = fit(config, out_dir=tmp_path / "full", progress=False, log=lambda *_: None)
    with pytest.raises(KeyboardInterrupt):
        fit(config, out_dir=tmp_path / "stopped", progress=False, log=interrupt_during_epoch(3))
    assert torch.load(tmp_path / "stopped" / "checkpoint.pt", weights_only=True)["epoch"] == 2
    assert not (tmp_path / "stopped" / "model.pt").exists()
    _, resumed = fit(config, out_dir=tmp_path / "stopped", resume=True, progress=False, log=lambda *_: None)
    assert without_seconds(resumed) == without_seconds(uninterrupted)
    full = torch.load(tmp_path / "full" / "model.pt", weights_only=True)
    again = torch.load(tmp_path / "stopped" / "model.pt", weights_only=True)
    assert all(torch.equal(full[k], again[k]) for k in full)


def test_non_finite_loss_stops_training_naming_epoch_and_batch(small_config):
    with pytest.raises(TrainingDiverged, match=r"epoch 1, batch \d+.*lower learning rate"):
        fit(small_config(lr=1e12, max_batches=20), progress=False, log=lambda *_: None)


def test_plots_return_figures(small_config):
    config = small_config()
    model, history = fit(config, progress=False, log=lambda *_: None)
    train, test = fast_loaders(config, torch.device("cpu"))
    images, labels = next(iter(train))
    images, labels, probs = predict(model, test, device=torch.device("cpu"))
    assert probs.shape == (10_000, 10)
    matrix = confusion_matrix(labels, probs.argmax(1))
    assert matrix.sum() == 10_000 and matrix.shape == (10, 10)
    figures = [plot_samples(images[:32], labels[:32]), plot_history(history),
               plot_misclassified(images, labels, probs), plot_confusion_matrix(matrix),
               plot_test_accuracy({"run": history})]
    assert all(isinstance(fig, Figure) and fig.axes for fig in figures)


def test_confusion_matrix_counts_true_rows_and_predicted_columns():
    labels = torch.tensor([0, 0, 1, 2, 2, 2])
    predictions = torch.tensor([0, 1, 1, 2, 2, 0])
    matrix = confusion_matrix(labels, predictions, classes=3)
    assert matrix.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]


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


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_graphs_give_the_eager_gradients_and_batchnorm_statistics():
    torch.manual_seed(0)
    eager = Net(dropout=0.0).cuda()  # no dropout: a graph draws its random numbers differently
    graphed = copy.deepcopy(eager)
    capture_cuda_graphs(graphed, batch_size=64)
    for batch_size in (64, 64, 32):  # the last, smaller batch runs the ordinary forward
        images = torch.randn(batch_size, 1, 28, 28, device="cuda")
        labels = torch.randint(0, 10, (batch_size,), device="cuda")
        for model in (eager, graphed):
            model.zero_grad(set_to_none=True)
            F.nll_loss(model(images), labels).backward()
        for a, b in zip(eager.parameters(), graphed.parameters(), strict=True):
            torch.testing.assert_close(a.grad, b.grad, rtol=2e-3, atol=2e-4)  # TF32 convolutions
        for a, b in zip(eager.buffers(), graphed.buffers(), strict=True):
            torch.testing.assert_close(a, b, rtol=2e-3, atol=2e-4)
    release_cuda_graphs(graphed)
    assert "forward" not in vars(graphed)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_weight_average_replayed_from_a_cuda_graph_matches_the_eager_update():
    torch.manual_seed(0)
    model = Net().cuda()
    eager, graphed = build_ema(model, TrainConfig()), build_ema(model, TrainConfig())
    graphed.capture_cuda_graph(model)
    with torch.no_grad():
        for _ in range(5):
            for p in model.parameters():
                p.add_(torch.randn_like(p))
            eager.update_parameters(model)
            graphed.update_parameters(model)
    for name, value in eager.state_dict().items():
        torch.testing.assert_close(graphed.state_dict()[name], value, rtol=0, atol=0)


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
    config = TrainConfig()
    torch.manual_seed(0)
    reference = MODELS[config.model](dropout=0.0)
    model = build_model(dataclasses.replace(config, dropout=0.0), "cpu")
    assert [type(m) for m in model.modules() if isinstance(m, torch.nn.MaxPool2d)] == [MaxPool2dNHWC] * 2
    model.load_state_dict(reference.state_dict())  # same keys: the swap adds no state
    images, labels = torch.randn(32, 1, 28, 28), torch.randint(0, 10, (32,))
    for net in (reference, model):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            F.nll_loss(net(images).float(), labels).backward()
    for a, b in zip(reference.parameters(), model.parameters(), strict=True):
        torch.testing.assert_close(b.grad, a.grad, rtol=0, atol=0)


@pytest.mark.parametrize("overrides", [dict(channels_last_pooling=False), dict(channels_last=True)])
def test_model_keeps_plain_max_pools_when_channels_last_pooling_is_off_or_moot(overrides):
    model = build_model(TrainConfig(**overrides), "cpu")
    assert not any(isinstance(m, MaxPool2dNHWC) for m in model.modules())
