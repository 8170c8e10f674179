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
import tempfile
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from s6.config import UserError
from s6.data import MNIST_MEAN, MNIST_STD, mnist_dataset, normalize, to_unit_range
from s6.files import WriteError, reason, refuse_to_replace, writable_folder, write_atomically
from s6.runs import FP32_FILE, INT8_FILE  # the files' names, a run folder's
from s6.speed import plain_max_pools
from s6_model import count_parameters

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
    options = export_options()
    return "torchscript" if "dynamo" not in options or "operator_export_type" in options else "dynamo"


def export_options():
    """The parameters of this torch's torch.onnx.export. Looking it up imports the exporter, whose onnxscript
    (0.1, on torch 2.3) warns of its own deprecations: nothing a user of S6 can act on."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return inspect.signature(torch.onnx.export).parameters


def plain_copy(model):
    """A CPU copy of `model` in eval mode, NCHW and with plain max-pools: a network fresh from training may have
    speed tricks switched on (s6.speed), and the caller's model keeps its mode, device and layout."""
    plain = copy.deepcopy(model).cpu().eval()
    plain_max_pools(plain)
    return plain.to(memory_format=torch.contiguous_format)


def export_onnx(model, exporter=None):
    """`model` (an S6 network, (N, 1, 28, 28) -> (N, 10)) as an fp32 ONNX ModelProto with a dynamic batch dimension,
    made in memory. Returns (the proto, {"exporter", "opset"}). `exporter`: 'torchscript', 'dynamo' or None for
    `default_exporter()`; 'dynamo' needs torch >= 2.5 and onnxscript (else a UserError)."""
    onnx = require("onnx")
    exporter = exporter or default_exporter()
    options = export_options()
    extra = {"dynamo": exporter == "dynamo"} if "dynamo" in options else {}
    if exporter == "dynamo":
        if "dynamo" not in options:
            raise UserError(f"torch {torch.__version__} has no dynamo ONNX exporter (torch 2.5 and later have)")
        require("onnxscript")
        extra.update(verbose=False, dynamic_shapes=({0: torch.export.Dim("batch")},))  # no progress lines
    else:
        extra["dynamic_axes"] = {INPUT: {0: "batch"}, OUTPUT: {0: "batch"}}
    # batch 2: torch.export would take a batch of 1 for a constant
    example = (torch.zeros(2, 1, 28, 28),)
    written = io.BytesIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        # the TorchScript exporter warns of its deprecation on every export; whether the file is right, the check
        # after it tells
        warnings.simplefilter("ignore")
        program = torch.onnx.export(plain_copy(model), example, None if exporter == "dynamo" else written,
                                    input_names=[INPUT], output_names=[OUTPUT], opset_version=OPSETS[exporter],
                                    **extra)
    proto = program.model_proto if exporter == "dynamo" else onnx.load_from_string(written.getvalue())
    return proto, {"exporter": exporter, "opset": OPSETS[exporter]}


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


def describe(proto, model_key, quantization=None):
    """Write into an ONNX ModelProto (its metadata_props) what a user outside Python needs: the input, its
    normalisation and the output. An int8 model (`quantization` given) has its names shortened too. Returns the
    proto's bytes, checked by onnx.checker."""
    onnx = require("onnx")
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
    return proto.SerializeToString()


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


def quantize_int8(fp32, calibration_images, per_channel=True):
    """Static post-training int8 quantization of the fp32 ONNX model (bytes) with ONNX Runtime's quantizer: QDQ
    format, int8 weights (per output channel with `per_channel`) and int8 activations, whose ranges are percentiles
    (99.999%) of the values that `calibration_images` (float32 (N, 1, 28, 28), normalised; training images, never
    test images) give. Returns (the int8 ModelProto, the settings). The quantizer works in a temporary folder.
    Memory: the calibration keeps every activation of every image, about 0.5 MB an image for Net.

    Of MinMax or percentile ranges, per-channel or per-tensor weights, 1,000 or 5,000 images, these changed
    the fewest fp32 predictions of held-out training images (MicroNet per tensor with MinMax lost 0.12 points
    on the test set). Source: ONNX Runtime, "Quantize ONNX models" (onnxruntime.ai/docs/performance/
    model-optimizations/quantization.html): S8S8 in QDQ format is its first choice on a CPU. The exporter has
    folded BatchNorm into the convolutions, which leaves the pre-processing it suggests nothing to do.
    """
    quantization = require("onnxruntime.quantization")
    batches = iter([{INPUT: calibration_images[i:i + 100]} for i in range(0, len(calibration_images), 100)])
    reader = SimpleNamespace(get_next=lambda: next(batches, None))  # ORT's CalibrationDataReader protocol
    with _quiet(), tempfile.TemporaryDirectory() as work:
        fp32_path, int8_path = Path(work) / FP32_FILE, Path(work) / INT8_FILE
        fp32_path.write_bytes(fp32)
        quantization.quantize_static(
            str(fp32_path), str(int8_path), reader, quant_format=quantization.QuantFormat.QDQ,
            per_channel=per_channel, activation_type=quantization.QuantType.QInt8,
            weight_type=quantization.QuantType.QInt8, calibrate_method=quantization.CalibrationMethod.Percentile)
        int8 = require("onnx").load(str(int8_path))
    return int8, {"tool": "onnxruntime.quantization.quantize_static", "format": "QDQ",
                  "weights": "int8, " + ("per output channel" if per_channel else "per tensor"),
                  "activations": "int8, per tensor",
                  "calibration": f"percentile 99.999 on {len(calibration_images):,} MNIST training images (a fixed "
                                 f"random draw)"}


