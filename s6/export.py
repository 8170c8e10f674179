"""A trained network taken out of PyTorch: model.onnx (fp32) and model-int8.onnx, each checked in ONNX Runtime.

Both map "image", float32 (N, 1, 28, 28), any N, to "logits", float32 (N, 10). Each image is one light digit on
black, 28x28, as MNIST's, normalised as NORMALIZATION says (so do the files' metadata_props). A file is kept only
if ONNX Runtime reads MNIST's test set as PyTorch does (`check_fp32`, `check_int8`), else ExportCheckFailed.
onnx and onnxruntime are imported only where needed, so that the rest of S6 runs without them.
"""

import contextlib
import copy
import importlib
import inspect
import io
import logging
import os
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from s6.checkpoints import writable_folder
from s6.cli import refuse_to_replace
from s6.config import UserError
from s6.data import MNIST_MEAN, MNIST_STD, mnist_dataset, normalize, to_unit_range
from s6_model import count_parameters

FP32_FILE, INT8_FILE = "model.onnx", "model-int8.onnx"
INPUT, OUTPUT = "image", "logits"
# The TorchScript exporter of torch 2.3 goes up to opset 17; the dynamo exporter starts at 18.
OPSETS = {"torchscript": 17, "dynamo": 18}
NORMALIZATION = f"(pixel / 255 - {MNIST_MEAN}) / {MNIST_STD}"
MIN_AGREEMENT = 99.99  # percent of test images on which ONNX Runtime's fp32 prediction must be PyTorch's
FP32_TOLERANCE, INT8_TOLERANCE = 0.01, 0.10  # accuracy points: fp32 vs PyTorch, int8 vs fp32
CALIBRATION_IMAGES = 5000
PACKAGES_HINT = "pip install -r requirements.txt"


class ExportCheckFailed(UserError):
    """An exported file reads MNIST's test set differently from the network it came from."""


def require(name):
    """The module `name` (onnx, onnxruntime, onnxscript), or a one-line UserError saying what to install."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise UserError(f"exporting to ONNX needs the {name.split('.')[0]} package, which is not installed: "
                        f"{PACKAGES_HINT}") from None


def default_exporter():
    """'torchscript' (torch.onnx.export with dynamo=False) where this torch has it, else 'dynamo'.

    The TorchScript exporter is in every torch from 2.3 to 2.14 at least, needs no onnxscript and takes a
    fraction of a second; the dynamo one takes seconds and needs onnxscript. torch.onnx.export gained `dynamo`
    in 2.5, and `operator_export_type` is an option of the TorchScript exporter alone, which goes with it.
    """
    options = inspect.signature(torch.onnx.export).parameters
    return "torchscript" if "dynamo" not in options or "operator_export_type" in options else "dynamo"


def plain_copy(model):
    """A CPU copy of `model` in eval mode, of its own class and with its own forward: a network fresh from
    training may have speed tricks switched on (s6.speed), and the caller's model keeps its mode and device."""
    plain = type(model)()
    plain.load_state_dict(copy.deepcopy(model.state_dict()))
    return plain.cpu().eval()


def export_onnx(model, path, exporter=None):
    """Write `model` (an S6 network, (N, 1, 28, 28) -> (N, 10)) to `path` as fp32 ONNX with a dynamic batch
    dimension. Returns {"exporter", "opset"}. `exporter`: 'torchscript', 'dynamo' or None for
    `default_exporter()`; 'dynamo' needs torch >= 2.5 and onnxscript (else a UserError)."""
    exporter = exporter or default_exporter()
    options = inspect.signature(torch.onnx.export).parameters
    extra = {"dynamo": exporter == "dynamo"} if "dynamo" in options else {}
    if exporter == "dynamo":
        if "dynamo" not in options:
            raise UserError(f"torch {torch.__version__} has no dynamo ONNX exporter (torch 2.5 and later have)")
        require("onnxscript")
        # one self-contained file, like the TorchScript exporter's, and no progress lines
        extra.update(external_data=False, verbose=False, dynamic_shapes=({0: torch.export.Dim("batch")},))
    else:
        extra["dynamic_axes"] = {INPUT: {0: "batch"}, OUTPUT: {0: "batch"}}
    # batch 2: torch.export would take a batch of 1 for a constant
    example = (torch.zeros(2, 1, 28, 28),)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        # the TorchScript exporter warns of its deprecation on every export; whether the file is right, the check
        # after it tells
        warnings.simplefilter("ignore")
        torch.onnx.export(plain_copy(model), example, str(path), input_names=[INPUT], output_names=[OUTPUT],
                          opset_version=OPSETS[exporter], **extra)
    return {"exporter": exporter, "opset": OPSETS[exporter]}


