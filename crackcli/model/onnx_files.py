"""`crack export` ONNX files: the metadata they carry and the checks made before one is used.

Everything a scanner needs travels inside the file as ONNX metadata properties (string key/values,
visible in Netron and in ``onnxruntime``'s model metadata): the ``ModelMeta`` fields, whether the graph
has a dense (per-location) output, the scan mode it was validated for, its precision and a summary of
the training run.

An ONNX file is data, but it can point outside itself: a tensor stored as "external data" is read from
a path named in the file, relative to the model's folder or, for a graph handed over as bytes, to the
current folder.  Such a tensor can hide anywhere a tensor can (initializers, a ``Constant`` node's
value, sparse tensors, subgraphs of ``If`` / ``Loop``, functions), so every one is looked at before
ONNX Runtime sees the graph.  `crack` never writes such files and refuses them, so a model file cannot
make the scanner read anything else.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from google.protobuf.message import DecodeError

from crackcli.errors import CrackError, DivergedWeights
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


def _graph_tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield from (sparse.values, sparse.indices)
    for node in graph.node:
        yield from _node_tensors(node)


def _node_tensors(node: onnx.NodeProto) -> Iterator[onnx.TensorProto]:
    for attribute in node.attribute:
        if attribute.HasField("t"):
            yield attribute.t
        yield from attribute.tensors
        for sparse in [attribute.sparse_tensor, *attribute.sparse_tensors]:
            yield from (sparse.values, sparse.indices)
        for subgraph in [attribute.g, *attribute.graphs]:
            yield from _graph_tensors(subgraph)


def _model_tensors(model: onnx.ModelProto) -> Iterator[onnx.TensorProto]:
    """Every tensor stored anywhere in ``model``: graph, subgraphs, functions and training graphs."""
    yield from _graph_tensors(model.graph)
    for function in model.functions:
        for node in function.node:
            yield from _node_tensors(node)
    for training in model.training_info:
        yield from _graph_tensors(training.initialization)
        yield from _graph_tensors(training.algorithm)


def _refers_outside(tensor: onnx.TensorProto) -> bool:
    return tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.external_data) > 0


_FLOAT_TYPES = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE, onnx.TensorProto.BFLOAT16)


def _nonfinite_tensors(model: onnx.ModelProto) -> list[str]:
    """Names of stored floating-point tensors holding NaN or an infinity (a diverged run's export)."""
    return [
        tensor.name or "a constant"
        for tensor in _model_tensors(model)
        if tensor.data_type in _FLOAT_TYPES
        and not np.isfinite(onnx.numpy_helper.to_array(tensor).astype(np.float32, copy=False)).all()
    ]


def _signature_problem(model: onnx.ModelProto, dense: bool) -> str | None:
    """What makes the graph's inputs and outputs differ from what its crack metadata promises, if anything."""
    inputs = {i.name: i for i in model.graph.input}
    for initializer in model.graph.initializer:
        inputs.pop(initializer.name, None)  # old exporters list weights as inputs too
    if list(inputs) != [INPUT_NAME]:
        return f"its graph takes {sorted(inputs) or 'no input'}, not one input '{INPUT_NAME}'"
    tensor_type = inputs[INPUT_NAME].type.tensor_type
    if tensor_type.elem_type != onnx.TensorProto.UINT8:
        return f"input '{INPUT_NAME}' is {onnx.TensorProto.DataType.Name(tensor_type.elem_type)}, not UINT8"
    dims = tensor_type.shape.dim
    if len(dims) != 4 or (dims[1].HasField("dim_value") and dims[1].dim_value != 3):
        shape = [d.dim_value if d.HasField("dim_value") else d.dim_param or "?" for d in dims]
        return f"input '{INPUT_NAME}' has shape {shape}, not (N, 3, H, W)"
    outputs = [o.name for o in model.graph.output]
    wanted = [PROBS_OUTPUT, LOGIT_MAP_OUTPUT] if dense else [PROBS_OUTPUT]
    missing = [name for name in wanted if name not in outputs]
    if missing:
        return f"its graph has no output {', '.join(repr(m) for m in missing)} (outputs: {outputs})"
    return None


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
    if any(_refers_outside(tensor) for tensor in _model_tensors(model)):
        raise CrackError(f"{path}: refers to external tensor files, which crack does not load; export it as one file")
    broken = _nonfinite_tensors(model)
    if broken:
        raise DivergedWeights(str(path), broken)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else "invalid graph"
        raise CrackError(f"{path}: not a valid ONNX graph ({first}); export the model again") from None
    info = info_from_properties(path, {p.key: p.value for p in model.metadata_props})
    problem = _signature_problem(model, info.dense)
    if problem:
        raise CrackError(f"{path}: does not match its crack metadata: {problem}; export the model again")
    return model, info
