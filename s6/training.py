"""Training: set-up, the training step and the epoch around it, evaluation, the weight average, and `fit`,
which runs them all."""

import contextlib
import copy
import json
import random
import time
from dataclasses import replace
from itertools import chain
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from s6.checkpoints import restore_checkpoint, save_model
from s6.config import TrainConfig, UserError, eval_set, get_device, recipe_of, seed_everything
from s6.data import make_loaders
from s6.files import writable_folder
from s6.networks import build_model, check_arguments, check_network, network_name
from s6.results import accuracy, prefix, prefix_of
from s6.runs import check_fresh, check_room, remove_made_from_weights, remove_run, run_lock, save_epoch
from s6.speed import Speed, speed_up
from s6_model import count_parameters


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


# How often (in batches) an epoch reads its running loss, to stop a diverged run and update the progress bar.
# Reading a device value makes the host wait for a GPU's queue, so not every batch.
CHECK_EVERY = 20


def build_optimizer(model, config, steps_per_epoch):
    """SGD with Nesterov momentum, and the config's learning-rate schedule, which is stepped after every batch."""
    # on CUDA one fused kernel per step instead of several multi-tensor ones: a GPU step here is launch-bound
    fused = True if next(model.parameters()).is_cuda else None
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                nesterov=True, weight_decay=config.weight_decay, fused=fused)
    total_steps = config.epochs * steps_per_epoch
    schedules = torch.optim.lr_scheduler
    if config.schedule == "step":
        return optimizer, schedules.MultiStepLR(optimizer, [total_steps // 2, total_steps * 3 // 4], gamma=0.1)
    if config.schedule == "constant":
        return optimizer, schedules.ConstantLR(optimizer, factor=1.0, total_iters=0)
    # OneCycleLR divides by the warm-up's length in steps minus one: a warm-up of exactly one step (a
    # smoke run of five batches) would divide by zero, so such a warm-up gets two steps
    pct_start = config.pct_start if config.pct_start * total_steps != 1 else 2 / total_steps
    scheduler = schedules.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=total_steps, pct_start=pct_start,
        # rounded, so that the default momentum 0.9 gives exactly OneCycleLR's own 0.85 and 0.95
        base_momentum=round(config.momentum - 0.05, 10), max_momentum=round(config.momentum + 0.05, 10))
    return optimizer, scheduler


class WeightEMA(nn.Module):
    """An exponential moving average of a model's weights and BatchNorm statistics, evaluated instead of it.

    What torch.optim.swa_utils.AveragedModel(use_buffers=True) does with an EMA, and with the same
    state_dict keys, but its update never reads a device value on the host: AveragedModel checks its
    step counter on the host twice per step, and each check makes the CPU wait for a GPU's queue.
    """

    def __init__(self, model, decay):
        super().__init__()
        self.module = copy.deepcopy(model)
        self.decay = decay
        device = next(model.parameters()).device
        self.register_buffer("n_averaged", torch.zeros((), dtype=torch.long, device=device))

    @torch.no_grad()
    def update_parameters(self, model):
        with torch.profiler.record_function("weight average"):  # named in profiles, as torch.optim's steps are
            averaged = list(chain(self.module.parameters(), self.module.buffers()))
            current = list(chain(model.parameters(), model.buffers()))
            floats = [i for i, t in enumerate(averaged) if t.is_floating_point()]
            counters = [i for i, t in enumerate(averaged) if not t.is_floating_point()]  # num_batches_tracked
            # keep 0 at the first update (a copy), then (1 + t) / (10 + t) up to `decay`: the random initial
            # weights are forgotten within a few steps; computed on the device, so nothing waits for it
            n = self.n_averaged
            keep = torch.where(n == 0, 0.0, torch.clamp((1 + n) / (10 + n), max=self.decay))
            torch._foreach_mul_([averaged[i] for i in floats], keep)
            torch._foreach_add_([averaged[i] for i in floats],
                                torch._foreach_mul([current[i] for i in floats], 1 - keep))
            if counters:  # a network without BatchNorm has none
                torch._foreach_copy_([averaged[i] for i in counters], [current[i] for i in counters])
            self.n_averaged += 1


def build_ema(model, config):
    """The moving average of the weights (BatchNorm statistics included) that is evaluated, or None."""
    return WeightEMA(model, config.ema_decay) if config.ema_decay else None


def evaluated(model, ema):
    """The network whose accuracy is reported: the moving average where there is one."""
    return ema.module if ema is not None else model


class Run(NamedTuple):
    """Everything a training run updates, built by `set_up`, and the config it trains with."""

    config: TrainConfig  # the config given, its model named for the network trained (see `network_name`)
    model: nn.Module  # the network trained
    ema: WeightEMA | None  # its weight average, the network evaluated (see `evaluated`), or None
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    speed: Speed  # the speed tricks switched on (speed.names says which, and which were skipped and why)
    notes: list  # what a user should know before the run: a network of their own over its budget


def set_up(config, device, steps_per_epoch, model=None, budget=None):
    """Seed, then build the model, the optimizer and its schedule (`steps_per_epoch`: an epoch's batches,
    len(train_loader)) and the weight average, and switch the speed tricks on.

    model: a network of your own to train with the config's settings instead of config.model's class (see
    `build_model`); Run.config names it, as what a run prints and saves must. budget: a parameter count; a network
    over it is trained anyway, and Run.notes says by how much. Raises UserError for a network S6 cannot train
    (`check_network`).
    """
    check_arguments(config, budget)
    seed_everything(config.seed)
    network = build_model(config, device, model)
    if model is not None:
        check_network(network, device)
        config = replace(config, model=network_name(network))
    optimizer, scheduler = build_optimizer(network, config, steps_per_epoch)
    ema = build_ema(network, config)
    speed = speed_up(network, config, ema)
    notes = []
    parameters = count_parameters(network)
    if budget is not None and parameters >= budget:  # the assignment's rule: under the budget
        notes.append(f"{type(network).__name__} has {parameters:,} parameters, not under the budget of {budget:,}: "
                     f"trained anyway")
    return Run(config, network, ema, optimizer, scheduler, speed, notes)


def training_step(run, images, labels, label_smoothing):
    """One step on a batch of (N, 1, 28, 28) images and their (N,) labels: what every epoch repeats.
    Returns the logits (N, 10) and the mean loss, both still on the device."""
    run.optimizer.zero_grad(set_to_none=True)
    logits = run.speed.forward(run.model, images)  # run.model(images), with this device's speed tricks
    loss = F.cross_entropy(logits, labels, label_smoothing=label_smoothing)
    loss.backward()
    run.optimizer.step()
    run.scheduler.step()  # the learning rate moves after every batch
    if run.ema is not None:
        run.speed.update_average(run.ema, run.model)  # run.ema.update_parameters(run.model)
    return logits, loss


class EpochMetrics:
    """An epoch's running loss and accuracy, summed on the device (reading a sum makes a GPU wait)."""

    def __init__(self, device):
        self.loss_sum = torch.zeros((), device=device)
        self.correct = torch.zeros((), dtype=torch.long, device=device)
        self.seen = 0

    def add(self, logits, loss, labels):
        self.loss_sum += loss.detach() * len(labels)
        self.correct += (logits.argmax(1) == labels).sum()
        self.seen += len(labels)

    def check_finite(self, epoch, batch):
        """Raises TrainingDiverged, naming the epoch, where the loss is no longer a finite number."""
        if not torch.isfinite(self.loss_sum):
            raise TrainingDiverged(f"the loss became {self.loss_sum.item()} in epoch {epoch} (by batch {batch}): "
                                   f"training diverged; try a lower learning rate (--lr).")

    def result(self):
        """Mean loss and accuracy (percent) so far."""
        return {"train_loss": self.loss_sum.item() / self.seen, "train_acc": 100 * self.correct.item() / self.seen}


def reseed(config, epoch):
    """Seed torch, Python's random and numpy from (seed, epoch), so that the shuffling, augmentation and dropout of
    epoch k, and whatever a network of one's own draws, do not depend on how the run got there: a resumed run
    repeats an uninterrupted one."""
    seed = config.seed * 10_000 + epoch
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)  # numpy's seeds are 32-bit


