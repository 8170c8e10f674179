"""Speed: the CPU- and GPU-specific tricks, each a named part, all switched on by one call, `speed_up`.

`speed_up` returns a `Speed`, whose `forward` and `update_average` are the two calls of the training step
(s6/training.py) that a trick can change; with every trick off they are `model(images)` and
`ema.update_parameters(model)`. The tricks:

- bfloat16 autocast for the training forward, on a CPU with AVX-512-BF16 or AMX (`Speed.forward`);
- max-pooling in channels-last layout on a CPU (`MaxPool2dNHWC` in place of each nn.MaxPool2d);
- the channels-last memory layout, when the config asks for it;
- on a CPU, the weight average (the network evaluated, never trained) in channels-last layout;
- CUDA graphs on a GPU: the forward and backward of every full batch, and the weight average's update.

Channels-last pooling and the layouts compute the same values (the tests compare values and gradients); bf16
autocast rounds differently, and moves a run's result by less than seeds differ. A trick that does not suit the
model, or fails on this machine, is skipped, and `Speed.names` says so in a note. doc/performance.md has the
measurements behind each.
"""

import copy
import warnings
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


def cpu_has_bf16():
    """Whether this CPU has AVX-512-BF16 or AMX, or None where this torch cannot tell: the probes are
    private torch functions, and releases before 2.4 lack them."""
    probes = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    if not all(probes):
        return None
    return any(probe() for probe in probes)


def use_bf16(precision, device):
    """Whether to train under bfloat16 autocast: 'auto' means on a CPU with AVX-512-BF16 or AMX only.

    Not on CUDA: measured on an H200, autocast made a step slower, since a step of a 20K-parameter
    net is bound by kernel launches and autocast adds a cast of every weight.
    """
    if precision != "auto":
        return precision == "bf16"
    return torch.device(device).type == "cpu" and bool(cpu_has_bf16())


def use_cuda_graphs(config, device):
    """Whether to replay the training step's passes as CUDA graphs: on CUDA, unless the config turns it off."""
    return config.cuda_graphs and torch.device(device).type == "cuda"


class MaxPool2dNHWC(nn.MaxPool2d):
    """nn.MaxPool2d that pools an NCHW batch in channels-last layout and returns it as NCHW.

    Same values and gradients (the same pixel wins each window), but on a CPU PyTorch's NCHW
    max-pool kernel is many times slower than its channels-last one, which is vectorised across
    channels, and the two layout copies cost less than the difference.
    """

    def forward(self, x):
        if x.is_contiguous(memory_format=torch.channels_last):  # channels-last already, or 1 channel
            return super().forward(x)
        x_nhwc = x.contiguous(memory_format=torch.channels_last)
        y_nhwc = super().forward(x_nhwc)
        if x_nhwc.requires_grad:
            # autograd hands a copy's gradient back in the copy's layout, and mixed layouts would
            # send the backward passes on either side down slow paths; convert them instead
            x_nhwc.register_hook(lambda grad: grad.contiguous())
            y_nhwc.register_hook(lambda grad: grad.contiguous(memory_format=torch.channels_last))
        return y_nhwc.contiguous()


def pool_in_channels_last(model):
    """Replace every nn.MaxPool2d in `model` with an equivalent MaxPool2dNHWC, in place. Returns the model."""
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if type(child) is nn.MaxPool2d and not child.return_indices:
                setattr(parent, name, MaxPool2dNHWC(child.kernel_size, child.stride, child.padding,
                                                    child.dilation, ceil_mode=child.ceil_mode))
    return model


def plain_max_pools(model):
    """Undo pool_in_channels_last: every MaxPool2dNHWC in `model` back to the nn.MaxPool2d it replaced, in place."""
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if type(child) is MaxPool2dNHWC:
                setattr(parent, name, nn.MaxPool2d(child.kernel_size, child.stride, child.padding, child.dilation,
                                                   ceil_mode=child.ceil_mode))
    return model


def bf16_forward(model, images):
    """`model(images)` under bfloat16 autocast, the logits back in fp32 for the loss. Autocast's weight cache stays
    off: CUDA graphs require it, and each weight is used once per forward anyway."""
    with torch.autocast(images.device.type, dtype=torch.bfloat16, cache_enabled=False):
        return model(images).float()


class GraphedForward(nn.Module):
    """A module whose forward is `model`'s (under bf16 autocast with `bf16`): what
    torch.cuda.make_graphed_callables graphs, so that the graphed forward belongs to this wrapper and `model` keeps
    its own."""

    def __init__(self, model, bf16=False):
        super().__init__()
        self.model, self.bf16 = model, bf16

    def forward(self, images):
        return bf16_forward(self.model, images) if self.bf16 else self.model(images)


