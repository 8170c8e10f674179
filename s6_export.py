"""Take a trained S6 network elsewhere: ONNX (fp32) and int8 files, each checked in ONNX Runtime, and their speed.

    python s6_export.py results/net-seed1 --int8          # -> results/net-seed1/model.onnx, model-int8.onnx,
                                                          #    and their checks in results/net-seed1/export.json
    python s6_export.py my-run/model.pt --model tiny      # a bare model.pt: name its class (default: net)
    python s6_export.py results/{net,small,tiny,micro}-seed1 --bench   # images/s: PyTorch and ONNX Runtime

model.onnx takes "image", float32 (N, 1, 28, 28), any N: one light digit on black per 28x28 image, as MNIST's,
each pixel normalised as (pixel / 255 - 0.1307) / 0.3081; it returns "logits", float32 (N, 10): the argmax is
the digit, a softmax gives probabilities. The files' metadata_props say the same. model-int8.onnx (--int8) is
the same network after static int8 quantization (ONNX Runtime's quantizer, weights per channel), calibrated
on 5,000 MNIST training images. Every run prints the record's table: accuracies, sizes and speeds.

A file takes its name only after ONNX Runtime has read MNIST's 10,000 test images with it: fp32 must predict
as PyTorch on 99.99% of them and score within 0.01 points of it, int8 within 0.10 points of fp32. A run
folder's metrics.json names the model's class. --bench times the files already exported beside each run
against PyTorch's eager evaluation and ways of speeding it up, in turns, and keeps the medians in the record.
The record (export.json beside the ONNX files, or --record) keeps an entry per run: an entry there already, like
the files, is replaced only with --overwrite.
"""

import os
import sys
from pathlib import Path

import torch

from s6.checkpoints import CheckpointError, config_from_record, load_weights
from s6.cli import add_overwrite_flag, apply_threads, parser_for, positive_int, run_main
from s6.config import UserError, machine_name
from s6.export import CALIBRATION_IMAGES, FP32_FILE, INT8_FILE, export_and_check, mnist_arrays, require
from s6.files import read_json, refuse_to_replace, save_json, writable_folder, writing
from s6.results import markdown_table
from s6.runs import EXPORT_RECORD, network_of, read_metrics, trained_network_name
from s6_model import MODELS


def parse_args(argv=None):
    parser = parser_for(__doc__)
    parser.add_argument("runs", nargs="+", metavar="RUN_OR_MODEL_PT",
                        help="a folder written by s6_train.py, or a model.pt (or checkpoint.pt)")
    parser.add_argument("--model", choices=list(MODELS),
                        help="the class of the weights (default: the run's metrics.json says; else net)")
    parser.add_argument("--int8", action="store_true", help=f"also write {INT8_FILE}, quantized to int8")
    parser.add_argument("--out", help="folder for the ONNX files (default: beside the weights)")
    parser.add_argument("--record", help=f"the JSON file that keeps each export's checks and the benchmark, an "
                                          f"entry per run (default: {EXPORT_RECORD} beside the ONNX files)")
    parser.add_argument("--data-dir", default="data", help="the folder that holds MNIST/raw/")
    parser.add_argument("--exporter", choices=["auto", "torchscript", "dynamo"], default="auto",
                        help="torch.onnx's TorchScript exporter or its dynamo one (needs onnxscript); auto: "
                             "TorchScript where this torch has it")
    parser.add_argument("--calibration-images", type=positive_int, default=CALIBRATION_IMAGES,
                        help=f"training images that calibrate --int8 (default: {CALIBRATION_IMAGES:,}; the "
                             f"calibration holds all their activations in memory, about 2.5 GB for Net)")
    parser.add_argument("--test-images", type=positive_int,
                        help="check on the first N test images only (default: all 10,000)")
    parser.add_argument("--bench", action="store_true",
                        help=f"time the {FP32_FILE} and {INT8_FILE} beside each run instead of exporting")
    parser.add_argument("--repeats", type=positive_int, default=7, help="--bench repetitions (default: 7)")
    parser.add_argument("--threads", type=positive_int,
                        help="CPU threads for torch and ONNX Runtime (default: torch's choice)")
    add_overwrite_flag(parser, f"{FP32_FILE}, {INT8_FILE} and their entries in the record")
    args = parser.parse_args(argv)
    if args.out and len(args.runs) > 1:
        parser.error("--out takes one run at a time")
    if args.bench and args.int8:
        parser.error("--bench times files exported already: export with --int8 first, then run --bench")
    return args


