"""Files a run writes and reads: checkpoint.pt, metrics.json, model.pt, always written atomically."""

import json
import os
from functools import partial
from pathlib import Path

import torch

from s6.config import TARGET_ACC, TrainConfig, machine_name
from s6_model import count_parameters


class CheckpointError(RuntimeError):
    """A file is not an S6 checkpoint or model, or does not fit the model."""


def atomic_write(path, write):
    """Write through a temporary file and rename it into place: a crash never leaves half a file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def save_json(path, data):
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2) + "\n"))


def save_model(path, model):
    atomic_write(path, partial(torch.save, model.state_dict()))


def summarize(history, target=TARGET_ACC):
    """Final and best test accuracy, the best epoch, and the first epoch at or above the target."""
    accs = [record["test_acc"] for record in history]
    best = max(range(len(accs)), key=accs.__getitem__)
    first = next((record["epoch"] for record in history if record["test_acc"] >= target), None)
    return {"final_test_acc": accs[-1], "best_test_acc": accs[best], "best_epoch": history[best]["epoch"],
            "first_epoch_at_target": first, "target": target}


def run_record(config, model, history):
    """Everything metrics.json holds: the config, the model's size, where it ran, and the history."""
    device = next(model.parameters()).device
    return {"config": config.to_dict(), "parameters": count_parameters(model), "device": device.type,
            "machine": machine_name(device), "torch": torch.__version__,
            "eval_set": "validation" if config.val_split else "test",
            "summary": summarize(history) if history else None, "history": history}


def save_checkpoint(out_dir, run, config, history):
    """checkpoint.pt (everything a resume needs) and metrics.json, after the last epoch of `history`."""
    checkpoint = {"model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
                  "scheduler": run.scheduler.state_dict(), "epoch": history[-1]["epoch"], "history": history,
                  "config": config.to_dict(), "ema": run.ema.state_dict() if run.ema else None}
    atomic_write(out_dir / "checkpoint.pt", partial(torch.save, checkpoint))
    save_json(out_dir / "metrics.json", run_record(config, run.model, history))


def load_torch_file(path, device="cpu"):
    """torch.load with weights_only=True, and a one-line CheckpointError for anything that is not ours."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as error:  # pickle, zip and EOF errors all mean the same thing here
        raise CheckpointError(f"{path} is not an S6 checkpoint or model.pt ({type(error).__name__})") from None


def load_weights(model, path, device="cpu"):
    """Load a model.pt state_dict (or a checkpoint's model) into `model`, with a clear error on mismatch."""
    state = load_torch_file(path, device)
    state = state.get("model", state) if isinstance(state, dict) else state
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as error:
        first_line = str(error).strip().splitlines()[0]
        raise CheckpointError(f"{path} does not hold weights for {type(model).__name__}: {first_line}") from None
    return model


def restore_checkpoint(path, run):
    """Load checkpoint.pt into a freshly set-up run. Returns (last finished epoch, history so far)."""
    state = load_torch_file(path)
    try:
        run.model.load_state_dict(state["model"])
        if run.ema is not None:
            run.ema.load_state_dict(state["ema"])
        run.optimizer.load_state_dict(state["optimizer"])
        run.scheduler.load_state_dict(state["scheduler"])
        return state["epoch"], state["history"]
    except (KeyError, TypeError, RuntimeError, ValueError) as error:
        raise CheckpointError(f"{path} is not a checkpoint of this run ({type(error).__name__}: {error})") from None


def load_config(path):
    """The TrainConfig saved in a checkpoint."""
    state = load_torch_file(path)
    if not isinstance(state, dict) or "config" not in state:
        raise CheckpointError(f"{path} holds weights only, not a checkpoint of a run: it cannot be resumed")
    return TrainConfig(**state["config"])
