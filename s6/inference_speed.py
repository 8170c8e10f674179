"""How fast a trained network reads digits on a CPU: PyTorch's eager evaluation, ways of speeding it up that stay
in PyTorch (and in fp32), and ONNX Runtime with the fp32 and int8 files of s6.export.

Every way is a function from float32 images (N, 1, 28, 28), normalised, to logits float32 (N, 10). `benchmark`
times them in turns, so that a slow spell of a shared machine falls on all of them alike, and `predictions`
says whether each reads the test set as eager PyTorch does.
"""

import copy
import statistics
import time
import warnings

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from s6.export import plain_copy, session
from s6.speed import pool_in_channels_last

BASELINE = "pytorch eager"
# images timed per repetition at each batch size: about a tenth of a second of Net at batch 1 on one core
BATCHES = {1: 200, 1000: 1000}


def fold_batchnorm(model):
    """A copy of `model` (eval mode) with each BatchNorm2d folded into the convolution before it
    (torch.nn.utils.fusion.fuse_conv_bn_eval), which then has a bias; the BatchNorm becomes an Identity."""
    folded = copy.deepcopy(model).eval()
    for block in folded.modules():
        if isinstance(block, nn.Sequential):
            for i in range(len(block) - 1):
                if isinstance(block[i], nn.Conv2d) and isinstance(block[i + 1], nn.BatchNorm2d):
                    block[i], block[i + 1] = fuse_conv_bn_eval(block[i], block[i + 1]), nn.Identity()
    return folded


def _pytorch(module, channels_last=False):
    """`module` as a way: numpy in, numpy out, under inference_mode; with `channels_last`, each batch is
    turned into that layout first, as an evaluation would have to."""
    layout = torch.channels_last if channels_last else torch.contiguous_format

    @torch.inference_mode()
    def forward(images):
        return module(torch.from_numpy(images).contiguous(memory_format=layout)).numpy()
    return forward


def _torchscript(model):
    """torch.jit.freeze then torch.jit.optimize_for_inference of the scripted network, or None where this torch
    cannot (TorchScript is deprecated from torch 2.10 on)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.script(plain_copy(model))))
    except Exception:  # any failure means only that this torch offers no such way
        return None


def pytorch_ways(model):
    """{name: way} of PyTorch on the CPU, all fp32: plain eager, then speed-ups."""
    plain = plain_copy(model)
    ways = {
        BASELINE: _pytorch(plain),
        # the max-pools s6.speed.speed_up swaps in on a CPU, alone
        "eager, channels-last max-pool": _pytorch(pool_in_channels_last(plain_copy(model))),
        "BatchNorm folded": _pytorch(fold_batchnorm(plain)),
        "channels-last layout": _pytorch(plain_copy(model).to(memory_format=torch.channels_last), True),
        "BatchNorm folded, channels-last layout": _pytorch(fold_batchnorm(plain).to(memory_format=torch.channels_last),
                                                           True),
    }
    scripted = _torchscript(model)
    if scripted is not None:
        ways["TorchScript frozen, optimize_for_inference"] = _pytorch(scripted)
    return ways


def onnx_ways(files, threads):
    """{name: way} of ONNX Runtime for each {name: ONNX file path}, with `threads` intra-op threads."""
    def way(path):
        reader = session(path, threads)
        return lambda images: reader.run(["logits"], {"image": images})[0]
    return {name: way(path) for name, path in files.items()}


def images_per_second(way, images, batch_size):
    """Images per second of `way` on `images` (float32 (N, 1, 28, 28)) cut into batches of `batch_size`."""
    start = time.perf_counter()
    for i in range(0, len(images), batch_size):
        way(images[i:i + batch_size])
    return len(images) / (time.perf_counter() - start)


def benchmark(ways, images, repeats=7, batches=BATCHES):
    """{"batch B": {name: median images/s}} for each batch size B of `batches` ({B: images per repetition},
    from `images`), and the same as ratios to BASELINE. Each repetition times every way once, in turn, after
    one warm-up pass of each."""
    timings = {size: {name: [] for name in ways} for size in batches}
    for repetition in range(repeats + 1):
        for size, count in batches.items():
            for name, way in ways.items():
                speed = images_per_second(way, images[:count], size)
                if repetition:  # the first is the warm-up
                    timings[size][name].append(speed)
    speeds = {f"batch {size}": {name: round(statistics.median(runs), 1) for name, runs in by_way.items()}
              for size, by_way in timings.items()}
    ratios = {batch: {name: round(speed / by_way[BASELINE], 3) for name, speed in by_way.items()}
              for batch, by_way in speeds.items()}
    return {"images_per_second": speeds, f"ratio_to_{BASELINE.replace(' ', '_')}": ratios}


def predictions(ways, images, batch_size=1000):
    """{name: {"identical_predictions", "disagreements", "max_logit_difference"}}: how each way's logits for
    `images` compare with BASELINE's (bf16 or any other rounding would show here; these are all fp32 but int8)."""
    logits = {name: np.concatenate([way(images[i:i + batch_size]) for i in range(0, len(images), batch_size)])
              for name, way in ways.items()}
    reference = logits[BASELINE]
    compared = {}
    for name, values in logits.items():
        disagreements = int(np.sum(values.argmax(1) != reference.argmax(1)))
        compared[name] = {"identical_predictions": disagreements == 0, "disagreements": disagreements,
                          "max_logit_difference": float(np.abs(values - reference).max())}
    return compared
