"""checkpoint.pt and model.pt: what a run saves of its network, and loading them back, with a one-line
CheckpointError for a file that is damaged, not S6's, or of another model.

model.pt is the evaluated network's state_dict. checkpoint.pt is everything a resume needs: the network, its
weight average, the optimizer and the schedule, the history so far, the config, the network's class and the
CPU threads it trained on. Both are read with torch.load(weights_only=True), so a file cannot run code.
"""

from dataclasses import fields
from functools import cache
from pathlib import Path

import torch

from s6.config import NO_VALUE, PLACEMENT, TrainConfig, UserError, described, differences
from s6.files import CheckpointError, save_torch
from s6.results import is_epoch_record
from s6_model import MODELS


def threads_of(device):
    """The CPU threads torch trains with on `device`, or None on a GPU, where they do not decide the result."""
    return torch.get_num_threads() if torch.device(device).type == "cpu" else None


def checkpoint_state(run, history):
    """What checkpoint.pt holds after the last epoch of `history` (epoch 0 before any)."""
    # torch before 2.4 puts OneCycleLR's annealing method in its state, which weights_only loading refuses;
    # the method comes from the constructor anyway
    scheduler = {name: value for name, value in run.scheduler.state_dict().items() if not callable(value)}
    device = next(run.model.parameters()).device
    return {"model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(), "scheduler": scheduler,
            "epoch": history[-1]["epoch"] if history else 0, "history": history, "config": run.config.to_dict(),
            "model_class": type(run.model).__name__, "threads": threads_of(device), "device": device.type,
            "bf16": run.speed.bf16, "ema": run.ema.state_dict() if run.ema else None}


def save_model(path, model):
    """model.pt: `model`'s state_dict, atomically."""
    save_torch(path, model.state_dict())


def load_torch_file(path, device="cpu"):
    """torch.load with weights_only=True, and a one-line CheckpointError for anything that is not ours."""
    path = Path(path)
    if path.is_dir():
        inside = " or ".join(str(path / name) for name in ("model.pt", "checkpoint.pt") if (path / name).is_file())
        raise CheckpointError(f"{path} is a folder" + (f"; did you mean {inside}?" if inside else ""))
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as error:  # pickle, zip and EOF errors all mean the same thing here
        with path.open("rb") as file:
            start = file.read(4)
        looks = ("is empty" if not start else "looks damaged (cut short or corrupt)" if start == b"PK\x03\x04"
                 else "was not written by torch.save, or holds more than tensors and plain data")
        raise CheckpointError(f"{path} cannot be read as an S6 checkpoint or model.pt: it {looks} "
                              f"({type(error).__name__}); give another file, or train the run again") from None


def evaluated_weights(state):
    """The weights a file's run evaluated: model.pt's own, or a checkpoint's weight average (else its model)."""
    if not isinstance(state, dict) or "model" not in state:
        return state
    if isinstance(state.get("ema"), dict):
        prefix = "module."
        return {key[len(prefix):]: value for key, value in state["ema"].items() if key.startswith(prefix)}
    return state["model"]


def load_weights(model, path, device="cpu"):
    """Load what a model.pt (or a checkpoint.pt) holds into `model`, with a clear error on mismatch.

    From a checkpoint, the weight average is loaded where the run kept one: the network that model.pt
    would hold, and that the run's test accuracy was measured on.
    """
    state = evaluated_weights(load_torch_file(path, device))
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as error:
        owner = model_of(state)
        if owner:
            raise CheckpointError(f"{path} holds weights for {MODELS[owner].__name__}, not {type(model).__name__}: "
                                  f"give --model {owner}") from None
        first_line = str(error).strip().splitlines()[0]
        raise CheckpointError(f"{path} does not hold weights for {type(model).__name__}: {first_line}") from None
    return model


@cache
def parameter_shapes(key):
    """{state_dict name: shape} of the model class MODELS[key], built on the meta device: no memory, no weights."""
    with torch.device("meta"):
        return {name: tuple(tensor.shape) for name, tensor in MODELS[key]().state_dict().items()}


def model_of(state):
    """The key in s6_model.MODELS of the one class whose state_dict has the names and shapes of `state`, or None."""
    if not isinstance(state, dict) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        return None
    shapes = {name: tuple(tensor.shape) for name, tensor in state.items()}
    owners = [key for key in MODELS if parameter_shapes(key) == shapes]
    return owners[0] if len(owners) == 1 else None


