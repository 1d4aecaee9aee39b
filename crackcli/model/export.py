"""`crack export`: a `crack train` checkpoint as one self-describing ONNX file, checked against PyTorch.

The graph takes uint8 RGB (N, 3, H, W) and normalises inside (as ``CrackNet`` does), so scanners only
cut and resize windows.  Outputs: ``probs`` (N, C); for backbones with a per-location form also
``logit_map`` (N, C, H/32, W/32), whose spatial mean gives the logits behind ``probs``, which lets a
scanner run the trunk once over a whole photo (``crack scan --mode dense``).

Precisions: ``fp32`` (parity with PyTorch required: max |Δprob| ≤ 1e-4), ``fp16`` (for GPUs; weights and
activations in half precision, input and outputs unchanged) and ``int8`` (static QDQ quantisation,
per-channel weights, calibrated on a labelled folder whose accuracy is reported before and after).
"""

from __future__ import annotations

import io
import logging
import math
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from crackcli.data.folders import LabelledFolder, index_folder
from crackcli.data.preprocess import fit_patch
from crackcli.data.synth import synthesize
from crackcli.errors import CrackError, OptionError, UsageError
from crackcli.io.atomic import atomic_write_bytes
from crackcli.io.images import ImageReadError, read_rgb
from crackcli.model.backbones import CrackNet
from crackcli.model.checkpoint import load_checkpoint, model_from_checkpoint, with_temperature
from crackcli.model.onnx_files import set_properties
from crackcli.model.onnx_properties import INPUT_NAME, LOGIT_MAP_OUTPUT, PROBS_OUTPUT, metadata_properties
from crackcli.model.predictors import create_session, softmax

PRECISIONS = ("fp32", "fp16", "int8")
FP32_PARITY_LIMIT = 1e-4
DEFAULT_OPSET = 17
CALIBRATION_IMAGES = 256  # spread evenly over the calibration folder; enough for stable activation ranges


class ExportGraph(nn.Module):
    """What the ONNX file computes: probabilities, and per-location logits where the backbone allows."""

    def __init__(self, model: CrackNet) -> None:
        super().__init__()
        self.model = model
        self.dense = model.supports_dense

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.dense:
            logit_map = self.model.logit_map(image)
            return torch.softmax(logit_map.mean(dim=(2, 3)), dim=1), logit_map
        return (torch.softmax(self.model(image), dim=1),)


@dataclass(frozen=True)
class ExportOptions:
    """How to export: precision, opset, the calibration folder for int8, the scan mode the file vouches for."""

    precision: str = "fp32"
    opset: int = DEFAULT_OPSET
    calibrate: Path | None = None  # labelled patches (class folders): int8 ranges and the accuracy check
    force: bool = False  # replace an existing output file
    # What `crack scan --mode auto` uses with the file: dense only for models whose dense windows were
    # measured to agree with patch windows on real photos.
    scan_mode: str = "patch"
    # Divides the logits instead of the temperature `crack train` fitted on its validation data (None:
    # that one), for photos unlike that data, where the fitted one may make wrong scores sure.
    temperature: float | None = None

    def __post_init__(self) -> None:
        if self.temperature is not None and not 0.0 < self.temperature < math.inf:
            raise OptionError("temperature", "give a positive number (1: the network's own scores)", self.temperature)
        if self.precision not in PRECISIONS:
            raise OptionError("precision", f"unknown precision; choose one of {', '.join(PRECISIONS)}", self.precision)
        if self.precision == "int8" and self.calibrate is None:
            raise OptionError(
                "precision",
                "needs `calibrate` FOLDER: labelled patches (class folders) to set activation ranges",
                "int8",
            )
        if self.scan_mode not in ("patch", "dense"):
            raise OptionError("scan_mode", "unknown scan mode; choose patch or dense", f"'{self.scan_mode}'")


@dataclass
class ExportReport:
    path: Path
    precision: str
    size_bytes: int
    dense: bool
    check_images: int  # patches compared with PyTorch
    max_prob_delta: float | None  # None: this precision cannot run on this machine's ONNX Runtime
    latency_ms: float | None  # one patch, CPU
    patches_per_s: float | None  # batches of 32, CPU
    accuracy: dict[str, dict[str, float]] = field(default_factory=dict)  # fp32 vs exported, on --calibrate
    notes: list[str] = field(default_factory=list)


