"""Files a run writes and reads: checkpoint.pt, metrics.json, model.pt, always written atomically."""

import contextlib
import json
import os
import statistics
import time
from dataclasses import fields
from functools import partial
from pathlib import Path
from typing import NamedTuple

import torch

from s6.config import TARGET_ACC, TrainConfig, UserError, eval_set, machine_name
from s6_model import MODELS, count_parameters

try:
    import fcntl  # POSIX
except ImportError:  # Windows
    fcntl = None
    import msvcrt

RUN_FILES = ("checkpoint.pt", "metrics.json", "model.pt")
LOCK_FILE = ".s6-run.lock"


class CheckpointError(UserError):
    """A file is not an S6 checkpoint or model, or does not fit the model."""


class SavedRun(NamedTuple):
    """What a run folder holds: the config, the epochs done, the metrics so far, and whether it finished."""

    config: TrainConfig
    epochs_done: int
    finished: bool
    record: dict | None  # metrics.json


def atomic_write(path, write):
    """Write through a temporary file and rename it into place: a crash never leaves half a file.

    A failed write (a full disk, a folder made read-only) raises CheckpointError and leaves the
    previous file as it was.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        reason = error.strerror or str(error).strip() or type(error).__name__
        raise CheckpointError(f"could not write {path} ({reason}); any earlier {path.name} there is intact") from None


def save_json(path, data):
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2) + "\n"))


def save_model(path, model):
    atomic_write(path, partial(torch.save, model.state_dict()))


def evaluated_epochs(history):
    """The records of the epochs that were evaluated: a run may skip the ones that cannot matter."""
    return [record for record in history if record["test_acc"] is not None]


def summarize(history, target=TARGET_ACC):
    """Final and best accuracy, the best epoch, and the first epoch at or above the target, of the epochs
    evaluated (a run without eval_each_epoch evaluates its last only, so its first epoch at the target is the
    first evaluated one); None before any was. The keys say "test" for the validation split's runs too."""
    evaluated = evaluated_epochs(history)
    if not evaluated:
        return None
    best = max(evaluated, key=lambda record: record["test_acc"])
    first = next((record["epoch"] for record in evaluated if record["test_acc"] >= target), None)
    return {"final_test_acc": evaluated[-1]["test_acc"], "best_test_acc": best["test_acc"],
            "best_epoch": best["epoch"], "first_epoch_at_target": first, "target": target}


def seed_statistics(runs):
    """What seeds.json sums up of a sweep's runs ({seed: metrics.json record}): the mean, spread and range of
    the last epoch's accuracy, and the median first evaluated epoch at or above the target."""
    finals = [run["summary"]["final_test_acc"] for run in runs.values()]
    firsts = [run["summary"]["first_epoch_at_target"] for run in runs.values()]
    reached = [epoch for epoch in firsts if epoch is not None]
    first = next(iter(runs.values()))
    return {
        "seeds": list(runs), "epochs": len(first["history"]), "parameters": first["parameters"],
        "eval_set": first.get("eval_set", "test"),
        "evaluated_every_epoch": all(r["test_acc"] is not None for run in runs.values() for r in run["history"]),
        "final_test_acc_mean": statistics.mean(finals),
        "final_test_acc_std": statistics.stdev(finals) if len(finals) > 1 else 0.0,
        "final_test_acc_min": min(finals), "final_test_acc_max": max(finals),
        "median_first_epoch_at_target": statistics.median(reached) if len(reached) == len(firsts) else None,
        "seeds_at_target": len(reached), "target": TARGET_ACC,
    }


def seeds_table_row(model, stats):
    """One row of the README's results table, from `seed_statistics`; the headings name what was evaluated
    (test or validation images), and a sweep evaluated at its last epoch only counts evaluated epochs."""
    median, seeds = stats["median_first_epoch_at_target"], len(stats["seeds"])
    acc = f"last-epoch {stats.get('eval_set', 'test')} acc"
    first = "first epoch" if stats.get("evaluated_every_epoch", True) else "first evaluated epoch"
    return {
        "model": model, "parameters": f"{stats['parameters']:,}", "epochs": stats["epochs"], "seeds": seeds,
        f"{acc}, mean ± std": f"{stats['final_test_acc_mean']:.2f}% ± {stats['final_test_acc_std']:.2f}",
        "min / max": f"{stats['final_test_acc_min']:.2f}% / {stats['final_test_acc_max']:.2f}%",
        f"median {first} ≥ {TARGET_ACC}%": (f"{median:g}" if median is not None
                                            else f"— ({stats['seeds_at_target']} of {seeds} seeds reach it)"),
    }


def run_record(config, model, history):
    """Everything metrics.json holds: the config, the model's size, where it ran, and the history."""
    device = next(model.parameters()).device
    return {"config": config.to_dict(), "parameters": count_parameters(model), "device": device.type,
            "machine": machine_name(device), "torch": torch.__version__,
            "eval_set": eval_set(config),
            "summary": summarize(history), "history": history}


