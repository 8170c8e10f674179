"""A run's folder: the files a training run writes there (metrics.json, checkpoint.pt, model.pt) and those made
later from its weights, whether the run finished or stopped, starting or resuming a run there, and the lock a run
holds on it while it trains.

metrics.json: the config, the network's parameters and class, where it ran, the summary and the history; written
after every epoch, with checkpoint.pt (s6/checkpoints.py). model.pt comes last: a folder with model.pt and
metrics.json holds a finished run, one with checkpoint.pt and no model.pt a stopped one.
"""

import contextlib
import os
import threading
import time
from pathlib import Path
from typing import NamedTuple

import torch
from filelock import FileLock, Timeout

from s6.checkpoints import CheckpointError, check_checkpoint, checkpoint_state, config_from_record, load_torch_file
from s6.config import TrainConfig, UserError, eval_set, machine_name, recipe_of
from s6.files import WriteError, read_json, reason, save_json, save_torch, torch_bytes, writable_folder
from s6.results import is_epoch_record, summarize
from s6_model import MODELS, count_parameters

RUN_FILES = ("checkpoint.pt", "metrics.json", "model.pt")
# Files made later from a run's weights: the reader's digit features (s6_predict.py --calibrate), the ONNX exports
# and their record (s6_export.py). A run trained again in the folder makes them wrong, so it removes them.
FEATURES_FILE, FP32_FILE, INT8_FILE, EXPORT_RECORD = "digit-features.pt", "model.onnx", "model-int8.onnx", "export.json"
MADE_FROM_WEIGHTS = (FEATURES_FILE, FP32_FILE, INT8_FILE, EXPORT_RECORD)
HOLDER_FILE = ".s6-run.holder"  # who holds a folder's lock, for the message that refuses a second run
LOCK_FILE = ".s6-run.lock"  # the lock itself, where the folder cannot be locked (Windows, some network drives)


class SavedRun(NamedTuple):
    """What a run folder holds: the config, the epochs done, the metrics so far, and whether it finished."""

    config: TrainConfig
    epochs_done: int
    finished: bool
    record: dict | None  # metrics.json
    model_class: str | None  # the class of the network trained, where the run's files say (runs before S6 saved it)


def run_record(config, model, history):
    """Everything metrics.json holds: the config, the recipe it is (derived from the config's values), the model's
    size and class, where it ran, and the history."""
    device = next(model.parameters()).device
    return {"config": config.to_dict(), "recipe": recipe_of(config), "parameters": count_parameters(model),
            "model_class": type(model).__name__, "device": device.type, "machine": machine_name(device),
            "torch": torch.__version__, "eval_set": eval_set(config), "summary": summarize(history),
            "history": history}


def save_epoch(out_dir, run, history):
    """checkpoint.pt (everything a resume needs) and metrics.json, after the last epoch of `history`."""
    save_torch(Path(out_dir) / "checkpoint.pt", checkpoint_state(run, history))
    save_json(Path(out_dir) / "metrics.json", run_record(run.config, run.model, history))


def check_room(out_dir, run, history):
    """A WriteError now where `out_dir` cannot take a checkpoint of this run (a full disk, a file-size limit, a
    read-only folder), rather than after an epoch's training."""
    out_dir = writable_folder(out_dir)
    probe = out_dir / ".s6-room-test.tmp"
    try:
        probe.write_bytes(torch_bytes(checkpoint_state(run, history)))
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
            and all(map(is_epoch_record, record["history"])) and isinstance(record.get("summary"), dict | None))


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
        return SavedRun(config, len(record["history"]), True, record, record.get("model_class"))
    if "checkpoint.pt" in present:
        state = load_torch_file(folder / "checkpoint.pt")
        check_checkpoint(state, folder / "checkpoint.pt")
        config = config_from_record(state["config"], folder / "checkpoint.pt")
        record = read_metrics(folder / "metrics.json") if "metrics.json" in present else None
        return SavedRun(config, state["epoch"], False, record, state.get("model_class"))
    raise CheckpointError(f"{folder} holds {' and '.join(present)} but not a whole run: move it away, or replace "
                          f"it with --overwrite")


def network_of(config, model_class=None):
    """The class in s6_model.MODELS that a saved run of `config` trained, or None for a network S6 does not have (one
    of the lab's, or a user's own, which the run's `model_class` names where its config does not)."""
    network = MODELS.get(config.model)
    return network if network is not None and model_class in (None, network.__name__) else None


def trained_network_name(config, model_class=None):
    """The name of the network a saved run trained: its class where the run's files say, else its config's model."""
    return model_class or config.model