def shorten_names(graph):
    """Name the graph's inner tensors t0, t1, ... and its nodes not at all (the input and output keep theirs): the
    quantizer's names (".../Conv_output_0_DequantizeLinear_Output") would be a third of Net's int8 file."""
    names = {}

    def short(name):
        return name if name in ("", INPUT, OUTPUT) else names.setdefault(name, f"t{len(names)}")

    for tensor in graph.initializer:
        tensor.name = short(tensor.name)
    for node in graph.node:
        node.input[:], node.output[:], node.name = map(short, node.input), map(short, node.output), ""
    del graph.value_info[:]  # shapes ONNX Runtime infers again


def describe(path, model_key, quantization=None):
    """Write into the ONNX file at `path` (metadata_props) what a user outside Python needs: the input, its
    normalisation and the output. An int8 file (`quantization` given) has its names shortened too."""
    onnx = require("onnx")
    proto = onnx.load(str(path))
    if quantization:
        shorten_names(proto.graph)
    notes = {
        "s6.model": model_key,
        "s6.input": f"{INPUT}: float32 (N, 1, 28, 28), one light digit on black per 28x28 image, as in MNIST, "
                    f"each pixel normalised: {NORMALIZATION}",
        "s6.normalization": NORMALIZATION,
        "s6.mean": str(MNIST_MEAN), "s6.std": str(MNIST_STD), "s6.pixel_scale": "255",
        "s6.output": f"{OUTPUT}: float32 (N, 10), unnormalised scores of the digits 0-9: argmax is the digit, "
                     f"softmax gives probabilities",
        "s6.quantization": quantization or "none (fp32)",
    }
    del proto.metadata_props[:]
    for key, value in notes.items():
        proto.metadata_props.add(key=key, value=value)
    proto.doc_string = f"S6 {model_key}: {notes['s6.input']} -> {notes['s6.output']}"
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def mnist_arrays(data_dir, train=False, limit=None, seed=None):
    """(images float32 (N, 1, 28, 28), normalised as the network expects; labels int64 (N,)) of MNIST's test
    or training set: its first `limit` images, or with `seed`, `limit` drawn at random (a fixed draw)."""
    dataset = mnist_dataset(data_dir, train=train)
    index = torch.arange(len(dataset.targets))
    if seed is not None:
        index = torch.randperm(len(index), generator=torch.Generator().manual_seed(seed))
    index = index[:limit]
    images = normalize(to_unit_range(dataset.data[index].unsqueeze(1)))
    return images.numpy(), dataset.targets[index].numpy()


@contextlib.contextmanager
def _quiet():
    """No progress lines on stdout, and no advice logged on the root logger (ONNX Runtime's quantizer prints
    both): a script's output stays its own."""
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(logging.NOTSET)


