"""Speed: the CPU- and GPU-specific tricks, all switched on by one call, `speed_up`.

Channels-last pooling and the layouts compute the same values (the tests compare values and gradients);
bf16 autocast rounds differently, and moves a run's result by less than seeds differ. The plain training
loop knows nothing of them:

- bfloat16 autocast for the training forward, on a CPU with AVX-512-BF16 or AMX;
- max-pooling in channels-last layout on a CPU (`MaxPool2dNHWC`);
- the channels-last memory layout, when the config asks for it;
- on a CPU, the weight average (the network evaluated, never trained) in channels-last layout;
- CUDA graphs on a GPU: the forward and backward of every full batch, and the weight average's update.

doc/performance.md has the measurements behind each.
"""

import copy
import warnings
from functools import partial

import torch
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


def use_channels_last_pooling(config, device):
    """Whether to swap the model's max-pools for MaxPool2dNHWC: on a CPU, for an NCHW model only."""
    return config.channels_last_pooling and not config.channels_last and torch.device(device).type == "cpu"


def use_channels_last_evaluation(config, device, ema):
    """Whether to keep the weight average in channels-last layout: on a CPU, where there is one (the network
    trained stays as it is), unless the whole model is channels-last already."""
    return (config.channels_last_evaluation and ema is not None and not config.channels_last
            and torch.device(device).type == "cpu")


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
    """Replace every nn.MaxPool2d in `model` with an equivalent MaxPool2dNHWC, in place."""
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if type(child) is nn.MaxPool2d and not child.return_indices:
                setattr(parent, name, MaxPool2dNHWC(child.kernel_size, child.stride, child.padding,
                                                    child.dilation, ceil_mode=child.ceil_mode))
    return model


def _fast_forward(model, images, bf16, channels_last):
    """The model's own forward, in channels-last layout and, while training, under bfloat16 autocast.

    The logits come back in fp32, for the loss. Autocast's weight cache stays off: CUDA
    graphs require it, and each weight is used once per forward anyway.
    """
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=bf16 and model.training,
                        cache_enabled=False):
        return type(model).forward(model, images).float()


def _channels_last_forward(model, images):
    """The model's own forward on a channels-last copy of the batch, for a model whose weights are channels-last:
    PyTorch's CPU convolutions then run their channels-last kernels (measured 1.5x faster for Net's evaluation,
    with the same predictions; doc/performance.md)."""
    return type(model).forward(model, images.contiguous(memory_format=torch.channels_last))


def capture_cuda_graphs(model, batch_size, ema=None):
    """Make `model`'s training forward and backward replay as CUDA graphs for batches of `batch_size`,
    and the weight average's update too.

    torch.cuda.make_graphed_callables captures each pass once; a replay then launches all of its kernels
    at once. Batches of another size (an epoch's last) and eval mode run the ordinary forward.
    """
    # The capture warms up on a side stream, and the first real backward then warns once that the
    # parameters' gradient accumulators were made there: expected, and harmless here.
    warnings.filterwarnings("ignore", message="The AccumulateGrad node's stream does not match")
    eager_forward = model.forward
    state = copy.deepcopy(model.state_dict())  # the capture's warm-up passes update BatchNorm's statistics
    sample = torch.randn(batch_size, 1, 28, 28, device=next(model.parameters()).device)
    torch.cuda.make_graphed_callables(model, (sample,))
    model.load_state_dict(state)
    graphed_forward = model.forward
    model.forward = lambda images: (graphed_forward if len(images) == batch_size else eager_forward)(images)
    if ema is not None:
        capture_weight_average(ema, model)


@torch.no_grad()
def capture_weight_average(ema, model):
    """Record the average's update from `model` as one CUDA graph, which every later update replays."""
    state = copy.deepcopy(ema.state_dict())
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        ema.update_parameters(model)  # a warm-up outside the graph, as capture requires; undone below
    torch.cuda.current_stream().wait_stream(side)
    ema.load_state_dict(state)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        ema.update_parameters(model)
    ema.update_parameters = lambda _model: graph.replay()  # one launch instead of about ten


def speed_up(model, config, ema=None):
    """Switch on every trick that suits `config` and the model's device, in place. Returns their names, and
    a note for a trick skipped because this torch release cannot tell whether the hardware has it.

    `ema`, the weight average built from `model`, gets the same max-pools and memory layout (on a CPU, the
    channels-last one even where the model keeps NCHW), and on CUDA its update is captured too.
    `release(model)` turns the forward back into the class's own.
    """
    device = next(model.parameters()).device
    networks = [model] + ([ema.module] if ema is not None else [])
    tricks = []
    if use_channels_last_pooling(config, device):
        for network in networks:
            pool_in_channels_last(network)
        tricks.append("channels-last max-pooling")
    if config.channels_last:
        for network in networks:
            network.to(memory_format=torch.channels_last)
        tricks.append("channels-last layout")
    if use_channels_last_evaluation(config, device, ema):
        ema.module.to(memory_format=torch.channels_last)
        ema.module.forward = partial(_channels_last_forward, ema.module)
        tricks.append("channels-last evaluation")
    bf16 = use_bf16(config.precision, device)
    if bf16:
        tricks.append("bf16 autocast")
    elif config.precision == "auto" and device.type == "cpu" and cpu_has_bf16() is None:
        tricks.append(f"no bf16 autocast (torch {torch.__version__} cannot tell whether this CPU has bf16)")
    if bf16 or config.channels_last:
        # a partial of the model itself, unlike a closure, follows the model into deep copies
        model.forward = partial(_fast_forward, model, bf16=bf16, channels_last=config.channels_last)
    if use_cuda_graphs(config, device):
        capture_cuda_graphs(model, config.batch_size, ema)
        tricks.append("CUDA graphs")
    return tricks


def release(model):
    """Back to the class's own forward, so that copies and later uses see an ordinary module."""
    vars(model).pop("forward", None)
