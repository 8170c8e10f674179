"""s6.export and s6_export.py: ONNX files that read digits as PyTorch does, int8 within its bound, and one-line
errors. On a part of the test set, so that the file runs in seconds; the committed files are checked on all."""

import json
import shutil
import sys

import numpy as np
import pytest
import torch
from conftest import DATA_DIR, ROOT, assert_one_line_error, file_size_limit, run_script

from s6 import export
from s6.checkpoints import load_weights
from s6_model import MODELS

TINY = ROOT / "results" / "tiny-seed1"
MICRO = ROOT / "results" / "micro-seed1"
# TinyNet's int8 file changes none of these images' predictions, so the bound (0.10 points, 2 images) has room
TEST_IMAGES, CALIBRATION_IMAGES = 2000, 300


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory):
    """(the model, its export folder, the record) of the committed TinyNet, checked on TEST_IMAGES test images."""
    model = load_weights(MODELS["tiny"](), TINY / "model.pt")
    folder = tmp_path_factory.mktemp("tiny")
    record = export.export_and_check(model, folder, DATA_DIR, limit=TEST_IMAGES,
                                     calibration_images=CALIBRATION_IMAGES, threads=1)
    return model, folder, record


@pytest.fixture
def one_thread():
    """--threads 1 for a script run in this process, and torch's threads as they were afterwards: two threads on a
    busy two-core machine spin rather than run."""
    threads = torch.get_num_threads()
    yield ["--threads", 1]
    torch.set_num_threads(threads)


def test_a_trained_network_exports_and_onnx_runtime_predicts_as_pytorch(tiny_export):
    model, folder, record = tiny_export
    images, labels = export.mnist_arrays(DATA_DIR, limit=TEST_IMAGES)
    expected = export.torch_logits(model, images)
    logits = export.onnx_logits(folder / export.FP32_FILE, images, threads=1)
    assert np.array_equal(logits.argmax(1), expected.argmax(1))
    assert np.abs(logits - expected).max() < 1e-4
    assert record["accuracy"]["onnx_fp32"] == record["accuracy"]["pytorch"] == export.accuracy(expected, labels)
    assert record["agreement_with_pytorch"]["onnx_fp32"] == 100
    assert record["test_images"] == TEST_IMAGES and record["exporter"] == export.default_exporter()


def test_the_int8_export_stays_within_its_bound_and_is_smaller(tiny_export):
    _, folder, record = tiny_export
    images, labels = export.mnist_arrays(DATA_DIR, limit=TEST_IMAGES)
    acc = export.accuracy(export.onnx_logits(folder / export.INT8_FILE, images, threads=1), labels)
    assert acc == record["accuracy"]["onnx_int8"]
    assert abs(acc - record["accuracy"]["onnx_fp32"]) <= export.INT8_TOLERANCE
    files = record["files"]
    assert files[export.INT8_FILE]["bytes"] < files[export.FP32_FILE]["bytes"]
    assert files[export.FP32_FILE]["external_data_files"] == files[export.INT8_FILE]["external_data_files"] == 0
    assert sorted(path.name for path in folder.iterdir()) == [export.INT8_FILE, export.FP32_FILE]  # no .tmp


@pytest.mark.parametrize("name", [export.FP32_FILE, export.INT8_FILE])
def test_an_exported_file_takes_any_batch_size_and_states_the_normalisation(tiny_export, name):
    import onnx

    _, folder, _ = tiny_export
    images = export.mnist_arrays(DATA_DIR, limit=7)[0]
    reader = export.session(folder / name, threads=1)
    assert [i.name for i in reader.get_inputs()] == ["image"] and [o.name for o in reader.get_outputs()] == ["logits"]
    assert reader.run(None, {"image": images[:1]})[0].shape == (1, 10)
    assert reader.run(None, {"image": images})[0].shape == (7, 10)
    metadata = {entry.key: entry.value for entry in onnx.load(str(folder / name)).metadata_props}
    assert metadata["s6.normalization"] == "(pixel / 255 - 0.1307) / 0.3081" and metadata["s6.model"] == "tiny"
    assert "light digit on black" in metadata["s6.input"] and "logits" in metadata["s6.output"]