def quantize_int8(fp32_path, path, calibration_images, per_channel=True):
    """Static post-training int8 quantization of the fp32 ONNX file into `path` with ONNX Runtime's quantizer:
    QDQ format, int8 weights (per output channel with `per_channel`) and int8 activations, whose ranges are
    percentiles (99.999%) of the values that `calibration_images` (float32 (N, 1, 28, 28), normalised; training
    images, never test images) give. Returns the settings. Memory: the calibration keeps every activation of
    every image, about 0.5 MB an image for Net.

    Of MinMax or percentile ranges, per-channel or per-tensor weights, 1,000 or 5,000 images, these changed
    the fewest fp32 predictions of held-out training images (MicroNet per tensor with MinMax lost 0.12 points
    on the test set). Source: ONNX Runtime, "Quantize ONNX models" (onnxruntime.ai/docs/performance/
    model-optimizations/quantization.html): S8S8 in QDQ format is its first choice on a CPU. The exporter has
    folded BatchNorm into the convolutions, which leaves the pre-processing it suggests nothing to do.
    """
    quantization = require("onnxruntime.quantization")
    batches = iter([{INPUT: calibration_images[i:i + 100]} for i in range(0, len(calibration_images), 100)])
    reader = SimpleNamespace(get_next=lambda: next(batches, None))  # ORT's CalibrationDataReader protocol
    with _quiet():
        quantization.quantize_static(
            str(fp32_path), str(path), reader, quant_format=quantization.QuantFormat.QDQ,
            per_channel=per_channel, activation_type=quantization.QuantType.QInt8,
            weight_type=quantization.QuantType.QInt8, calibrate_method=quantization.CalibrationMethod.Percentile)
    return {"tool": "onnxruntime.quantization.quantize_static", "format": "QDQ",
            "weights": "int8, " + ("per output channel" if per_channel else "per tensor"),
            "activations": "int8, per tensor", "calibration": f"percentile 99.999 on {len(calibration_images):,} "
                                                               "MNIST training images (a fixed random draw)"}


def session(path, threads=None):
    """An ONNX Runtime CPU session for the file at `path`; `threads`: its intra-op threads (None: ORT's choice)."""
    ort = require("onnxruntime")
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    if threads:
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_logits(path, images, threads=None, batch_size=1000):
    """Logits float32 (N, 10) of the ONNX file at `path` for `images` (float32 (N, 1, 28, 28), normalised)."""
    reader = session(path, threads)
    return np.concatenate([reader.run([OUTPUT], {INPUT: images[i:i + batch_size]})[0]
                           for i in range(0, len(images), batch_size)])


@torch.inference_mode()
def torch_logits(model, images, batch_size=1000):
    """Logits float32 (N, 10) of `model` in eval mode, fp32, on the CPU, with the class's own forward."""
    plain = plain_copy(model)
    return torch.cat([plain(torch.from_numpy(images[i:i + batch_size]))
                      for i in range(0, len(images), batch_size)]).numpy()


def accuracy(logits, labels):
    """Percent of `labels` (N,) that the logits (N, 10) predict."""
    return float(100 * np.mean(logits.argmax(1) == labels))


def agreement(logits, reference):
    """Percent of images on which two sets of logits (N, 10) predict the same digit."""
    return float(100 * np.mean(logits.argmax(1) == reference.argmax(1)))


def check_fp32(path, logits, torch_logits, labels):
    """Raise ExportCheckFailed unless the ONNX file's predictions are PyTorch's on MIN_AGREEMENT percent of
    the images and its accuracy within FP32_TOLERANCE points. Returns (its accuracy, the agreement)."""
    acc, agree, expected = accuracy(logits, labels), agreement(logits, torch_logits), accuracy(torch_logits, labels)
    if agree < MIN_AGREEMENT - 1e-9 or abs(acc - expected) > FP32_TOLERANCE + 1e-9:
        raise ExportCheckFailed(f"{path} failed its check, so it was not kept: ONNX Runtime predicts as PyTorch on "
                                f"{agree:.2f}% of {len(labels):,} test images (needed: {MIN_AGREEMENT}%), accuracy "
                                f"{acc:.2f}% against PyTorch's {expected:.2f}%")
    return acc, agree


def check_int8(path, logits, fp32_acc, torch_logits, labels):
    """Raise ExportCheckFailed unless the int8 file's accuracy is within INT8_TOLERANCE points of fp32's `fp32_acc`.
    Returns (its accuracy, its agreement with PyTorch)."""
    acc = accuracy(logits, labels)
    if abs(acc - fp32_acc) > INT8_TOLERANCE + 1e-9:
        raise ExportCheckFailed(f"{path} failed its check, so it was not kept: int8 accuracy {acc:.2f}% on "
                                f"{len(labels):,} test images, fp32 {fp32_acc:.2f}% (allowed: +-{INT8_TOLERANCE})")
    return acc, agreement(logits, torch_logits)


