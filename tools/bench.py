"""Benchmark S6's fast training path against the conventional torchvision pipeline.

    python -m tools.bench              # throughput, FLOPs, GFLOP/s -> results/bench.json, and its table
    python -m tools.bench --full       # also a full run of each: seconds to 99.4% test accuracy

All ways train the same model in this one process, alternating, for several repetitions; the
medians are reported with the ratio of the first two. "conventional": torchvision MNIST, per-sample
PIL RandomAffine, DataLoader, fp32, NCHW. "fast": the default TrainConfig (tensors on the device,
batched augmentation; on a CPU bf16 autocast where it has it and max-pooling in channels-last
layout; CUDA graphs on a GPU). "quick": the fast way with the quick recipe (a few epochs), whose
full run is timed against the fast one's. All update the weight average (EMA) every step, as a
real run does.
"""

import contextlib
import copy
import dataclasses
import json
import math
import statistics
import subprocess
import sys
import time
from itertools import chain, islice, repeat
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from s6.cli import (
    add_config_flags,
    add_overwrite_flag,
    add_run_flags,
    apply_threads,
    config_from_args,
    parser_for,
    positive_int,
    run_main,
)
from s6.config import TARGET_ACC, get_device, machine_name, recipe
from s6.data import make_loaders
from s6.files import save_json, writing
from s6.networks import build_model
from s6.results import accuracy, markdown_table
from s6.training import evaluate, evaluated, fit, set_up, train_one_epoch
from s6_model import count_parameters


def ways(base):
    """The configs benchmarked: the default recipe both ways, and the quick recipe the fast way."""
    conventional = dataclasses.replace(base, pipeline="torchvision", precision="fp32", channels_last=False,
                                       channels_last_pooling=False, channels_last_evaluation=False, cuda_graphs=False)
    quick = recipe("quick", base.model, device=base.device, data_dir=base.data_dir)
    return {"conventional": conventional, "fast": base, "quick": quick}


class Batches:
    """`count` batches of `loader`, passing over it again where one pass holds fewer; `images` counts the images
    the last iteration yielded (an epoch's last batch is smaller than the others)."""

    def __init__(self, loader, count):
        self.loader, self.count, self.images = loader, count, 0

    def __len__(self):
        return self.count

    def __iter__(self):
        self.images = 0
        for images, labels in islice(chain.from_iterable(repeat(self.loader)), self.count):
            self.images += len(labels)
            yield images, labels


class Trainer:
    """One way of training, set up once as `fit` sets it up, so that repetitions time the training steps alone.
    Its schedule is sized for `steps` training steps: the benchmark may take more than the recipe's epochs hold."""

    def __init__(self, config, device, steps):
        self.config, self.device = config, device
        self.train_loader, self.eval_loader = make_loaders(config, device)
        sized = dataclasses.replace(config, epochs=max(config.epochs, math.ceil(steps / len(self.train_loader))))
        # the weight average is part of every step of a real run, so timed too
        self.run = set_up(sized, device, len(self.train_loader))
        self.bf16 = self.run.speed.bf16  # what ran: bf16 may be skipped where a layer cannot run under it
        self.epoch = 0

    def train(self, batches):
        """Train `batches` steps; returns the number of images they held."""
        self.epoch += 1
        loader = Batches(self.train_loader, batches)
        train_one_epoch(self.run, loader, self.config, self.epoch, progress=False)
        return loader.images

    def images_per_second(self, batches):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        images = self.train(batches)  # ends by reading the loss, which waits for the device
        return images / (time.perf_counter() - started)


class SpannedBatches:
    """A loader whose every batch is fetched inside a profiler span named "data"."""

    def __init__(self, batches):
        self.batches = batches

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        batches = iter(self.batches)
        while True:
            with torch.profiler.record_function("data"):
                batch = next(batches, None)
            if batch is None:
                return
            yield batch


@contextlib.contextmanager
def forward_spans(model):
    """A profiler span named "forward" around each forward pass of `model`, opened and closed by module hooks that
    are removed on leaving: the model itself is left as it was."""
    spans = []

    def open_span(module, inputs):
        spans.append(torch.profiler.record_function("forward").__enter__())

    def close_span(module, inputs, output):
        spans.pop().__exit__(None, None, None)

    hooks = [model.register_forward_pre_hook(open_span), model.register_forward_hook(close_span)]
    try:
        yield
    finally:
        for hook in hooks:
            hook.remove()


# The spans: the data's and the forward's opened here, the weight average's (s6.training.WeightEMA) and those
# torch.optim opens itself; the backward is the autograd engine's work
SPANS = {"data": "data", "forward": "forward", "Optimizer.zero_grad#SGD.zero_grad": "optimizer",
         "Optimizer.step#SGD.step": "optimizer", "weight average": "weight average"}
BACKWARD = "autograd::engine::evaluate_function"


