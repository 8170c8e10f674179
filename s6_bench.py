"""Benchmark S6's fast training path against the conventional torchvision pipeline.

    python s6_bench.py                 # throughput, FLOPs, GFLOP/s -> results/bench.json + README table
    python s6_bench.py --full          # also a full run of each: seconds to 99.4% test accuracy

All ways train the same model in this one process, alternating, for several repetitions; the
medians are reported with the ratio of the first two. "conventional": torchvision MNIST, per-sample
PIL RandomAffine, DataLoader, fp32, NCHW. "fast": the default TrainConfig (tensors on the device,
batched augmentation; on a CPU bf16 autocast where it has it and max-pooling in channels-last
layout; CUDA graphs on a GPU). "quick": the fast way with the quick recipe (a few epochs), whose
full run is timed against the fast one's. All update the weight average (EMA) every step, as a
real run does.
"""

import copy
import dataclasses
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from s6.cli import (
    add_config_flags,
    add_overwrite_flag,
    add_run_flags,
    apply_threads,
    config_from_args,
    markdown_table,
    parser_for,
    positive_int,
    refuse_to_replace,
    run_main,
)
from s6.config import TrainConfig
from s6.data import FirstBatches
from s6.speed import release, use_bf16
from s6_model import count_parameters
from s6_utils import (
    TARGET_ACC,
    build_model,
    evaluate,
    evaluated,
    fit,
    get_device,
    machine_name,
    save_json,
    set_up,
    train_one_epoch,
)


def ways(base):
    """The configs benchmarked: the default recipe both ways, and the quick recipe the fast way."""
    conventional = dataclasses.replace(base, pipeline="torchvision", precision="fp32", channels_last=False,
                                       channels_last_pooling=False, channels_last_evaluation=False, cuda_graphs=False)
    quick = TrainConfig(model=base.model, recipe="quick", device=base.device, data_dir=base.data_dir)
    return {"conventional": conventional, "fast": base, "quick": quick}


class Trainer:
    """One way of training, set up once as `fit` sets it up, so that repetitions time the training steps alone."""

    def __init__(self, config, device):
        self.config, self.device = config, device
        self.run = set_up(config, device)  # the weight average is part of every step of a real run, so timed too
        self.bf16 = use_bf16(config.precision, device)
        self.epoch = 0

    def train(self, batches):
        self.epoch += 1
        run = self.run
        train_one_epoch(run.model, FirstBatches(run.train_loader, batches), run.optimizer, run.scheduler,
                        self.config, self.epoch, run.ema, progress=False)

    def images_per_second(self, batches):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        self.train(batches)  # ends by reading the loss, which waits for the device
        return batches * self.config.batch_size / (time.perf_counter() - started)


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


def in_span(name, function):
    def spanned(*args):
        with torch.profiler.record_function(name):
            return function(*args)
    return spanned


# The spans: the four above, and those torch.optim opens itself; the backward is the autograd engine's work
SPANS = {"data": "data", "forward": "forward", "Optimizer.zero_grad#SGD.zero_grad": "optimizer",
         "Optimizer.step#SGD.step": "optimizer", "weight average": "weight average"}
BACKWARD = "autograd::engine::evaluate_function"


def step_phases(run, config, batches):
    """Seconds in each phase of `batches` steps of the real train_one_epoch, from torch.profiler (CPU time).

    Spans are opened around the loader's batches, the model's forward and the weight average's update from
    outside the loop, which runs as in training; "other" is the rest of the epoch's wall-clock seconds (the
    loss, the running sums, the schedule, and the profiler's own overhead, which inflates every phase a little).
    """
    model, ema = run.model, run.ema
    model.forward = in_span("forward", model.forward)
    if ema is not None:
        ema.update_parameters = in_span("weight average", ema.update_parameters)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
        started = time.perf_counter()
        train_one_epoch(model, SpannedBatches(FirstBatches(run.train_loader, batches)), run.optimizer,
                        run.scheduler, config, epoch=1, ema=ema, progress=False)
        total = time.perf_counter() - started
    release(model)
    seconds = dict.fromkeys(["data", "forward", "backward", "optimizer", "weight average"], 0.0)
    for event in profiler.events():
        phase = "backward" if event.name.startswith(BACKWARD) else SPANS.get(event.name)
        if phase:
            seconds[phase] += event.cpu_time_total / 1e6
    return {**seconds, "other": total - sum(seconds.values())}


# what a fresh process does before a run's first epoch: import, then read MNIST (checksums included) and set up
START_UP = ("import json, sys, s6_utils; config = s6_utils.TrainConfig(**json.loads(sys.argv[1])); "
            "s6_utils.set_up(config, s6_utils.get_device(config.device))")


def seconds_of_process(*args):
    started = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, cwd=Path(__file__).resolve().parent)
    return time.perf_counter() - started


def evaluation_seconds(run, reps=5):
    """Median seconds of one evaluation of the run's network as the run evaluates it, and of the same network
    in NCHW layout (as without channels-last evaluation), timed in turns."""
    network = evaluated(run.model, run.ema)
    nchw = copy.deepcopy(network)
    release(nchw)
    nchw.to(memory_format=torch.contiguous_format)
    seconds = {"as_run": [], "nchw": []}
    for _ in range(reps):
        for name, model in (("as_run", network), ("nchw", nchw)):
            started = time.perf_counter()
            evaluate(model, run.eval_loader)  # ends by reading the sums, which waits for the device
            seconds[name].append(time.perf_counter() - started)
    return {name: statistics.median(times) for name, times in seconds.items()}


def profile(config, device, batches):
    """Where a run's seconds go before its epochs (start-up, in a fresh process) and in them (the phases of
    `batches` training steps, one evaluation)."""
    imports = seconds_of_process("-c", "import s6_utils")
    start_up = seconds_of_process("-c", START_UP, json.dumps(config.to_dict()))
    run = set_up(config, device)
    phases = step_phases(run, config, batches)
    evaluation = evaluation_seconds(run)
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
        if record["test_acc"] is not None and record["test_acc"] >= target:
            return elapsed
    return None


def run(args):
    base = config_from_args(args)
    device = get_device(base.device)
    compared = ways(base)
    trainers = {name: Trainer(config, device) for name, config in compared.items()}
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
                                         final_test_acc=history[-1]["test_acc"])
        quick, fast = (results["ways"][name]["seconds_to_target"] for name in ("quick", "fast"))
        results["quick_to_fast_seconds_to_target"] = quick / fast if quick and fast else None
        results["ways"]["quick"]["profile"] = profile(configs["quick"], device, args.batches)
    return results


def table(results):
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
    if "profile" in results["ways"].get("quick", {}):
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
    add_config_flags(parser, ["device", "data_dir"])
    add_run_flags(parser, out="results/bench.json", progress=False)
    add_overwrite_flag(parser, "the results file")
    args = parser.parse_args(argv)
    refuse_to_replace([args.out], args.overwrite)
    apply_threads(args)
    results = run(args)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    save_json(args.out, results)
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
