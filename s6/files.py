"""Every file S6 writes is written whole or not at all: into a temporary file beside it, then renamed into place.

A full disk, a file-size limit, or a folder that is read-only or cannot be made ends in a WriteError, one line
naming the path and the cause; no temporary file is left and any earlier file at the path stays as it was.
A command that will write checks first that it can (`writable_folder`, `check_writable`), before its long work.
"""

import contextlib
import io
import json
import os
import tempfile
from pathlib import Path

import torch
from filelock import FileLock, Timeout

from s6.config import UserError


class WriteError(UserError):
    """A file or folder could not be written: the disk is full, the folder is read-only, or a file is in the way."""


class CheckpointError(UserError):
    """A file is damaged, is not an S6 checkpoint or model, or does not fit the model."""


def reason(error):
    """The cause an OSError gives, in a few words."""
    return error.strerror or str(error).strip() or type(error).__name__


def write_atomically(path, data):
    """Write `data` (bytes) to `path` through a temporary file renamed into place. Raises WriteError."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as error:
        with contextlib.suppress(OSError):  # in a read-only folder even the clean-up fails: there is nothing to undo
            tmp.unlink(missing_ok=True)
        raise WriteError(f"could not write {path} ({reason(error)}); any earlier {path.name} there is "
                         f"intact") from None


def save_json(path, data):
    """`data` as indented JSON at `path`, atomically."""
    write_atomically(path, (json.dumps(data, indent=2) + "\n").encode())


def torch_bytes(obj):
    """What torch.save writes for `obj`: serialised in memory, so that only the file's own write can fail, with
    an OSError that names its cause (torch's file writer reports a full disk as 'unexpected pos')."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def save_torch(path, obj):
    """torch.save(obj) at `path`, atomically."""
    write_atomically(path, torch_bytes(obj))


def save_figure(path, figure, dpi=100):
    """A matplotlib figure as an image file at `path` (its suffix gives the format), atomically."""
    path = Path(path)
    buffer = io.BytesIO()
    figure.savefig(buffer, format=path.suffix.lstrip(".").lower(), dpi=dpi)
    write_atomically(path, buffer.getvalue())


def read_json(path, check, what_to_do):
    """The JSON file at `path`, once `check(data)` says it has the shape S6 writes; else a one-line CheckpointError
    saying it is damaged and `what_to_do`."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError):
        data = None
    if data is None or not check(data):
        raise CheckpointError(f"{path} is damaged: {what_to_do}")
    return data


def writable_folder(folder, advice="choose another folder"):
    """`folder`, made if it is missing, once a file has been written and removed there; else a WriteError naming the
    cause and, after it, `advice`."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):  # a name of its own: two commands may probe one folder at once
            pass
    except OSError as error:
        cause = "it is a file" if folder.is_file() else reason(error)
        raise WriteError(f"cannot write to {folder} ({cause}): {advice}") from None
    return folder


def cannot_write_in(folder):
    """Why nothing can be written in `folder`, or where it does not exist yet in the nearest folder above it that
    does, in a few words; None where a file can be. Found by writing a temporary file there: no folder is made."""
    existing = next((parent for parent in [Path(folder), *Path(folder).parents] if parent.is_dir()), Path("."))
    try:
        with tempfile.TemporaryFile(dir=existing):
            return None
    except OSError as error:
        return reason(error)


def check_writable(path, advice="choose another folder"):
    """Raise a WriteError now, before any long work, where the file `path` could not be written later: its
    folder cannot be made or written (the error ends with `advice`), or a folder stands at the path."""
    path = Path(path)
    if path.is_dir():
        raise WriteError(f"cannot write {path}: it is a folder; give a file's name")
    writable_folder(path.parent, advice)
    return path


def refuse_to_replace(paths, overwrite):
    """A one-line UserError where a file about to be written exists already, unless `overwrite`."""
    existing = [str(path) for path in paths if Path(path).exists()]
    if existing and not overwrite:
        verb = "exists" if len(existing) == 1 else "exist"
        raise UserError(f"{', '.join(existing)} {verb} already: write elsewhere, or replace "
                        f"{'it' if len(existing) == 1 else 'them'} with --overwrite")


def check_figure(path):
    """A UserError where matplotlib cannot write a figure in the format `path`'s suffix names."""
    from matplotlib.figure import Figure

    formats = Figure().canvas.get_supported_filetypes()
    suffix = Path(path).suffix.lstrip(".").lower()
    if suffix not in formats:
        raise UserError(f"{path}: matplotlib cannot write .{suffix} files; give a name ending in one of "
                        f"{', '.join('.' + name for name in sorted(formats))}")


def check_outputs(paths, overwrite, figures=(), advice="choose another folder"):
    """Before any long work, a one-line error where a file about to be written exists already (unless
    `overwrite`), could not be written later (`check_writable`, with `advice`), or, for the `figures` among them, is
    of a format matplotlib cannot write. Returns the paths, as Paths."""
    for figure in figures:
        check_figure(figure)
    refuse_to_replace([*paths, *figures], overwrite)
    return [check_writable(path, advice) for path in [*paths, *figures]]


@contextlib.contextmanager
def writing(paths, overwrite, figures=(), advice="choose another folder"):
    """`check_outputs`, then a lock on each output until the block ends: a second command that would write one of
    them meanwhile is refused at once, in one line, instead of one result replacing the other. Yields the paths."""
    checked = check_outputs(paths, overwrite, figures, advice)
    with contextlib.ExitStack() as held:
        for path in checked:
            lock_file = path.with_name(f".s6-{path.name}.lock")
            try:
                held.enter_context(FileLock(lock_file).acquire(blocking=False))
            except Timeout:
                raise UserError(f"{path} is being written by another command still running: wait for it to end, "
                                f"or write elsewhere") from None
            held.callback(_remove_quietly, lock_file)  # while the lock is still held: no lock file is left behind
        refuse_to_replace(checked, overwrite)  # again, now that no other command can write them
        yield checked


def _remove_quietly(path):
    with contextlib.suppress(OSError):  # Windows keeps a file that is open
        path.unlink(missing_ok=True)