def training_summary(payload: dict[str, Any]) -> dict[str, Any]:
    """What the file should say about how its model was trained (from the checkpoint)."""
    config = payload.get("config", {})
    keep = (
        "data",
        "backbone",
        "weights",
        "loss",
        "alpha0",
        "lambda0",
        "epochs",
        "batch",
        "lr",
        "augment",
        "synthetic_cracks",
        "synthetic_stains",
        "synthetic_confusers",
        "synthetic_surfaces",
        "finer_clean",
        "ema",
        "seed",
    )
    summary = payload.get("summary", {})
    return {
        "config": {k: config[k] for k in keep if k in config},
        "train_images": summary.get("train_images"),
        "epochs_done": summary.get("epochs_done"),
        "best_epoch": summary.get("best_epoch"),
        "best_val_f1": summary.get("best_val_f1"),
        "crackcli_version": payload.get("crackcli_version"),
    }


def export_fp32(model: CrackNet, image_size: int, opset: int) -> onnx.ModelProto:
    """The fp32 graph with dynamic batch (and, for dense graphs, dynamic height and width)."""
    graph = ExportGraph(model).eval()
    example = torch.zeros(1, 3, image_size, image_size, dtype=torch.uint8)
    axes = {0: "batch", 2: "height", 3: "width"} if graph.dense else {0: "batch"}
    outputs = [PROBS_OUTPUT, LOGIT_MAP_OUTPUT] if graph.dense else [PROBS_OUTPUT]
    dynamic = {INPUT_NAME: axes, PROBS_OUTPUT: {0: "batch"}}
    if graph.dense:
        dynamic[LOGIT_MAP_OUTPUT] = {0: "batch", 2: "cells_y", 3: "cells_x"}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation on every call
        torch.onnx.export(
            graph,
            (example,),
            buffer,  # type: ignore[arg-type]  # the TorchScript exporter writes to any binary file object
            dynamo=False,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=outputs,
            dynamic_axes=dynamic,
            do_constant_folding=True,
        )
    return onnx.load_from_string(buffer.getvalue())


def to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    from onnxruntime.transformers.float16 import convert_float_to_float16

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return convert_float_to_float16(model, keep_io_types=True)


def to_int8(model: onnx.ModelProto, calibration: np.ndarray) -> onnx.ModelProto:
    """Static QDQ quantisation: per-channel int8 weights, uint8 activations with ranges from ``calibration``."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Batches(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(np.array_split(calibration, max(1, len(calibration) // 16)))

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.batches, None)
            return None if batch is None else {INPUT_NAME: batch}

    quiet = logging.getLogger()  # the quantiser logs advice on the root logger
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with tempfile.TemporaryDirectory(prefix="crack-int8-") as tmp:
            source, folded, target = (Path(tmp) / name for name in ("fp32.onnx", "folded.onnx", "int8.onnx"))
            onnx.save(model, str(source))
            quant_pre_process(str(source), str(folded))  # fold constants so biases quantise as initializers
            quantize_static(
                str(folded),
                str(target),
                Batches(),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
            )
            return onnx.load(str(target))
    finally:
        quiet.setLevel(level)


def synthetic_patches(size: int, count: int = 16, seed: int = 0) -> np.ndarray:
    """uint8 (count, 3, size, size) windows of a synthetic photo with cracks, for the parity check."""
    photo = synthesize(4 * size, 4 * size, seed, cracks=3).image
    step = max(1, (3 * size) // max(1, int(np.sqrt(count)) - 1))
    windows = [
        photo[y : y + size, x : x + size] for y in range(0, 3 * size + 1, step) for x in range(0, 3 * size + 1, step)
    ]
    return np.stack(windows[:count]).transpose(0, 3, 1, 2).copy()


def folder_patches(
    folder: LabelledFolder, size: int, min_filter_px: int = 1, limit: int = CALIBRATION_IMAGES
) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``limit`` images spread evenly over ``folder``, as the model's uint8 input, and their labels."""
    picks = np.linspace(0, len(folder.samples) - 1, min(limit, len(folder.samples))).round().astype(int)
    images, labels = [], []
    for index in dict.fromkeys(picks.tolist()):
        path, label = folder.samples[index]
        try:
            images.append(fit_patch(read_rgb(path), size, min_filter_px))
        except ImageReadError:
            continue  # one bad calibration image must not stop an export
        labels.append(label)
    if not images:
        raise UsageError(f"{folder.root}: no readable images to calibrate with")
    return np.stack(images).transpose(0, 3, 1, 2).copy(), np.array(labels)