@dataclass
class Speed:
    """The tricks `speed_up` switched on for a run, and the two calls of the training step they change."""

    names: list = field(default_factory=list)  # the tricks switched on, then a note for each one skipped
    bf16: bool = False  # bfloat16 autocast in the training forward
    graphed: GraphedForward | None = None  # the CUDA graphs of a full batch's forward and backward
    batch_size: int = 0  # the size of a full batch, the one the graphs were captured for
    average_graph: object = None  # the weight average's update as a CUDA graph (torch.cuda.CUDAGraph)

    def forward(self, model, images):
        """`model(images)` in training: the logits (N, 10) in fp32, for the loss."""
        if self.graphed is not None and len(images) == self.batch_size:
            return self.graphed(images)
        return bf16_forward(model, images) if self.bf16 else model(images)

    def update_average(self, ema, model):
        """`ema.update_parameters(model)`, or the replay of its CUDA graph, which reads `model`'s tensors."""
        if self.average_graph is not None:
            self.average_graph.replay()
        else:
            ema.update_parameters(model)


def autocast_fails(model, device):
    """The error of one forward and backward of `model` under bfloat16 autocast on two random images, or None where
    it runs: some layers have no bf16 kernel on some devices."""
    probe = copy.deepcopy(model).train()
    images = torch.randn(2, 1, 28, 28, device=device)
    try:
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, cache_enabled=False):
            logits = probe(images).float()
        F.cross_entropy(logits, torch.zeros(2, dtype=torch.long, device=device)).backward()
    except Exception as error:  # whatever the layer raises, the trick is skipped and the run goes on in fp32
        return error
    return None


# A CUDA graph's capture warms up on a side stream, and the first real backward then warns once that the
# parameters' gradient accumulators were made there: expected, and harmless here.
warnings.filterwarnings("ignore", message="The AccumulateGrad node's stream does not match")


def capture_cuda_graphs(model, batch_size, bf16=False):
    """`model`'s training forward (under bf16 autocast with `bf16`) and backward for batches of `batch_size`,
    captured as CUDA graphs (torch.cuda.make_graphed_callables): a GraphedForward whose call replays them, launching
    all of a pass's kernels at once. `model` keeps its own forward; the capture's warm-up passes leave its state as
    it was."""
    state = copy.deepcopy(model.state_dict())  # the warm-up passes update BatchNorm's statistics
    sample = torch.randn(batch_size, 1, 28, 28, device=next(model.parameters()).device)
    try:
        return torch.cuda.make_graphed_callables(GraphedForward(model, bf16), (sample,))
    finally:
        model.load_state_dict(state)


@torch.no_grad()
def capture_weight_average(ema, model):
    """The average's update from `model` recorded as one CUDA graph (torch.cuda.CUDAGraph), which each later update
    replays: one launch instead of about ten. The capture leaves the average as it was."""
    state = copy.deepcopy(ema.state_dict())
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        ema.update_parameters(model)  # a warm-up outside the graph, as capture requires; undone below
    torch.cuda.current_stream().wait_stream(side)
    ema.load_state_dict(state)
    graph = torch.cuda.CUDAGraph()
    try:
        with torch.cuda.graph(graph):
            ema.update_parameters(model)
    finally:
        ema.load_state_dict(state)
    return graph


def first_line(error):
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def speed_up(model, config, ema=None):
    """Switch on every trick that suits `config`, the model and its device: `model` and `ema` (the weight
    average built from it) are changed in place, the rest is in the Speed returned.

    The average gets the same max-pools and memory layout (on a CPU, the channels-last one even where the model
    keeps NCHW). A trick that cannot run here is skipped with a note in Speed.names: bf16 where this torch cannot
    tell whether the CPU has it or a layer cannot run under autocast, channels-last pooling in a model without
    max-pools, CUDA graphs whose capture fails.
    """
    device = next(model.parameters()).device
    on_cpu = device.type == "cpu"
    networks = [model] + ([ema.module] if ema is not None else [])
    speed = Speed(batch_size=config.batch_size)
    if config.channels_last_pooling and not config.channels_last and on_cpu:
        if any(type(layer) is nn.MaxPool2d for layer in model.modules()):
            for network in networks:
                pool_in_channels_last(network)
            speed.names.append("channels-last max-pooling")
        else:
            speed.names.append("no channels-last max-pooling (the model has no nn.MaxPool2d)")
    if config.channels_last:
        for network in networks:
            network.to(memory_format=torch.channels_last)
        speed.names.append("channels-last layout")
    if config.channels_last_evaluation and ema is not None and not config.channels_last and on_cpu:
        # a 1-channel batch is channels-last already, so the convolutions run their channels-last kernels
        ema.module.to(memory_format=torch.channels_last)
        speed.names.append("channels-last evaluation")
    if use_bf16(config.precision, device):
        error = autocast_fails(model, device)
        speed.bf16 = error is None
        speed.names.append("bf16 autocast" if error is None else f"no bf16 autocast ({first_line(error)})")
    elif config.precision == "auto" and on_cpu and cpu_has_bf16() is None:
        speed.names.append(f"no bf16 autocast (torch {torch.__version__} cannot tell whether this CPU has bf16)")
    if use_cuda_graphs(config, device):
        try:
            speed.graphed = capture_cuda_graphs(model, config.batch_size, speed.bf16)
            speed.average_graph = capture_weight_average(ema, model) if ema is not None else None
            speed.names.append("CUDA graphs")
        except Exception as error:  # another GPU or torch may not capture: the run goes on with the plain step
            speed.graphed = speed.average_graph = None
            speed.names.append(f"no CUDA graphs (their capture failed: {first_line(error)})")
    return speed