def describe_run(run):
    """A saved run in a few words, for the messages that refuse to replace it."""
    if run.finished:
        return f"a finished run ({run.config.model}, {run.epochs_done} epochs)"
    return f"a run stopped after epoch {run.epochs_done} of {run.config.epochs}"


def how_to_resume(folder, run):
    """How to continue the stopped run in `folder`: s6_train.py for S6's networks, fit in Python for another."""
    if network_of(run.config, run.model_class) is not None:
        return f"continue it with --resume {folder} (in Python, fit(..., resume=True))"
    name = trained_network_name(run.config, run.model_class)
    return (f"continue it in Python, where {name} is defined: fit(load_config('{folder / 'checkpoint.pt'}'), "
            f"out_dir='{folder}', resume=True, model={name})")


def refuse_to_replace_run(folder, run):
    """A UserError for a new run into `folder`, which holds `run`, saying how to go on instead."""
    way_out = how_to_resume(folder, run) if not run.finished else "write elsewhere with --out"
    raise UserError(f"{folder} already holds {describe_run(run)}: {way_out}, or replace it with --overwrite "
                    f"(overwrite=True in Python)")


def check_fresh(folder, overwrite):
    """Before a new run into `folder`: a UserError where it holds a run, or files made from weights (exports, digit
    features), unless `overwrite`: a new run replaces nothing it was not told to."""
    if overwrite:
        return
    run = saved_run(folder)
    if run is not None:
        refuse_to_replace_run(folder, run)
    made = [name for name in MADE_FROM_WEIGHTS if (Path(folder) / name).exists()]
    if made:
        raise UserError(f"{folder} holds {', '.join(made)}, made from other weights: write elsewhere with --out, or "
                        f"replace them with --overwrite (overwrite=True in Python)")


def remove_run(folder):
    """Delete a run's files from `folder`, and the files made from its weights (nothing else there), so that a new
    run leaves nothing of other weights behind."""
    for name in RUN_FILES:
        (Path(folder) / name).unlink(missing_ok=True)
    remove_made_from_weights(folder)


def remove_made_from_weights(folder):
    """Delete the files made from the weights in `folder`: a resumed run changes them."""
    for name in MADE_FROM_WEIGHTS:
        (Path(folder) / name).unlink(missing_ok=True)


# The folders this process holds locked, each with the thread that locked it: a sweep locks its seed folders, and
# fit, in the same thread, locks each again
_HELD = {}


@contextlib.contextmanager
def run_lock(*folders):
    """Hold an OS lock on each folder while a run trains there; a UserError at once, naming the folder and the
    process, where another process holds one. The OS releases a lock when its process ends, however it ends, so a
    crashed or killed run leaves none behind. The lock is on the folder itself where the OS allows it, so deleting
    files in the folder does not release it; elsewhere it is on a file there (filelock)."""
    with contextlib.ExitStack() as held:
        for folder in folders:
            held.enter_context(_locked(writable_folder(folder)))
        yield


@contextlib.contextmanager
def _locked(folder):
    key = folder.resolve()
    if _HELD.get(key, (None,))[0] == threading.get_ident():  # this thread holds it already
        yield
        return
    release = _lock_folder(folder)
    if release is False:
        release = _lock_file(folder)
    if release is None:
        holder = (folder / HOLDER_FILE).read_text().strip() if (folder / HOLDER_FILE).is_file() else ""
        raise UserError(f"{folder} is in use by a run still training there ({holder or 'another process'}): wait "
                        f"for it to end, or choose another --out")
    _HELD[key] = (threading.get_ident(), release)
    try:
        try:
            (folder / HOLDER_FILE).write_text(f"pid {os.getpid()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}")
        except OSError as error:
            raise WriteError(f"cannot write to {folder} ({reason(error)}): free some space, or choose another "
                             f"--out") from None
        yield
    finally:
        with contextlib.suppress(OSError):  # the note goes with the lock; a read-only folder keeps none anyway
            (folder / HOLDER_FILE).unlink(missing_ok=True)
        del _HELD[key]
        release()


def _lock_folder(folder):
    """Lock the folder itself (flock on its directory): a function that releases it, None where another process
    holds it, or False where this OS or file system cannot lock a folder."""
    try:
        import fcntl
    except ImportError:  # Windows
        return False
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        return None
    except OSError:  # a file system that locks no folders (NFS locks open files only)
        os.close(descriptor)
        return False
    return lambda: os.close(descriptor)  # closing the descriptor releases the lock


def _lock_file(folder):
    """Lock a file in the folder (filelock): a function that releases it, or None where another process holds it."""
    lock = FileLock(folder / LOCK_FILE)
    try:
        lock.acquire(blocking=False)
    except Timeout:
        return None
    return lock.release