def step_phases(run, loader, config, batches):
    """Seconds in each phase of `batches` steps of the real train_one_epoch, from torch.profiler (CPU time).

    Spans are opened around the loader's batches and the model's forward from outside the loop, which runs as in
    training; "other" is the rest of the epoch's wall-clock seconds (the loss, the running sums, the schedule, and
    the profiler's own overhead, which inflates every phase a little).
    """
    spanned = SpannedBatches(Batches(loader, batches))
    with forward_spans(run.model), torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
        started = time.perf_counter()
        train_one_epoch(run, spanned, config, epoch=1, progress=False)
        total = time.perf_counter() - started
    seconds = dict.fromkeys(["data", "forward", "backward", "optimizer", "weight average"], 0.0)
    for event in profiler.events():
        phase = "backward" if event.name.startswith(BACKWARD) else SPANS.get(event.name)
        if phase:
            seconds[phase] += event.cpu_time_total / 1e6
    return {**seconds, "other": total - sum(seconds.values())}


# what a fresh process does before a run's first epoch: import, then read MNIST (checksums included) and set up
START_UP = ("import json, sys, s6_utils; config = s6_utils.TrainConfig(**json.loads(sys.argv[1])); "
            "device = s6_utils.get_device(config.device); "
            "s6_utils.set_up(config, device, len(s6_utils.make_loaders(config, device)[0]))")


def seconds_of_process(*args):
    started = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, cwd=Path(__file__).resolve().parent.parent)
    return time.perf_counter() - started


def evaluation_seconds(run, loader, reps=5):
    """Median seconds of one evaluation of the run's network as the run evaluates it, and of the same network
    in NCHW layout (as without channels-last evaluation), timed in turns."""
    network = evaluated(run.model, run.ema)
    nchw = copy.deepcopy(network).to(memory_format=torch.contiguous_format)
    seconds = {"as_run": [], "nchw": []}
    for _ in range(reps):
        for name, model in (("as_run", network), ("nchw", nchw)):
            started = time.perf_counter()
            evaluate(model, loader)  # ends by reading the sums, which waits for the device
            seconds[name].append(time.perf_counter() - started)
    return {name: statistics.median(times) for name, times in seconds.items()}


def profile(config, device, batches):
    """Where a run's seconds go before its epochs (start-up, in a fresh process) and in them (the phases of
    `batches` training steps, one evaluation)."""
    imports = seconds_of_process("-c", "import s6_utils")
    start_up = seconds_of_process("-c", START_UP, json.dumps(config.to_dict()))
    trainer = Trainer(config, device, batches)
    phases = step_phases(trainer.run, trainer.train_loader, config, batches)
    evaluation = evaluation_seconds(trainer.run, trainer.eval_loader)
    return {"python_and_imports_seconds": imports, "read_mnist_and_set_up_seconds": start_up - imports,
            "batches": batches, "step_phase_seconds": phases, "evaluation_seconds": evaluation["as_run"],
            "evaluation_seconds_nchw": evaluation["nchw"]}


def flops_per_training_image(config, device):
    """Forward and backward FLOPs of one training step, divided by the batch size (fp32 count)."""
    model = build_model(config, device)
    images = torch.randn(config.batch_size, 1, 28, 28, device=device)
    labels = torch.randint(0, 10, (config.batch_size,), device=device)
    with FlopCounterMode(display=False) as counter:
        torch.nn.functional.cross_entropy(model(images), labels).backward()
    return counter.get_total_flops() / config.batch_size