def save_checkpoint(out_dir, run, config, history):
    """checkpoint.pt (everything a resume needs) and metrics.json, after the last epoch of `history`."""
    # torch before 2.4 puts OneCycleLR's annealing method in its state, which weights_only loading refuses;
    # the method comes from the constructor anyway
    scheduler = {name: value for name, value in run.scheduler.state_dict().items() if not callable(value)}
    checkpoint = {"model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
                  "scheduler": scheduler, "epoch": history[-1]["epoch"], "history": history,
                  "config": config.to_dict(), "ema": run.ema.state_dict() if run.ema else None}
    atomic_write(out_dir / "checkpoint.pt", partial(torch.save, checkpoint))
    save_json(out_dir / "metrics.json", run_record(config, run.model, history))


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
        raise CheckpointError(f"{path} is not an S6 checkpoint or model.pt ({type(error).__name__})") from None


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


def model_of(state):
    """The key in s6_model.MODELS of the one class whose state_dict `state` fits, or None."""
    def fits(cls):
        try:
            cls().load_state_dict(state)
            return True
        except (RuntimeError, TypeError, AttributeError):
            return False
    owners = [key for key, cls in MODELS.items() if fits(cls)]
    return owners[0] if len(owners) == 1 else None


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


def config_from_record(saved, source):
    """The TrainConfig a checkpoint or metrics.json saved; a field added since counts as its default."""
    unknown = sorted(set(saved) - {f.name for f in fields(TrainConfig)})
    if unknown:
        raise CheckpointError(f"{source} was written by a version of S6 with settings this one does not have "
                              f"({', '.join(unknown)}): use that version, or start a new run")
    try:
        return TrainConfig(**saved)
    except ValueError as error:
        raise CheckpointError(f"{source} holds a config this version rejects: {error}") from None


def checkpoint_config(state, path):
    """The TrainConfig in a checkpoint's loaded `state` (read from `path`)."""
    if not isinstance(state, dict) or not isinstance(state.get("config"), dict):
        raise CheckpointError(f"{path} holds weights only, not a checkpoint of a run: it cannot be resumed")
    return config_from_record(state["config"], path)


def load_config(path):
    """The TrainConfig saved in a checkpoint."""
    return checkpoint_config(load_torch_file(path), path)


def read_metrics(path):
    """A metrics.json; a one-line CheckpointError where it is damaged."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file (is {path.parent} a folder that s6_train.py wrote?)")
    damaged = CheckpointError(f"{path} is damaged: delete it, or replace the run with --overwrite")
    try:
        record = json.loads(Path(path).read_text())
    except ValueError:
        raise damaged from None
    if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
        raise damaged
    return record


def saved_run(folder):
    """The run saved in `folder`: a SavedRun, or None where the folder holds none of a run's files.

    Finished: model.pt is written last, beside the final metrics.json. Interrupted: checkpoint.pt
    without model.pt. Anything else, or a damaged file, is a one-line CheckpointError.
    """
    folder = Path(folder)
    present = [name for name in RUN_FILES if (folder / name).exists()]
    if not present:
        return None
    if {"model.pt", "metrics.json"} <= set(present):
        record = read_metrics(folder / "metrics.json")
        config = config_from_record(record["config"], folder / "metrics.json")
        return SavedRun(config, len(record.get("history") or []), True, record)
    if "checkpoint.pt" in present:
        state = load_torch_file(folder / "checkpoint.pt")
        config = checkpoint_config(state, folder / "checkpoint.pt")
        record = read_metrics(folder / "metrics.json") if "metrics.json" in present else None
        return SavedRun(config, state.get("epoch", 0), False, record)
    raise CheckpointError(f"{folder} holds {' and '.join(present)} but not a whole run: move it away, or replace "
                          f"it with --overwrite")


def writable_folder(folder):
    """Create `folder` if needed and check that files can be written there; a one-line error where not."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".s6-write-test.tmp"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        reason = "it is a file" if folder.is_file() else error.strerror or type(error).__name__
        raise CheckpointError(f"cannot write to {folder} ({reason}): choose another folder") from None
    return folder


@contextlib.contextmanager
def run_lock(*folders):
    """Hold an OS lock on each folder (on its LOCK_FILE) while a run trains there; UserError at once, naming
    the folder and the process, where another run holds one. The OS releases a lock when its process ends,
    however it ends, so a crashed or killed run leaves none behind; the empty file itself is harmless."""
    with contextlib.ExitStack() as held:
        for folder in folders:
            held.enter_context(_locked(writable_folder(folder)))
        yield


# Windows locks a byte range, and no other process may read it: the byte locked lies past the holder's line
LOCKED_BYTE = 1 << 20


@contextlib.contextmanager
def _locked(folder):
    path = Path(folder) / LOCK_FILE
    with open(path, "a+") as handle:
        try:
            if fcntl:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            else:
                handle.seek(LOCKED_BYTE)
                msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            handle.seek(0)
            holder = handle.readline().strip() or "another process"
            raise UserError(f"{folder} is in use by a run still training there ({holder}): wait for it to end, "
                            f"or choose another --out") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"s6_train.py, pid {os.getpid()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}")
        handle.flush()
        yield


def remove_run(folder):
    """Delete a run's files from `folder` (nothing else there), so that a new run starts clean."""
    # digit-features.pt (s6_predict.py --calibrate) describes the old model.pt's features, not the new one's
    for name in (*RUN_FILES, "digit-features.pt"):
        (Path(folder) / name).unlink(missing_ok=True)