def write_checked(path, write, check):
    """write(tmp) then check(tmp) on a temporary name beside `path`, renamed to `path` only if the check passes;
    a failed write or check leaves no file behind and any earlier one at `path` as it was. Returns check's."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        result = check(tmp)
        os.replace(tmp, path)
        return result
    finally:
        tmp.unlink(missing_ok=True)


def file_size(path):
    """{"bytes": the file's size plus its external data files', "external_data_files": how many}."""
    onnx = require("onnx")
    proto = onnx.load(str(path), load_external_data=False)
    locations = {entry.value for tensor in proto.graph.initializer for entry in tensor.external_data
                 if entry.key == "location"}
    extra = [Path(path).parent / location for location in sorted(locations)]
    return {"bytes": Path(path).stat().st_size + sum(f.stat().st_size for f in extra),
            "external_data_files": len(extra)}


def export_and_check(model, folder, data_dir="data", int8=True, exporter=None, overwrite=False, limit=None,
                     calibration_images=None, threads=None):
    """Export `model` to folder/model.onnx and, with `int8`, folder/model-int8.onnx, each checked in ONNX Runtime
    on MNIST's test set (its first `limit` images; None: all 10,000) before it takes its name; int8 is calibrated
    on `calibration_images` training images (None: CALIBRATION_IMAGES). `threads`: ONNX Runtime's (None: its
    choice). Returns the record results/export.json keeps: accuracies in percent, agreement with PyTorch in
    percent of the images, sizes in bytes, the opset, exporter, quantizer and versions.

    Raises UserError where onnx or onnxruntime is missing or (unless `overwrite`) a file exists already,
    ExportCheckFailed where a check fails (where only int8's did, model.onnx is kept and no model-int8.onnx:
    an earlier one would belong to other weights; so too without `int8`), CheckpointError where the folder cannot
    be written.
    """
    onnx, ort = require("onnx"), require("onnxruntime")
    folder = writable_folder(folder)
    fp32_path, int8_path = folder / FP32_FILE, folder / INT8_FILE
    refuse_to_replace([fp32_path, int8_path] if int8 else [fp32_path], overwrite)
    images, labels = mnist_arrays(data_dir, limit=limit)
    expected = torch_logits(model, images)
    key, settings = type(model).key, {}

    def write_fp32(tmp):
        settings.update(export_onnx(model, tmp, exporter))
        describe(tmp, key)

    fp32 = write_checked(fp32_path, write_fp32,
                         lambda tmp: check_fp32(fp32_path, onnx_logits(tmp, images, threads), expected, labels))
    if not int8:
        int8_path.unlink(missing_ok=True)  # an int8 file there would be of other weights than model.onnx now
    record = {"model": key, "parameters": count_parameters(model), "test_images": len(labels),
              "accuracy": {"pytorch": round(accuracy(expected, labels), 4), "onnx_fp32": round(fp32[0], 4)},
              "agreement_with_pytorch": {"onnx_fp32": round(fp32[1], 4)}, "files": {FP32_FILE: file_size(fp32_path)},
              **settings, "normalization": NORMALIZATION,
              "versions": {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": ort.__version__}}
    if int8:
        calibration = mnist_arrays(data_dir, train=True, limit=calibration_images or CALIBRATION_IMAGES, seed=0)[0]

        def write_int8(tmp):
            settings["quantization"] = quantize_int8(fp32_path, tmp, calibration)
            describe(tmp, key, "; ".join(f"{name} {value}" for name, value in settings["quantization"].items()))

        try:
            acc, agree = write_checked(int8_path, write_int8, lambda tmp: check_int8(
                int8_path, onnx_logits(tmp, images, threads), fp32[0], expected, labels))
        except Exception:  # a failed check or quantization: an earlier int8 file is of other weights
            int8_path.unlink(missing_ok=True)
            raise
        record["accuracy"]["onnx_int8"], record["agreement_with_pytorch"]["onnx_int8"] = round(acc, 4), round(agree, 4)
        record["files"][INT8_FILE] = file_size(int8_path)
        record["quantization"] = settings["quantization"]
    return record
