"""`crack export` ONNX files: the metadata they carry and the checks made before one is used.

Everything a scanner needs travels inside the file as ONNX metadata properties (string key/values,
visible in Netron and in ``onnxruntime``'s model metadata): the ``ModelMeta`` fields, whether the graph
has a dense (per-location) output, the scan mode it was validated for, its precision and a summary of
the training run.

An ONNX file is data, but it can point outside itself: tensors stored as "external data" are read from
paths named in the file.  `crack` never writes such files and refuses them, so a model file cannot make
the scanner read anything else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx
from google.protobuf.message import DecodeError

from crackcli.errors import CrackError
from crackcli.model.meta import ModelMeta

FORMAT = "crack-onnx"
FORMAT_VERSION = 1
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
        "format_version": str(FORMAT_VERSION),
        "backbone": meta.backbone,
        "classes": json.dumps(list(meta.classes)),
        "crack_class": meta.crack_class or "",
        "image_size": str(meta.image_size),
        "patch_size": str(meta.patch_size),
        "mean": json.dumps(list(meta.mean)),
        "std": json.dumps(list(meta.std)),
        "temperature": repr(meta.temperature),  # already folded into the graph's head: a record, not a step
        "input": f"{INPUT_NAME}: uint8 RGB (N, 3, H, W), values 0..255; normalisation is inside the graph",
        "outputs": PROBS_OUTPUT + (f", {LOGIT_MAP_OUTPUT}" if dense else ""),
        "dense": "true" if dense else "false",
        "precision": precision,
        "scan_mode": scan_mode,
        "training": json.dumps(training, sort_keys=True),
    }


def set_properties(model: onnx.ModelProto, properties: dict[str, str]) -> None:
    del model.metadata_props[:]
    for key, value in properties.items():
        model.metadata_props.add(key=key, value=value)


def info_from_properties(path: Path, properties: dict[str, str]) -> OnnxModelInfo:
    """Parse the metadata of ``path``; a file without it was not made by `crack export`."""
    if properties.get("format") != FORMAT:
        raise CrackError(f"{path}: an ONNX file without crack metadata; make model files with crack export")
    if int(properties.get("format_version", "0")) > FORMAT_VERSION:
        raise CrackError(f"{path}: written by a newer crack; upgrade crackcli")
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
            }
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise CrackError(
            f"{path}: damaged crack metadata ({exc.__class__.__name__}: {exc}); export the model again"
        ) from None
    dense = properties.get("dense") == "true"
    scan_mode = "dense" if dense and properties.get("scan_mode") == "dense" else "patch"
    return OnnxModelInfo(meta, dense, properties.get("precision", "fp32"), scan_mode, dict(properties))


def load_checked(path: Path) -> tuple[onnx.ModelProto, OnnxModelInfo]:
    """Read and validate ``path``: a parseable, self-contained ONNX graph with crack metadata."""
    try:
        model = onnx.load(str(path), load_external_data=False)
    except FileNotFoundError:
        raise CrackError(f"{path}: no such model file; check the path") from None
    except (DecodeError, OSError, ValueError, RuntimeError) as exc:
        raise CrackError(
            f"{path}: not an ONNX model ({exc.__class__.__name__}); pass a file made by crack export"
        ) from None
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
        raise CrackError(f"{path}: refers to external tensor files, which crack does not load; export it as one file")
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else "invalid graph"
        raise CrackError(f"{path}: not a valid ONNX graph ({first}); export the model again") from None
    info = info_from_properties(path, {p.key: p.value for p in model.metadata_props})
    return model, info
