"""What a `crack export` ONNX file says about itself: its crack metadata, read without the onnx package.

Everything a scanner needs travels inside the file as ONNX metadata properties (string key/values,
visible in Netron and in ``onnxruntime``'s model metadata): the ``ModelMeta`` fields, whether the graph
has a dense (per-location) output, the scan mode it was validated for, its precision and a summary of
the training run.

``read_properties`` reads them straight from the protobuf encoding, so a scan can size its windows
and start decoding photos while the whole file is still being checked (``onnx_files.load_checked``,
which imports onnx: about 0.2 s) on another thread.  It only reads strings; the full check decides
whether the file is used at all, and compares its own reading of the properties with this one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crackcli.errors import CrackError
from crackcli.model.meta import ModelMeta

FORMAT = "crack-onnx"
FORMAT_VERSION = 2  # the newest this crack reads (files: ModelMeta.format_version)
INPUT_NAME = "image"
PROBS_OUTPUT = "probs"
LOGIT_MAP_OUTPUT = "logit_map"


@dataclass(frozen=True)
class OnnxModelInfo:
    """What an exported file says about itself."""

    meta: ModelMeta
    dense: bool  # the graph also outputs per-location logits (LOGIT_MAP_OUTPUT)
    precision: str  # fp32, fp16 or int8
    scan_mode: str  # what `crack scan --mode auto` uses: patch, or dense where the exporter vouched for it
    properties: dict[str, str] = field(default_factory=dict)  # every metadata property, as stored

    def training(self) -> dict[str, Any]:
        return json.loads(self.properties.get("training", "{}"))


def metadata_properties(
    meta: ModelMeta, dense: bool, precision: str, training: dict[str, Any], scan_mode: str = "patch"
) -> dict[str, str]:
    """The metadata of an exported file, as ONNX string properties."""
    return {
        "format": FORMAT,
        "format_version": str(meta.format_version()),
        "backbone": meta.backbone,
        "classes": json.dumps(list(meta.classes)),
        "crack_class": meta.crack_class or "",
        "image_size": str(meta.image_size),
        "patch_size": str(meta.patch_size),
        "mean": json.dumps(list(meta.mean)),
        "std": json.dumps(list(meta.std)),
        "temperature": repr(meta.temperature),  # already folded into the graph's head: a record, not a step
        "min_filter_px": str(meta.min_filter_px),
        "input": f"{INPUT_NAME}: uint8 RGB (N, 3, H, W), values 0..255; normalisation is inside the graph",
        "outputs": PROBS_OUTPUT + (f", {LOGIT_MAP_OUTPUT}" if dense else ""),
        "dense": "true" if dense else "false",
        "precision": precision,
        "scan_mode": scan_mode,
        "training": json.dumps(training, sort_keys=True),
    }


def check_format(path: Path, properties: dict[str, str], expected: str, version: int, otherwise: str) -> None:
    """CrackError unless ``path``'s properties name format ``expected`` at ``version`` or earlier
    (``otherwise``: what to say when they name another format, or none)."""
    if properties.get("format") != expected:
        raise CrackError(f"{path}: {otherwise}")
    try:
        written = int(properties.get("format_version", "0"))
    except ValueError:
        raise CrackError(f"{path}: damaged metadata (format_version); make the file again") from None
    if written > version:
        raise CrackError(f"{path}: written by a newer crack; upgrade crackcli")


def info_from_properties(path: Path, properties: dict[str, str]) -> OnnxModelInfo:
    """Parse the metadata of ``path``; a file without it was not made by `crack export`."""
    without = "an ONNX file without crack metadata; make model files with crack export"
    check_format(path, properties, FORMAT, FORMAT_VERSION, without)
    try:
        meta = ModelMeta.from_dict(
            {
                "backbone": properties["backbone"],
                "classes": json.loads(properties["classes"]),
                "crack_class": properties.get("crack_class") or None,
                "image_size": properties["image_size"],
                "patch_size": properties.get("patch_size", "224"),
                "mean": json.loads(properties["mean"]),
                "std": json.loads(properties["std"]),
                "temperature": properties.get("temperature", "1.0"),
                "min_filter_px": properties.get("min_filter_px", "1"),
            }
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise CrackError(
            f"{path}: damaged crack metadata ({exc.__class__.__name__}: {exc}); export the model again"
        ) from None
    dense = properties.get("dense") == "true"
    scan_mode = "dense" if dense and properties.get("scan_mode") == "dense" else "patch"
    return OnnxModelInfo(meta, dense, properties.get("precision", "fp32"), scan_mode, dict(properties))


def read_model_file(path: Path) -> bytes:
    """The bytes of model file ``path``; CrackError naming the fix when there are none to read."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CrackError(f"{path}: no such model file; check the path") from None
    except OSError as exc:
        raise CrackError(f"{path}: cannot read the model file ({exc.strerror or exc}); check the path") from None


# Field numbers in onnx.proto: ModelProto.metadata_props, and StringStringEntryProto's key and value.
_METADATA_PROPS, _KEY, _VALUE = 14, 1, 2
_VARINT, _FIXED64, _LENGTH_DELIMITED, _FIXED32 = 0, 1, 2, 5


def read_properties(path: Path, data: bytes) -> dict[str, str]:
    """The metadata properties of the serialized ModelProto ``data`` (read from ``path``), last one of a
    key winning as in protobuf; CrackError when ``data`` is not a protobuf message."""
    properties: dict[str, str] = {}
    try:
        for number, value in _fields(memoryview(data)):
            if number == _METADATA_PROPS:
                if not isinstance(value, memoryview):
                    raise ValueError("metadata entry is not a message")
                entry = {key: item for key, item in _fields(value) if key in (_KEY, _VALUE)}
                key, item = entry.get(_KEY, b""), entry.get(_VALUE, b"")
                if not isinstance(key, memoryview | bytes) or not isinstance(item, memoryview | bytes):
                    raise ValueError("metadata key or value is not a string")
                properties[bytes(key).decode()] = bytes(item).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise CrackError(
            f"{path}: not an ONNX model ({exc.__class__.__name__}); pass a file made by crack export"
        ) from None
    return properties


def _fields(data: memoryview) -> Iterator[tuple[int, int | memoryview]]:
    """(field number, value) of one protobuf message's encoding: integers for fixed and varint fields
    (fixed ones as 0: only their length matters here), views for length-delimited ones."""
    position, end = 0, len(data)
    while position < end:
        tag, position = _varint(data, position)
        number, wire_type = tag >> 3, tag & 7
        value: int | memoryview
        if wire_type == _VARINT:
            value, position = _varint(data, position)
        elif wire_type in (_FIXED64, _FIXED32):
            value, position = 0, position + (8 if wire_type == _FIXED64 else 4)
        elif wire_type == _LENGTH_DELIMITED:
            length, position = _varint(data, position)
            value, position = data[position : position + length], position + length
        else:
            raise ValueError(f"wire type {wire_type}")
        if number == 0 or position > end:
            raise ValueError("truncated or corrupt message")
        yield number, value


def _varint(data: memoryview, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if position >= len(data) or shift > 63:
            raise ValueError("truncated or corrupt varint")
        byte = data[position]
        value |= (byte & 0x7F) << shift
        position, shift = position + 1, shift + 7
        if byte < 0x80:
            return value, position