def check_checkpoint(state, path):
    """A CheckpointError where `state`, loaded from `path`, lacks what a resume reads, or it is of another kind."""
    if not isinstance(state, dict) or not isinstance(state.get("config"), dict):
        raise CheckpointError(f"{path} holds weights only, not a checkpoint of a run: it cannot be resumed")
    kinds = {"model": dict, "optimizer": dict, "scheduler": dict, "epoch": int, "history": list}
    wrong = [name for name, kind in kinds.items() if not isinstance(state.get(name), kind)]
    if (wrong or state["epoch"] != len(state["history"]) or not all(map(is_epoch_record, state["history"]))
            or not isinstance(state.get("ema"), dict | None)):
        raise CheckpointError(f"{path} is not a whole checkpoint ({', '.join(wrong) or 'its epochs'} not as S6 "
                              f"writes them): start the run again with --overwrite")


def restore_checkpoint(path, run):
    """Load checkpoint.pt into a freshly set-up run. Returns (last finished epoch, history so far).

    A one-line UserError where the run would not continue exactly the one saved: a network of another class, a
    config that differs in anything but where its data is and the device's name (TrainConfig's PLACEMENT), another
    kind of device, bf16 autocast where the saved epochs had none or none where they had it, or CPU epochs that ran
    on another number of threads than torch uses now (bfloat16 sums would be reduced in another order).
    """
    state = load_torch_file(path)
    check_checkpoint(state, path)
    trained_class, network_class = state.get("model_class", type(run.model).__name__), type(run.model).__name__
    if trained_class != network_class:
        raise CheckpointError(f"{path} is a run of {trained_class}, not of {network_class}: resume it with the "
                              f"network it trained, fit(..., model={trained_class})")
    changed = differences(config_from_record(state["config"], path), run.config, ignore=PLACEMENT)
    if changed:
        raise UserError(f"{path} holds a run of another config ({described(changed)}): a resume continues the run "
                        f"as it was saved, so give its own config, load_config('{path}'), or start a new run in "
                        f"another folder")
    device = next(run.model.parameters()).device
    if state.get("device", device.type) != device.type:
        raise UserError(f"{path}: its epochs ran on the {state['device'].upper()} and this resume would run on the "
                        f"{device.type.upper()}, so the run would not end where an uninterrupted one does: resume "
                        f"with --device {state['device']}")
    if state.get("bf16", run.speed.bf16) != run.speed.bf16:
        done, now = ("with", "without") if state["bf16"] else ("without", "with")
        raise UserError(f"{path}: its epochs trained {done} bfloat16 autocast and this resume would train {now} "
                        f"(another CPU, or another torch), so the run would not end where an uninterrupted one does: "
                        f"resume it where it trained")
    threads, now = state.get("threads"), threads_of(device)
    if threads is not None and now is not None and threads != now:
        raise UserError(f"{path}: its epochs ran on {threads} CPU threads, and this resume would run on {now}, so "
                        f"the run would not end where an uninterrupted one does: resume with --threads {threads} "
                        f"(in Python, torch.set_num_threads({threads}))")
    try:
        run.model.load_state_dict(state["model"])
        if run.ema is not None:
            run.ema.load_state_dict(state["ema"])
        run.optimizer.load_state_dict(state["optimizer"])
        run.scheduler.load_state_dict(state["scheduler"])
    except (KeyError, TypeError, RuntimeError, ValueError) as error:
        first = (str(error).strip().splitlines() or [""])[0]
        raise CheckpointError(f"{path} is not a checkpoint of this network ({type(error).__name__}: {first}): resume "
                              f"it with the network it trained") from None
    return state["epoch"], state["history"]


# Labels that earlier versions of S6 saved beside the values they stood for, which the records hold too
RETIRED_LABELS = ("recipe",)


def config_from_record(saved, source):
    """The TrainConfig a checkpoint or metrics.json saved. A field the record lacks, added to TrainConfig since, is
    read as the value every run before the field trained with (its `before`), never as today's default; a
    CheckpointError where that value is not known, or the record holds a setting this version lacks."""
    if not isinstance(saved, dict):
        raise CheckpointError(f"{source} holds no config as S6 writes it: start the run again with --overwrite")
    saved = {name: value for name, value in saved.items() if name not in RETIRED_LABELS}
    unknown = sorted(set(saved) - {f.name for f in fields(TrainConfig)})
    if unknown:
        raise CheckpointError(f"{source} was written by a version of S6 with settings this one does not have "
                              f"({', '.join(unknown)}): use that version, or start a new run")
    missing = [f for f in fields(TrainConfig) if f.name not in saved]
    unknowable = [f.name for f in missing if f.metadata["before"] is NO_VALUE]
    if unknowable:
        raise CheckpointError(f"{source} was written before TrainConfig.{unknowable[0]} existed, and what its run "
                              f"trained with there is not known: train it again")
    try:
        return TrainConfig(**{f.name: f.metadata["before"] for f in missing}, **saved)
    except (ValueError, TypeError) as error:
        raise CheckpointError(f"{source} holds a config this version rejects: {error}") from None


def load_config(path):
    """The TrainConfig saved in a checkpoint."""
    state = load_torch_file(path)
    check_checkpoint(state, path)
    return config_from_record(state["config"], path)