def train_one_epoch(run, loader, config, epoch, progress=True):
    """`training_step` on every batch of the loader. Returns the epoch's mean loss, accuracy (percent) and
    starting learning rate; raises TrainingDiverged where the loss stops being finite."""
    reseed(config, epoch)
    lr = run.scheduler.get_last_lr()[0]
    device = next(run.model.parameters()).device
    run.model.train()
    metrics = EpochMetrics(device)
    bar = tqdm(loader, desc=f"epoch {epoch}", disable=not progress)
    for batch, (images, labels) in enumerate(bar, 1):
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        logits, loss = training_step(run, images, labels, config.label_smoothing)
        metrics.add(logits, loss, labels)
        if batch % CHECK_EVERY == 0 or batch == len(loader):
            metrics.check_finite(epoch, batch)
            so_far = metrics.result()
            bar.set_postfix(loss=f"{so_far['train_loss']:.4f}", acc=f"{so_far['train_acc']:.2f}")
    return {**metrics.result(), "lr": lr}


@torch.inference_mode()
def evaluate(model, loader, eval_set="test"):
    """Mean cross-entropy loss and accuracy (percent) over the loader, in fp32, under the keys of `eval_set`:
    test_loss and test_acc, or for "validation", val_loss and val_acc."""
    model.eval()
    device = next(model.parameters()).device
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    seen = 0
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)
        logits = model(images)
        loss_sum += F.cross_entropy(logits, labels, reduction="sum")
        correct += (logits.argmax(1) == labels).sum()
        seen += len(labels)
    p = prefix(eval_set)
    return {f"{p}_loss": loss_sum.item() / seen, f"{p}_acc": 100 * correct.item() / seen}


def not_evaluated(eval_set="test"):
    """An epoch record's evaluation keys for an epoch that was not evaluated."""
    return dict.fromkeys([f"{prefix(eval_set)}_loss", f"{prefix(eval_set)}_acc"])


