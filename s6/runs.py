"""A run's folder: the files a training run writes there (metrics.json, checkpoint.pt, model.pt), whether the run
finished or stopped, and the lock a training run holds on it.

metrics.json: the config, the network's parameters and class, where it ran, the summary and the history; written
after every epoch, with checkpoint.pt (s6/checkpoints.py). model.pt comes last: a folder with model.pt and
metrics.json holds a finished run, one with checkpoint.pt and no model.pt a stopped one.
"""

import contextlib
import os
import time
from pathlib import Path
from typing import NamedTuple

import torch
from filelock import FileLock, Timeout

from s6.checkpoints import CheckpointError, check_checkpoint, checkpoint_state, config_from_record, load_torch_file
from s6.config import TrainConfig, UserError, eval_set, machine_name
from s6.files import WriteError, read_json, reason, save_json, save_torch, torch_bytes, writable_folder
from s6.results import summarize
from s6_model import count_parameters

RUN_FILES = ("checkpoint.pt", "metrics.json", "model.pt")
LOCK_FILE = ".s6-run.lock"  # held by the OS (filelock) while a run trains in the folder
HOLDER_FILE = ".s6-run.holder"  # who holds it: the lock file itself is emptied by every process that tries it


class SavedRun(NamedTuple):
    """What a run folder holds: the config, the epochs done, the metrics so far, and whether it finished."""

    config: TrainConfig
    epochs_done: int
    finished: bool
    record: dict | None  # metrics.json


def run_record(config, model, history):
    """Everything metrics.json holds: the config, the model's size and class, where it ran, and the history."""
    device = next(model.parameters()).device
    return {"config": config.to_dict(), "parameters": count_parameters(model), "model_class": type(model).__name__,
            "device": device.type, "machine": machine_name(device), "torch": torch.__version__,
            "eval_set": eval_set(config), "summary": summarize(history), "history": history}


def save_epoch(out_dir, run, config, history):
    """checkpoint.pt (everything a resume needs) and metrics.json, after the last epoch of `history`."""
    save_torch(Path(out_dir) / "checkpoint.pt", checkpoint_state(run, config, history))
    save_json(Path(out_dir) / "metrics.json", run_record(config, run.model, history))


def check_room(out_dir, run, config, history):
    """A WriteError now where `out_dir` cannot take a checkpoint of this run (a full disk, a file-size limit, a
    read-only folder), rather than after an epoch's training."""
    out_dir = writable_folder(out_dir)
    probe = out_dir / ".s6-room-test.tmp"
    try:
        probe.write_bytes(torch_bytes(checkpoint_state(run, config, history)))
    except OSError as error:
        raise WriteError(f"cannot save checkpoints in {out_dir} ({reason(error)}): free some space, or choose "
                         f"another --out") from None
    finally:
        with contextlib.suppress(OSError):
            probe.unlink(missing_ok=True)


def is_run_record(record):
    """Whether `record` has the shape of the metrics.json S6 writes."""
    shape = {"config": dict, "history": list, "parameters": int}
    return (isinstance(record, dict) and all(isinstance(record.get(key), kind) for key, kind in shape.items())
            and all(isinstance(epoch, dict) and isinstance(epoch.get("epoch"), int) for epoch in record["history"]))


def read_metrics(path):
    """A metrics.json, checked for the shape S6 writes; a one-line CheckpointError where it is damaged."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file (is {path.parent} a folder that s6_train.py wrote?)")
    return read_json(path, is_run_record, "delete it, or replace the run with --overwrite")


def read_seeds(path):
    """A seeds.json written by s6_train.py --seeds, checked for its shape; a one-line CheckpointError where not."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file (s6_train.py --seeds writes it)")
    return read_json(path, lambda record: isinstance(record, dict) and isinstance(record.get("summary"), dict),
                     "run the sweep again")


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
        return SavedRun(config, len(record["history"]), True, record)
    if "checkpoint.pt" in present:
        state = load_torch_file(folder / "checkpoint.pt")
        check_checkpoint(state, folder / "checkpoint.pt")
        config = config_from_record(state["config"], folder / "checkpoint.pt")
        record = read_metrics(folder / "metrics.json") if "metrics.json" in present else None
        return SavedRun(config, state["epoch"], False, record)
    raise CheckpointError(f"{folder} holds {' and '.join(present)} but not a whole run: move it away, or replace "
                          f"it with --overwrite")


@contextlib.contextmanager
def run_lock(*folders):
    """Hold an OS lock (filelock) on each folder while a run trains there; a UserError at once, naming the folder
    and the process, where another run holds one. The OS releases a lock when its process ends, however it ends,
    so a crashed or killed run leaves none behind; the small files themselves are harmless."""
    with contextlib.ExitStack() as held:
        for folder in folders:
            held.enter_context(_locked(writable_folder(folder)))
        yield


@contextlib.contextmanager
def _locked(folder):
    lock = FileLock(folder / LOCK_FILE)
    try:
        lock.acquire(blocking=False)
    except Timeout:
        holder = (folder / HOLDER_FILE).read_text().strip() if (folder / HOLDER_FILE).is_file() else ""
        raise UserError(f"{folder} is in use by a run still training there ({holder or 'another process'}): wait "
                        f"for it to end, or choose another --out") from None
    try:
        try:
            (folder / HOLDER_FILE).write_text(f"s6_train.py, pid {os.getpid()}, since "
                                              f"{time.strftime('%Y-%m-%d %H:%M:%S')}")
        except OSError as error:
            raise WriteError(f"cannot write to {folder} ({reason(error)}): free some space, or choose another "
                             f"--out") from None
        yield
    finally:
        lock.release()


def remove_run(folder):
    """Delete a run's files from `folder` (nothing else there), so that a new run starts clean."""
    # digit-features.pt (s6_predict.py --calibrate) describes the old model.pt's features, not the new one's
    for name in (*RUN_FILES, "digit-features.pt"):
        (Path(folder) / name).unlink(missing_ok=True)