def matmul_gflops(device, n=2048, repeats=10):
    """fp32 GFLOP/s of a large square matmul on this device: the yardstick for achieved GFLOP/s."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    return 2 * n ** 3 * repeats / (time.perf_counter() - started) / 1e9


def seconds_to_target(history, target=TARGET_ACC):
    """Seconds of training and evaluation until the first evaluated epoch at or above the target, or None."""
    elapsed = 0.0
    for record in history:
        elapsed += record["seconds"]
        if accuracy(record) is not None and accuracy(record) >= target:
            return elapsed
    return None


def run(args):
    base = config_from_args(args)
    device = get_device(base.device)
    compared = ways(base)
    steps = args.warmup + args.reps * args.batches
    trainers = {name: Trainer(config, device, steps) for name, config in compared.items()}
    for trainer in trainers.values():
        trainer.train(args.warmup)
    rates = {name: [] for name in trainers}
    for _ in range(args.reps):
        for name, trainer in trainers.items():
            rates[name].append(trainer.images_per_second(args.batches))
    flops = flops_per_training_image(base, device)
    peak = matmul_gflops(device)
    results = {"device": str(device), "machine": machine_name(device), "torch": torch.__version__,
               "model": base.model, "parameters": count_parameters(trainers["fast"].run.model),
               "batch_size": base.batch_size, "reps": args.reps, "batches_per_rep": args.batches,
               "flops_per_training_image": flops, "matmul_fp32_gflops": peak, "ways": {}}
    for name, trainer in trainers.items():
        median = statistics.median(rates[name])
        results["ways"][name] = {
            "config": trainer.config.to_dict(), "bf16": trainer.bf16, "images_per_second": rates[name],
            "median_images_per_second": median, "seconds_per_epoch": 60_000 / median,
            "achieved_gflops": flops * median / 1e9, "fraction_of_matmul": flops * median / 1e9 / peak,
        }
    results["speedup"] = (results["ways"]["fast"]["median_images_per_second"]
                          / results["ways"]["conventional"]["median_images_per_second"])
    if args.full:
        configs = ways(base)
        # quick first and fast next: the two compared run back to back, where the CPU's speed drifts least
        for name in ("quick", "fast", "conventional"):
            _, history = fit(configs[name], progress=False, log=lambda *_: None)
            results["ways"][name].update(full_run_seconds=sum(r["seconds"] for r in history),
                                         seconds_to_target=seconds_to_target(history),
                                         final_test_acc=accuracy(history[-1]))
        quick, fast = (results["ways"][name]["seconds_to_target"] for name in ("quick", "fast"))
        results["quick_to_fast_seconds_to_target"] = quick / fast if quick and fast else None
        results["ways"]["quick"]["profile"] = profile(configs["quick"], device, args.batches)
    return results


def table(results, profile=True):
    """The benchmark's table of `results` (its record), the speed-up and the setting, and with `profile` the quick
    run's profile."""
    rows = []
    for name, way in results["ways"].items():
        to_target = way.get("seconds_to_target")
        rows.append({
            "pipeline": name,
            "precision": "bf16 autocast" if way["bf16"] else "fp32",
            "train images/s (median)": f"{way['median_images_per_second']:,.0f}",
            "s/epoch (training)": f"{way['seconds_per_epoch']:.1f}",
            "GFLOP/s": f"{way['achieved_gflops']:.1f}",
            "of fp32 matmul": f"{way['fraction_of_matmul']:.1%}",
            f"s to {TARGET_ACC}% (full run)": f"{to_target:.0f}" if to_target else "not measured",
        })
    quick = results.get("quick_to_fast_seconds_to_target")
    quick = f"The quick recipe reached {TARGET_ACC}% in {quick:.2f} of the fast run's seconds. " if quick else ""
    text = (markdown_table(rows) + f"\n\nSpeed-up of the fast path: {results['speedup']:.2f}x. {quick}"
            f"{results['model']} ({results['parameters']:,} parameters), batch {results['batch_size']}, "
            f"{results['flops_per_training_image'] / 1e6:.1f} MFLOP per training image, on "
            f"{results['machine']} (fp32 matmul: {results['matmul_fp32_gflops']:.0f} GFLOP/s); "
            f"median of {results['reps']} alternating repetitions of {results['batches_per_rep']} batches.")
    if profile and "profile" in results["ways"].get("quick", {}):
        text += "\n\n" + profile_text(results["ways"]["quick"]["profile"])
    return text


def profile_text(profile):
    """One paragraph: where a quick run's seconds go, from `profile`."""
    phases = profile["step_phase_seconds"]
    steps = sum(phases.values())
    shares = ", ".join(f"{name} {seconds / steps:.1%}" for name, seconds in phases.items())
    imports, set_up_seconds = profile["python_and_imports_seconds"], profile["read_mnist_and_set_up_seconds"]
    return (f"Quick run profile: {imports + set_up_seconds:.1f} s before the first epoch (Python and imports "
            f"{imports:.1f} s, reading MNIST and setting up {set_up_seconds:.1f} s); {profile['batches']} training "
            f"steps took {steps:.2f} s ({shares}); one evaluation of the 10,000 test images took "
            f"{profile['evaluation_seconds']:.2f} s ({profile['evaluation_seconds_nchw']:.2f} s in NCHW layout).")


def main(argv=None):
    parser = parser_for(__doc__)
    parser.add_argument("--reps", type=positive_int, default=9,
                        help="alternating repetitions per pipeline; the median evens out a CPU's drifting speed")
    parser.add_argument("--batches", type=positive_int, default=100, help="training batches per repetition")
    parser.add_argument("--warmup", type=positive_int, default=10, help="untimed batches per pipeline first")
    parser.add_argument("--full", action="store_true", help="also time a full default run of each pipeline")
    add_config_flags(parser, ["device", "data_dir"], recipes=False)
    add_run_flags(parser, out="results/bench.json", progress=False)
    add_overwrite_flag(parser, "the results file")
    args = parser.parse_args(argv)
    with writing([args.out], args.overwrite):
        apply_threads(args)
        results = run(args)
        save_json(args.out, results)
        print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