def test_a_failed_check_leaves_no_file_and_a_re_export_removes_the_earlier_files_it_was_to_replace(tmp_path,
                                                                                                  monkeypatch):
    model = load_weights(MODELS["micro"](), MICRO / "model.pt")
    monkeypatch.setattr(export, "onnx_logits", lambda model, images, threads=None: np.zeros((len(images), 10)))
    with pytest.raises(export.ExportCheckFailed, match="failed its check, so it was not kept"):
        export.export_and_check(model, tmp_path / "new", DATA_DIR, int8=False, limit=100)
    assert not list((tmp_path / "new").iterdir())
    for name in (export.FP32_FILE, export.INT8_FILE):  # an earlier export, of the weights before retraining
        (tmp_path / name).write_bytes(b"of other weights")
    with pytest.raises(export.ExportCheckFailed, match="the earlier model.onnx and model-int8.onnx there, .* removed"):
        export.export_and_check(model, tmp_path, DATA_DIR, int8=True, overwrite=True, limit=100)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["new"]


def test_the_script_exports_a_run_folder_records_it_and_benchmarks_it(tmp_path, run_in_process, one_thread):
    run = tmp_path / "micro-run"
    run.mkdir()
    for name in ("model.pt", "metrics.json"):  # metrics.json says the class: no --model
        shutil.copy(MICRO / name, run / name)
    record = tmp_path / "export.json"
    common = ["--record", record, "--data-dir", DATA_DIR, *one_thread]
    result = run_in_process("s6_export.py", run, "--int8", "--test-images", 1000, "--calibration-images",
                            CALIBRATION_IMAGES, *common)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "" and f"{run / export.FP32_FILE}: " in result.stdout
    entry = json.loads(record.read_text())["exports"]["micro-run"]
    assert entry["model"] == "micro" and entry["accuracy"]["onnx_fp32"] == entry["accuracy"]["pytorch"]

    earlier = json.loads(record.read_text())
    earlier["benchmark"] = {"runs": {"other-run": {"images_per_second": {"batch 1": {"pytorch eager": 1.0}}}}}
    record.write_text(json.dumps(earlier))  # another run's timings, which a --bench of this run keeps
    result = run_in_process("s6_export.py", run, "--bench", "--repeats", 1, "--test-images", 100, *common)
    assert result.returncode == 0, result.stderr
    runs = json.loads(record.read_text())["benchmark"]["runs"]
    assert runs["other-run"] == earlier["benchmark"]["runs"]["other-run"]
    assert json.loads(record.read_text())["exports"]["micro-run"] == entry
    measured = runs["micro-run"]
    assert measured["machine"] and measured["threads"] == 1 and measured["repeats"] == 1
    assert set(measured["images_per_second"]) == {"batch 1", "batch 1000"}
    assert measured["ratio_to_pytorch_eager"]["batch 1"]["pytorch eager"] == 1
    assert measured["predictions"]["onnx runtime fp32"]["identical_predictions"]


def test_an_existing_export_is_not_replaced_without_overwrite(tiny_export, run_in_process):
    _, folder, _ = tiny_export
    result = run_in_process("s6_export.py", TINY, "--out", folder, "--data-dir", DATA_DIR)
    assert_one_line_error(result)
    assert "exists already" in result.stderr and "--overwrite" in result.stderr


@pytest.mark.parametrize("package", ["onnx", "onnxruntime"])
def test_a_missing_package_is_a_one_line_error_saying_what_to_install(package, monkeypatch, run_in_process):
    monkeypatch.setitem(sys.modules, package, None)  # `import onnxruntime` then fails as if it were not installed
    result = run_in_process("s6_export.py", TINY, "--int8")
    assert_one_line_error(result)
    assert f"needs the {package} package" in result.stderr and "pip install -r requirements.txt" in result.stderr