def locate(source, model_flag):
    """(the weights file, the model's key) of a run folder or a model.pt: --model, else the run's metrics.json,
    else net."""
    path = Path(source)
    weights = path / "model.pt" if path.is_dir() else path
    if path.is_dir() and not weights.is_file():
        raise CheckpointError(f"{path} holds no model.pt: give a folder written by s6_train.py, or a model.pt")
    metrics = weights.parent / "metrics.json"
    if model_flag or not metrics.is_file():
        return weights, model_flag or "net"
    record = read_metrics(metrics)
    config = config_from_record(record["config"], metrics)
    if network_of(config, record.get("model_class")) is None:
        raise UserError(f"{path} is a run of {trained_network_name(config, record.get('model_class'))}, a network S6 "
                        f"does not have, which this command cannot build: export it in Python, with "
                        f"s6.export.export_and_check")
    return weights, config.model


def shown(path):
    """`path` from the current folder where it lies below it, as a user would type it."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def output_folder(args, weights):
    return Path(args.out) if args.out else weights.parent


def is_export_record(record):
    """Whether `record` has the shape of the export.json S6 writes."""
    benchmark = record.get("benchmark", {}) if isinstance(record, dict) else None
    return isinstance(benchmark, dict) and isinstance(record.get("exports", {}), dict) and isinstance(
        benchmark.get("runs", {}), dict)


def read_record(path):
    """The record at `path` ({"exports": {...}, "benchmark": {"runs": {...}}}), or an empty one where there is
    none yet; a one-line CheckpointError where it is damaged."""
    path = Path(path)
    return read_json(path, is_export_record, "delete it, or give another --record") if path.is_file() else {}


def update_record(path, section, name, entry):
    """Set record[section][name] to `entry` in the JSON file at `path`, keeping every other entry: "exports"
    keeps one per exported run, "benchmark" one per run timed, each with the machine it was timed on."""
    record = read_record(path)
    entries = record.setdefault("exports", {}) if section == "exports" else \
        record.setdefault("benchmark", {}).setdefault("runs", {})
    entries[name] = entry
    save_json(path, record)


def record_path(args, weights):
    """The record of an export: --record, else export.json beside its ONNX files."""
    return Path(args.record) if args.record else output_folder(args, weights) / EXPORT_RECORD


def entry_name(folder, record):
    """The record's name for an export in `folder`: its path from the record's folder (results/net-seed1 ->
    net-seed1), or its own name for a record inside it, so that exports of two runs keep an entry each."""
    relative = Path(os.path.relpath(Path(folder).resolve(), Path(record).resolve().parent)).as_posix()
    return Path(folder).resolve().name if relative == "." else relative


def record_entry(args, weights):
    """(the record, the entry's name in it) of the export of `weights`."""
    record = record_path(args, weights)
    return record, entry_name(output_folder(args, weights), record)


def refuse_to_replace_entries(args, runs, section):
    """A one-line UserError, before any work, where a record already has an entry of `section` for a run, unless
    --overwrite."""
    taken = []
    for weights, _ in runs:
        record, name = record_entry(args, weights)
        entries = read_record(record).get(section, {})
        if name in (entries.get("runs", {}) if section == "benchmark" else entries):
            taken.append(f"{record}'s {section} of {name}")
    if taken and not args.overwrite:
        raise UserError(f"{', '.join(taken)} exists already: replace it with --overwrite, or give another --record")


def summary_line(folder, record):
    acc, agree, files = record["accuracy"], record["agreement_with_pytorch"], record["files"]
    line = (f"{Path(folder) / FP32_FILE}: {files[FP32_FILE]['bytes']:,} bytes, {acc['onnx_fp32']:.2f}% on "
            f"{record['test_images']:,} test images (PyTorch {acc['pytorch']:.2f}%, same prediction on "
            f"{agree['onnx_fp32']:.2f}%)")
    if INT8_FILE in files:
        line += f"; {INT8_FILE}: {files[INT8_FILE]['bytes']:,} bytes, {acc['onnx_int8']:.2f}%"
    return line


def export(args, runs):
    targets = [output_folder(args, weights) / name for weights, _ in runs
               for name in (FP32_FILE, INT8_FILE)[:2 if args.int8 else 1]]
    refuse_to_replace(targets, args.overwrite)  # all before the first export, so that none is half done
    for weights, key in runs:
        folder = output_folder(args, weights)
        record = export_and_check(load_weights(MODELS[key](), weights), folder, args.data_dir, int8=args.int8,
                                  exporter=None if args.exporter == "auto" else args.exporter,
                                  overwrite=args.overwrite, limit=args.test_images,
                                  calibration_images=args.calibration_images, threads=torch.get_num_threads())
        record = {"weights": str(weights), "weights_bytes": weights.stat().st_size, **record}
        path, name = record_entry(args, weights)
        update_record(path, "exports", name, record)
        print(summary_line(folder, record))
        print(f"{shown(path)}: the checks and sizes")


def bench(args, runs):
    # imported here: the benchmark's PyTorch ways are no part of an export
    from s6.inference_speed import benchmark, onnx_ways, predictions, pytorch_ways

    threads = torch.get_num_threads()
    images = mnist_arrays(args.data_dir, limit=args.test_images)[0]
    for weights, key in runs:
        folder = output_folder(args, weights)
        files = {"onnx runtime fp32": folder / FP32_FILE, "onnx runtime int8": folder / INT8_FILE}
        missing = [str(path) for path in files.values() if not path.is_file()]
        if missing:
            raise UserError(f"no {' or '.join(missing)}: export first, with python s6_export.py {weights} --int8")
        ways = {**pytorch_ways(load_weights(MODELS[key](), weights)), **onnx_ways(files, threads)}
        result = {"model": key, **benchmark(ways, images, args.repeats), "predictions": predictions(ways, images),
                  "machine": machine_name("cpu"), "threads": threads, "repeats": args.repeats,
                  "test_images": len(images), "torch": torch.__version__,
                  "onnxruntime": require("onnxruntime").__version__}
        path, name = record_entry(args, weights)
        update_record(path, "benchmark", name, result)
        print(bench_table(key, result))
        print(f"{shown(path)}: the benchmark, on {machine_name('cpu')}")


def bench_table(key, result):
    speeds = result["images_per_second"]
    ratios = next(value for name, value in result.items() if name.startswith("ratio_to_"))
    rows = [{"model": key, "way": name,
             **{f"{batch}, images/s": f"{speeds[batch][name]:,.0f} ({ratios[batch][name]:.2f}x)" for batch in speeds},
             "same predictions": "yes" if compared["identical_predictions"] else
             f"{compared['disagreements']} differ"} for name, compared in result["predictions"].items()]
    return markdown_table(rows)


def export_table(record):
    """The README's table of `record` (results/export.json): per export, the accuracies, the sizes in bytes and,
    where --bench timed it, ONNX Runtime's speed as a multiple of PyTorch eager's."""
    timed = record.get("benchmark", {}).get("runs", {})
    rows = []
    for name, entry in record.get("exports", {}).items():
        acc, files = entry["accuracy"], entry["files"]
        ratios = timed.get(name, {}).get("ratio_to_pytorch_eager", {})
        int8 = f"{acc['onnx_int8']:.2f}%" if "onnx_int8" in acc else "—"
        row = {"run": name, "parameters": f"{entry['parameters']:,}", "PyTorch": f"{acc['pytorch']:.2f}%",
               "ONNX fp32": f"{acc['onnx_fp32']:.2f}%", "ONNX int8": int8,
               "bytes: model.pt / model.onnx / int8": " / ".join(
                   f"{size:,}" for size in [entry["weights_bytes"]] + [f["bytes"] for f in files.values()])}
        for batch in ("batch 1", "batch 1000"):
            speed = ratios.get(batch)
            row[f"{batch}: fp32 / int8 speed"] = (f"{speed['onnx runtime fp32']:.2f}x / "
                                                  f"{speed['onnx runtime int8']:.2f}x" if speed else "—")
        rows.append(row)
    return markdown_table(rows)


def main(argv=None):
    args = parse_args(argv)
    apply_threads(args)
    require("onnx"), require("onnxruntime")  # before any work, so that a missing package is the first thing said
    runs = [locate(source, args.model) for source in args.runs]
    records = list(dict.fromkeys(record_path(args, weights) for weights, _ in runs))
    # where the results go, checked and held before minutes of work; an entry there is replaced only when told to
    with writing(records, overwrite=True):
        for record in records:
            read_record(record)
        refuse_to_replace_entries(args, runs, "benchmark" if args.bench else "exports")
        if not args.bench:
            for weights, _ in runs:
                writable_folder(output_folder(args, weights), "give --out a folder that is, or make it writable")
        (bench if args.bench else export)(args, runs)
    for record in map(read_record, records):
        if record.get("exports"):
            print(export_table(record))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