@torch.inference_mode()
def predict(model, loader):
    """(images (N, 1, 28, 28), labels (N,), probabilities (N, 10)) for a whole loader, on the CPU; the images
    as the model saw them."""
    model.eval()
    device = next(model.parameters()).device
    images, labels, probs = [], [], []
    for x, y in loader:
        images.append(x.cpu())
        labels.append(y.cpu())
        probs.append(F.softmax(model(x.to(device)).float(), dim=1).cpu())
    return torch.cat(images), torch.cat(labels), torch.cat(probs)


def confusion_matrix(labels, predictions, classes=10):
    """(classes, classes) counts: row = true label, column = prediction."""
    return torch.bincount(labels * classes + predictions, minlength=classes * classes).view(classes, classes)


def epoch_header(eval_set="test"):
    """The heading of format_epoch's lines; `eval_set` names what was evaluated ('test' or 'validation').
    "start lr": the learning rate an epoch began with (the schedule moves it after every batch)."""
    short = prefix(eval_set)
    return f"epoch | train loss  train acc | {short + ' loss':>9}  {short + ' acc':>8} |  start lr | seconds"


def format_epoch(record):
    p = prefix_of(record)
    test = (f"{record[f'{p}_loss']:9.4f} {accuracy(record):8.2f}%" if accuracy(record) is not None
            else f"{'not evaluated':>19}")
    return (f"{record['epoch']:5d} | {record['train_loss']:10.4f} {record['train_acc']:9.2f}% | {test} | "
            f"{record['lr']:.3e} | {record['seconds']:7.1f}")


def fit(config, out_dir=None, resume=False, overwrite=False, progress=True, log=print, model=None, budget=None):
    """Train `config.model` (or `model`, a network of your own: see `build_model`) as the config says. Returns
    (network, history): one record per epoch.

    The network returned is the one evaluated: the weight average when config.ema_decay is set. Without
    config.eval_each_epoch only the last epoch is evaluated: the others' accuracy and loss are None.

    With `out_dir`, the run holds a lock on the folder (a second run there is refused), each epoch ends by writing
    checkpoint.pt and metrics.json there (atomically), and the run ends with model.pt. A folder that holds a run
    already is refused, unless `overwrite`, which first deletes that run and the files made from its weights
    (exports, digit features); `resume=True` continues the run saved there, exactly as it was configured and on
    the same number of CPU threads, or refuses in one line. budget: see `set_up`.
    """
    check_arguments(config, budget)
    if resume and (not out_dir or overwrite):
        raise UserError("fit(resume=True) continues the run in out_dir: give the folder, and no overwrite")
    out_dir = Path(out_dir) if out_dir else None
    if out_dir and resume:
        if not (out_dir / "checkpoint.pt").is_file():
            raise UserError(f"{out_dir} holds no run to resume (no checkpoint.pt)")
        # the folder cannot be another one: say what can be done with it
        writable_folder(out_dir, "a resume writes its checkpoints there: make it writable, or copy the run to a "
                                 "folder that is and resume it there")
    with run_lock(out_dir) if out_dir else contextlib.nullcontext():
        if out_dir and not resume:
            check_fresh(out_dir, overwrite)  # before minutes of work
        return _fit(config, out_dir, resume, progress, log, model, budget)


def _fit(config, out_dir, resume, progress, log, model, budget):
    device = get_device(config.device)
    train_loader, eval_loader = make_loaders(config, device)
    run = set_up(config, device, len(train_loader), model, budget)
    config = run.config
    done, history = restore_checkpoint(out_dir / "checkpoint.pt", run) if resume else (0, [])
    if out_dir and done < config.epochs:
        (remove_made_from_weights if resume else remove_run)(out_dir)  # they would be of other weights
        check_room(out_dir, run, history)  # a full disk is found now, not after the first epoch
    evaluated_on = eval_set(config)
    log(f"config: {json.dumps(config.to_dict())}")
    log(f"model {config.model}: {count_parameters(run.model):,} parameters | recipe: {recipe_of(config)} | device "
        f"{device} | pipeline {config.pipeline} | speed: {', '.join(run.speed.names) or 'none'}"
        + (f" | resuming after epoch {done}" if resume else ""))
    for note in run.notes:
        log(f"note: {note}")
    log(epoch_header(evaluated_on))
    for epoch in range(done + 1, config.epochs + 1):
        started = time.perf_counter()
        train = train_one_epoch(run, train_loader, config, epoch, progress)
        if config.eval_each_epoch or epoch == config.epochs:
            test = evaluate(evaluated(run.model, run.ema), eval_loader, evaluated_on)
        else:
            test = not_evaluated(evaluated_on)
        history.append({"epoch": epoch, **train, **test, "seconds": time.perf_counter() - started})
        log(format_epoch(history[-1]))
        if out_dir:
            save_epoch(out_dir, run, history)
    network = evaluated(run.model, run.ema)
    if out_dir:
        save_model(out_dir / "model.pt", network)
    return network, history