def test_the_dynamo_exporter_without_onnxscript_is_a_one_line_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    with pytest.raises(export.UserError, match="onnxscript|no dynamo ONNX exporter"):
        export.export_onnx(MODELS["micro"](), exporter="dynamo")


@pytest.mark.parametrize("case", ["missing file", "folder without weights", "not a model", "another model's"])
def test_a_bad_path_or_file_is_a_one_line_error(case, tmp_path, run_in_process):
    source, flags = tmp_path / "model.pt", []
    if case == "folder without weights":
        source = tmp_path
    elif case == "not a model":
        source.write_text("not a checkpoint")
    elif case == "another model's":
        source, flags = TINY, ["--model", "net"]
    result = run_in_process("s6_export.py", source, *flags, "--out", tmp_path / "out")
    assert_one_line_error(result)
    assert str(source) in result.stderr
    if case == "another model's":
        assert "holds weights for TinyNet, not Net: give --model tiny" in result.stderr


def read_idx(path):
    """An IDX file (MNIST's format: a big-endian header of dimension sizes, then unsigned bytes) as a numpy array,
    read here without torchvision or s6.data, so that the committed files are checked by a reader of their own."""
    raw = path.read_bytes()
    dimensions = raw[3]
    shape = np.frombuffer(raw, ">u4", count=dimensions, offset=4)
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dimensions).reshape(shape)


@pytest.mark.parametrize("run", ["net-seed1", "small-seed1", "tiny-seed1", "micro-seed1"])
def test_each_committed_export_scores_what_the_record_and_its_run_say(run):
    raw = ROOT / DATA_DIR / "MNIST" / "raw"
    pixels, labels = read_idx(raw / "t10k-images-idx3-ubyte"), read_idx(raw / "t10k-labels-idx1-ubyte")
    images = ((pixels / 255 - 0.1307) / 0.3081).astype(np.float32)[:, None]  # as the files' metadata say
    entry = json.loads((ROOT / "results" / "export.json").read_text())["exports"][run]
    last_epoch = json.loads((ROOT / "results" / run / "metrics.json").read_text())["history"][-1]["test_acc"]
    fp32 = export.accuracy(export.onnx_logits(ROOT / "results" / run / export.FP32_FILE, images, threads=1), labels)
    int8 = export.accuracy(export.onnx_logits(ROOT / "results" / run / export.INT8_FILE, images, threads=1), labels)
    assert len(labels) == entry["test_images"] == 10_000
    assert round(fp32, 2) == entry["accuracy"]["onnx_fp32"] and abs(fp32 - last_epoch) <= 0.02
    assert round(int8, 2) == entry["accuracy"]["onnx_int8"] and abs(int8 - fp32) <= export.INT8_TOLERANCE


def test_a_record_in_a_read_only_folder_ends_in_one_line_before_any_file_is_written(tmp_path, read_only,
                                                                                    run_in_process):
    folder = read_only(tmp_path / "read-only")
    result = run_in_process("s6_export.py", MICRO, "--out", tmp_path / "out", "--record", folder / "export.json",
                            "--test-images", 500, "--data-dir", DATA_DIR)
    assert_one_line_error(result)
    assert f"cannot write to {folder} (" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_full_disk_ends_an_export_in_one_line_naming_the_file_and_leaves_no_temporary_file(tmp_path):
    record = tmp_path / "export.json"
    result = run_script("s6_export.py", MICRO, "--out", tmp_path / "out", "--record", record, "--test-images", 500,
                        "--data-dir", DATA_DIR, "--threads", 1, preexec_fn=file_size_limit(5_000))  # model.onnx: 12 KB
    assert_one_line_error(result)
    assert f"could not write {tmp_path / 'out' / export.FP32_FILE} (File too large)" in result.stderr
    assert not list((tmp_path / "out").iterdir()) and not record.exists()
