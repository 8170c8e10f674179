"""s6/checkpoints.py: a resumed run repeats an uninterrupted one; foreign or damaged files are refused in one line."""

import pickle

import pytest
import torch
from conftest import quiet, without_seconds

from s6.checkpoints import CheckpointError, atomic_write, load_config, load_torch_file, load_weights, save_json
from s6.training import fit
from s6_model import Net, TinyNet


def interrupt_during_epoch(k):
    """A log callback that raises KeyboardInterrupt when epoch k's line is printed, before it is saved."""
    def log(line):
        if line.startswith(f"{k:5d} |"):
            raise KeyboardInterrupt
    return log


def test_resumed_run_ends_with_the_same_history_and_weights_as_an_uninterrupted_one(small_config, tmp_path):
    config = small_config(epochs=4)
    _, uninterrupted = fit(config, out_dir=tmp_path / "full", progress=False, log=quiet)
    with pytest.raises(KeyboardInterrupt):
        fit(config, out_dir=tmp_path / "stopped", progress=False, log=interrupt_during_epoch(3))
    assert torch.load(tmp_path / "stopped" / "checkpoint.pt", weights_only=True)["epoch"] == 2
    assert not (tmp_path / "stopped" / "model.pt").exists()
    _, resumed = fit(config, out_dir=tmp_path / "stopped", resume=True, progress=False, log=quiet)
    assert without_seconds(resumed) == without_seconds(uninterrupted)
    full = torch.load(tmp_path / "full" / "model.pt", weights_only=True)
    again = torch.load(tmp_path / "stopped" / "model.pt", weights_only=True)
    assert all(torch.equal(full[k], again[k]) for k in full)


def test_a_crash_while_writing_leaves_the_previous_file_whole(tmp_path):
    path = tmp_path / "metrics.json"
    save_json(path, {"epoch": 1})

    def crash_half_way(tmp):
        tmp.write_text('{"epo')
        raise OSError("No space left on device")

    with pytest.raises(OSError):
        atomic_write(path, crash_half_way)
    assert path.read_text() == '{\n  "epoch": 1\n}\n'


class RunsCode:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_a_pickle_that_would_run_code_is_refused_and_runs_nothing(tmp_path, capsys):
    path = tmp_path / "model.pt"
    path.write_bytes(pickle.dumps(RunsCode(), protocol=2))
    with pytest.raises(CheckpointError, match="is not an S6 checkpoint"):
        load_torch_file(path)
    assert "this must never run" not in capsys.readouterr().out


def test_weights_of_another_model_are_a_clear_error(tmp_path):
    torch.save(TinyNet().state_dict(), tmp_path / "model.pt")
    with pytest.raises(CheckpointError, match="does not hold weights for Net"):
        load_weights(Net(), tmp_path / "model.pt")


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        load_weights(Net(), tmp_path / "model.pt")


def test_a_model_pt_holds_no_config_to_resume_from(tmp_path):
    torch.save(Net().state_dict(), tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="cannot be resumed"):
        load_config(tmp_path / "checkpoint.pt")