def _torch_probs(model: CrackNet, batch: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return torch.softmax(model(torch.from_numpy(batch)), dim=1).numpy()


def _macro(labels: np.ndarray, probs: np.ndarray, classes: tuple[str, ...]) -> dict[str, float]:
    from crackcli.model.metrics import classification_report, confusion_matrix

    report = classification_report(confusion_matrix(labels, probs.argmax(1), len(classes)), classes)
    return {k: round(float(report[k]), 6) for k in ("accuracy", "precision", "recall", "f1")}


def _cpu_speed(session, size: int) -> tuple[float, float]:
    single = np.zeros((1, 3, size, size), np.uint8)
    batch = np.zeros((32, 3, size, size), np.uint8)
    session.run([PROBS_OUTPUT], {INPUT_NAME: single})
    latencies = []
    for _ in range(10):
        start = time.perf_counter()
        session.run([PROBS_OUTPUT], {INPUT_NAME: single})
        latencies.append(time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(2):
        session.run([PROBS_OUTPUT], {INPUT_NAME: batch})
    return 1000 * float(np.median(latencies)), 64 / (time.perf_counter() - start)


def _onnx_probs(session, batch: np.ndarray, step: int = 32) -> np.ndarray:
    runs = [
        session.run([PROBS_OUTPUT], {INPUT_NAME: batch[start : start + step]})[0]
        for start in range(0, len(batch), step)
    ]
    return np.concatenate(runs)


def export_checkpoint(checkpoint: Path, out: Path, options: ExportOptions | None = None) -> ExportReport:
    """Export ``checkpoint`` to ``out`` (a .onnx file), check the result with ONNX Runtime on the CPU,
    then write it."""
    options = options or ExportOptions()
    precision, calibrate, scan_mode = options.precision, options.calibrate, options.scan_mode
    if out.suffix.lower() != ".onnx":
        raise OptionError("out", "the output must end in .onnx", out)
    if out.exists() and not options.force:
        raise UsageError(f"{out}: exists; pass `force` to replace it or choose another `out`")
    payload = with_temperature(load_checkpoint(checkpoint), options.temperature)
    model, meta = model_from_checkpoint(payload)
    if scan_mode == "dense" and not model.supports_dense:
        raise OptionError("scan_mode", f"{meta.backbone} has no per-location form; use `scan_mode=patch`", "dense")

    labelled = None
    if calibrate is not None:
        folder = index_folder(calibrate, classes=meta.classes)
        labelled = folder_patches(folder, meta.image_size, meta.min_filter_px)
    check = labelled[0][:64] if labelled is not None else synthetic_patches(meta.image_size)

    proto = export_fp32(model, meta.image_size, options.opset)
    notes: list[str] = []
    if precision == "fp16":
        proto = to_fp16(proto)
    elif precision == "int8":
        assert labelled is not None  # int8 options require a calibration folder
        proto = to_int8(proto, labelled[0])
    set_properties(
        proto, metadata_properties(meta, model.supports_dense, precision, training_summary(payload), scan_mode)
    )
    data = proto.SerializeToString()

    try:
        session, _ = create_session(data, "cpu")
    except Exception as exc:  # noqa: BLE001 - ONNX Runtime raises its own exception types
        if precision == "fp32":
            raise CrackError(
                f"ONNX Runtime cannot load the exported graph ({str(exc).splitlines()[0][:160]})"
            ) from None
        session = None
        notes.append(f"{precision} does not run on this machine's CPU ONNX Runtime; parity and speed not checked here")

    delta = latency = speed = None
    accuracy: dict[str, dict[str, float]] = {}
    if session is not None:
        reference = _torch_probs(model, check)
        exported = _onnx_probs(session, check)
        delta = float(np.abs(exported - reference).max())
        if model.supports_dense:
            delta = max(delta, _dense_delta(model, session, check))
        if precision == "fp32" and not delta <= FP32_PARITY_LIMIT:  # NaN fails too
            raise CrackError(
                f"exported graph disagrees with PyTorch (max |Δprob| {delta:.2e} > {FP32_PARITY_LIMIT}); "
                "file not written"
            )
        latency, speed = _cpu_speed(session, meta.image_size)
        if labelled is not None:
            images, labels = labelled
            accuracy["fp32"] = _macro(labels, _torch_probs(model, images), meta.classes)
            accuracy[precision] = _macro(labels, _onnx_probs(session, images), meta.classes)

    atomic_write_bytes(out, data)
    return ExportReport(
        out,
        precision,
        len(data),
        model.supports_dense,
        len(check),
        delta,
        latency,
        speed,
        accuracy,
        notes,
    )


def _dense_delta(model: CrackNet, session, check: np.ndarray) -> float:
    """Largest probability gap of the per-location output on a larger, non-square image."""
    tiles = np.concatenate([check[0], check[-1]], axis=2)[None]  # (1, 3, S, 2S)
    with torch.inference_mode():
        expected = torch.softmax(model.logit_map(torch.from_numpy(tiles)), dim=1).numpy()
    got = softmax(session.run([LOGIT_MAP_OUTPUT], {INPUT_NAME: tiles})[0])
    return float(np.abs(got - expected).max())
