"""s6/checkpoints.py: a resumed run repeats an uninterrupted one; foreign or damaged files are refused in one line."""

import errno
import pickle
import shutil
from pathlib import Path

import pytest
import torch
from conftest import quiet, without_seconds

from s6.checkpoints import CheckpointError, load_config, load_torch_file, load_weights
from s6.files import WriteError, save_json, write_atomically
from s6.runs import saved_run
from s6.training import fit
from s6_model import Net, TinyNet


def interrupt_during_epoch(k):
    """A log callback that raises KeyboardInterrupt when epoch k's line is printed, before it is saved."""
    def log(line):
        if line.startswith(f"{k:5d} |"):
            raise KeyboardInterrupt
    return log


def test_resumed_run_ends_with_the_same_history_and_weights_as_an_uninterrupted_one(small_config, small_run,
                                                                                    tmp_path):
    uninterrupted_model, uninterrupted, _ = small_run  # fit(small_config()), two epochs
    with pytest.raises(KeyboardInterrupt):
        fit(small_config(), out_dir=tmp_path, progress=False, log=interrupt_during_epoch(2))
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["epoch"] == 1
    assert not (tmp_path / "model.pt").exists()
    _, resumed = fit(small_config(), out_dir=tmp_path, resume=True, progress=False, log=quiet)
    assert without_seconds(resumed) == without_seconds(uninterrupted)
    full = uninterrupted_model.state_dict()
    again = torch.load(tmp_path / "model.pt", weights_only=True)
    assert full.keys() == again.keys() and all(torch.equal(full[k], again[k]) for k in full)


def test_a_failed_write_leaves_the_previous_file_whole_and_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    save_json(path, {"epoch": 1})
    real_write = Path.write_bytes

    def half_then_full(self, data):
        real_write(self, data[:5])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", half_then_full)
    with pytest.raises(WriteError, match=r"could not write .*metrics.json \(No space left on device\).*intact"):
        write_atomically(path, b'{"epoch": 2}')
    monkeypatch.undo()
    assert path.read_text() == '{\n  "epoch": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


class RunsCode:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_a_pickle_that_would_run_code_is_refused_and_runs_nothing(tmp_path, capsys):
    path = tmp_path / "model.pt"
    path.write_bytes(pickle.dumps(RunsCode(), protocol=2))
    with pytest.raises(CheckpointError, match=f"{path} cannot be read"):
        load_torch_file(path)
    assert "this must never run" not in capsys.readouterr().out


@pytest.mark.parametrize("damage, looks", [(lambda data: data[: len(data) // 2], "looks damaged"),
                                           (lambda data: b"", "is empty")], ids=["cut short", "empty"])
def test_a_damaged_file_is_named_as_damaged_with_what_to_do(finished_run, tmp_path, damage, looks):
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(damage((finished_run / "checkpoint.pt").read_bytes()))
    with pytest.raises(CheckpointError, match=f"{path} cannot be read as an S6 checkpoint or model.pt: it {looks}.*"
                                              f"give another file"):
        load_torch_file(path)


@pytest.mark.parametrize("change", [{"history": {}}, {"epoch": 5}, {"optimizer": None}], ids=str)
def test_a_checkpoint_not_of_the_shape_s6_writes_is_refused_in_one_line(finished_run, tmp_path, change):
    state = torch.load(finished_run / "checkpoint.pt", weights_only=True)
    torch.save({**state, **change}, tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="is not a whole checkpoint"):
        saved_run(tmp_path)


@pytest.mark.parametrize("record", ['{"config": {}, "history": {}}', '[1, 2]', '{"config": {"model": "net"}}'])
def test_a_metrics_json_not_of_the_shape_s6_writes_is_damaged(finished_run, tmp_path, record):
    shutil.copytree(finished_run, tmp_path / "run")
    (tmp_path / "run" / "metrics.json").write_text(record)
    with pytest.raises(CheckpointError, match="metrics.json is damaged"):
        saved_run(tmp_path / "run")


def test_weights_of_another_model_say_which_model_they_are_for_and_the_flag_to_give(tmp_path):
    torch.save(TinyNet().state_dict(), tmp_path / "model.pt")
    with pytest.raises(CheckpointError, match="holds weights for TinyNet, not Net: give --model tiny$"):
        load_weights(Net(), tmp_path / "model.pt")
    torch.save({"conv.weight": torch.zeros(3)}, tmp_path / "model.pt")  # no model's
    with pytest.raises(CheckpointError, match="does not hold weights for Net"):
        load_weights(Net(), tmp_path / "model.pt")


def test_a_run_folder_given_for_a_file_is_named_with_the_file_meant(finished_run):
    with pytest.raises(CheckpointError, match=f"is a folder; did you mean {finished_run / 'model.pt'} or "):
        load_weights(Net(), finished_run)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        load_weights(Net(), tmp_path / "model.pt")


def test_weights_from_a_checkpoint_are_the_weight_average_that_model_pt_holds(finished_run):
    from_checkpoint = load_weights(Net(), finished_run / "checkpoint.pt").state_dict()
    from_model = load_weights(Net(), finished_run / "model.pt").state_dict()
    assert all(torch.equal(from_checkpoint[k], from_model[k]) for k in from_model)


def test_a_checkpoint_with_settings_this_version_lacks_cannot_be_resumed(finished_run, tmp_path):
    state = torch.load(finished_run / "checkpoint.pt", weights_only=True)
    state["config"]["warp_drive"] = True
    torch.save(state, tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="settings this one does not have \\(warp_drive\\)"):
        load_config(tmp_path / "checkpoint.pt")


@pytest.mark.parametrize("remove, finished", [(None, True), ("model.pt", False)])
def test_a_folder_tells_a_finished_run_from_a_stopped_one(finished_run, tmp_path, remove, finished):
    folder = tmp_path / "run"
    shutil.copytree(finished_run, folder)
    if remove:
        (folder / remove).unlink()
    run = saved_run(folder)
    assert run.finished == finished and run.epochs_done == 2 and run.config.epochs == 2
    assert saved_run(tmp_path / "empty") is None


def test_a_damaged_metrics_json_is_a_one_line_error(finished_run, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(finished_run, folder)
    (folder / "metrics.json").write_text('{"config": {"model": "net", "epo')
    with pytest.raises(CheckpointError, match="metrics.json is damaged"):
        saved_run(folder)


def test_a_model_pt_holds_no_config_to_resume_from(tmp_path):
    torch.save(Net().state_dict(), tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="cannot be resumed"):
        load_config(tmp_path / "checkpoint.pt")


def test_a_schedule_whose_state_holds_a_method_is_saved_loadably(small_config, tmp_path, monkeypatch):
    # torch before 2.4 keeps OneCycleLR's annealing method in its state_dict, which weights_only refuses
    onecycle = torch.optim.lr_scheduler.OneCycleLR
    monkeypatch.setattr(onecycle, "state_dict",
                        lambda self: {**vars(self), "anneal_func": self._annealing_cos} | {"optimizer": None})
    fit(small_config(epochs=1), out_dir=tmp_path, progress=False, log=quiet)
    state = load_torch_file(tmp_path / "checkpoint.pt")
    assert "anneal_func" not in state["scheduler"] and state["scheduler"]["total_steps"] == 3