def session(model, threads=None):
    """An ONNX Runtime CPU session for `model`, an ONNX file's path or its bytes; `threads`: its intra-op threads
    (None: ORT's choice)."""
    ort = require("onnxruntime")
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    if threads:
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    return ort.InferenceSession(model if isinstance(model, bytes) else str(model), options,
                                providers=["CPUExecutionProvider"])


def onnx_logits(model, images, threads=None, batch_size=1000):
    """Logits float32 (N, 10) of an ONNX model (a path or bytes) for `images` (float32 (N, 1, 28, 28), normalised)."""
    reader = session(model, threads)
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
    on MNIST's test set (its first `limit` images; None: all 10,000) before it is written there; int8 is
    calibrated on `calibration_images` training images (None: CALIBRATION_IMAGES). `threads`: ONNX Runtime's
    (None: its choice). Returns the entry an export's record (s6_export.py's export.json) keeps: accuracies in
    percent, agreement with PyTorch in percent of the images, sizes in bytes, the opset, exporter, quantizer and
    versions.

    Each file is made and checked in memory (the quantizer works in a temporary folder), and written into `folder`
    only once it passed.
    Raises UserError where onnx or onnxruntime is missing or (unless `overwrite`) a file exists already,
    WriteError where `folder` cannot be written, ExportCheckFailed where a check fails. A failed or skipped file
    leaves none of its name in `folder`: an earlier one there, which `overwrite` was to replace, would be of
    other weights (where only int8's check failed, the new model.onnx is kept).
    """
    onnx, ort = require("onnx"), require("onnxruntime")
    folder = writable_folder(folder)
    fp32_path, int8_path = folder / FP32_FILE, folder / INT8_FILE
    refuse_to_replace([fp32_path, int8_path] if int8 else [fp32_path], overwrite)
    images, labels = mnist_arrays(data_dir, limit=limit)
    expected = torch_logits(model, images)
    key = getattr(model, "key", type(model).__name__)
    try:
        proto, settings = export_onnx(model, exporter)
        fp32 = describe(proto, key)
        fp32_acc, fp32_agree = check_fp32(fp32_path, onnx_logits(fp32, images, threads), expected, labels)
    except ExportCheckFailed as failed:
        earlier = [path for path in (fp32_path, int8_path) if path.exists()]
        for path in earlier:
            path.unlink()
        removed = f"; the earlier {' and '.join(p.name for p in earlier)} there, of other weights, removed"
        raise ExportCheckFailed(str(failed) + (removed if earlier else "")) from None
    write_atomically(fp32_path, fp32)
    int8_path.unlink(missing_ok=True)  # an int8 file there would be of other weights than model.onnx now
    record = {"model": key, "parameters": count_parameters(model), "test_images": len(labels),
              "accuracy": {"pytorch": round(accuracy(expected, labels), 4), "onnx_fp32": round(fp32_acc, 4)},
              "agreement_with_pytorch": {"onnx_fp32": round(fp32_agree, 4)},
              "files": {FP32_FILE: file_size(fp32_path)}, **settings, "normalization": NORMALIZATION,
              "versions": {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": ort.__version__}}
    if not int8:
        return record
    calibration = mnist_arrays(data_dir, train=True, limit=calibration_images or CALIBRATION_IMAGES, seed=0)[0]
    try:
        proto, quantization = quantize_int8(fp32, calibration)
    except OSError as error:
        raise WriteError(f"the int8 quantizer could not write its temporary files ({reason(error)}): free some "
                         f"space in {tempfile.gettempdir()}") from None
    int8_model = describe(proto, key, "; ".join(f"{name} {value}" for name, value in quantization.items()))
    acc, agree = check_int8(int8_path, onnx_logits(int8_model, images, threads), fp32_acc, expected, labels)
    write_atomically(int8_path, int8_model)
    record["accuracy"]["onnx_int8"], record["agreement_with_pytorch"]["onnx_int8"] = round(acc, 4), round(agree, 4)
    record["files"][INT8_FILE] = file_size(int8_path)
    record["quantization"] = quantization
    return record
