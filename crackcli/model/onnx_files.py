"""The checks made before a `crack export` ONNX file is used, and writing its metadata.

An ONNX file is data, but it can point outside itself: a tensor stored as "external data" is read from
a path named in the file, relative to the model's folder or, for a graph handed over as bytes, to the
current folder.  Such a tensor can hide anywhere a tensor can (initializers, a ``Constant`` node's
value, sparse tensors, subgraphs of ``If`` / ``Loop``, functions), so every one is looked at before
ONNX Runtime sees the graph.  `crack` never writes such files and refuses them, so a model file cannot
make the scanner read anything else.  The metadata itself: ``onnx_properties``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import DecodeError

from crackcli.errors import CrackError, DivergedWeights
from crackcli.model.onnx_properties import (
    INPUT_NAME,
    LOGIT_MAP_OUTPUT,
    PROBS_OUTPUT,
    OnnxModelInfo,
    info_from_properties,
    read_model_file,
    read_properties,
)


def set_properties(model: onnx.ModelProto, properties: dict[str, str]) -> None:
    del model.metadata_props[:]
    for key, value in properties.items():
        model.metadata_props.add(key=key, value=value)


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


def checked_graph(
    path: Path, data: bytes | None = None, maker: str = "crack export"
) -> tuple[onnx.ModelProto, dict[str, str]]:
    """Parse and validate model file ``path`` (its bytes ``data`` when already read): a self-contained
    ONNX graph with finite weights that passes the ONNX checker, and its metadata properties.  Messages
    name ``maker``, what makes such files."""
    data = read_model_file(path) if data is None else data
    properties = read_properties(path, data)
    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise CrackError(f"{path}: not an ONNX model ({exc.__class__.__name__}); pass a file made by {maker}") from None
    if any(_refers_outside(tensor) for tensor in _model_tensors(model)):
        raise CrackError(f"{path}: refers to external tensor files, which crack does not load; make it as one file")
    broken = _nonfinite_tensors(model)
    if broken:
        raise DivergedWeights(str(path), broken)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else "invalid graph"
        raise CrackError(f"{path}: not a valid ONNX graph ({first}); make it again with {maker}") from None
    if {p.key: p.value for p in model.metadata_props} != properties:
        # The quick reading that sized the scan must be the file's: a disagreement is a crafted encoding.
        raise CrackError(f"{path}: its metadata reads differently from its graph's; make it again with {maker}")
    return model, properties


def _graph_inputs(model: onnx.ModelProto) -> dict[str, onnx.ValueInfoProto]:
    """The graph's real inputs by name (old exporters list weights as inputs too)."""
    inputs = {i.name: i for i in model.graph.input}
    for initializer in model.graph.initializer:
        inputs.pop(initializer.name, None)
    return inputs


def input_problem(model: onnx.ModelProto, wanted: dict[str, int | None]) -> str | None:
    """What makes the graph's inputs differ from ``wanted``, if anything: by name, the channels of a uint8
    (N, C, H, W) image, or None for a float vector."""
    inputs = _graph_inputs(model)
    if sorted(inputs) != sorted(wanted):
        names = ", ".join(f"'{name}'" for name in wanted)
        return f"its graph takes {sorted(inputs) or 'no input'}, not {names}"
    for name, channels in wanted.items():
        tensor_type = inputs[name].type.tensor_type
        dims = tensor_type.shape.dim
        shape = [d.dim_value if d.HasField("dim_value") else d.dim_param or "?" for d in dims]
        if channels is None:
            if tensor_type.elem_type != onnx.TensorProto.FLOAT or len(dims) != 1:
                kind = onnx.TensorProto.DataType.Name(tensor_type.elem_type)
                return f"input '{name}' is {kind} of shape {shape}, not a FLOAT vector"
            continue
        if tensor_type.elem_type != onnx.TensorProto.UINT8:
            return f"input '{name}' is {onnx.TensorProto.DataType.Name(tensor_type.elem_type)}, not UINT8"
        if len(dims) != 4 or (dims[1].HasField("dim_value") and dims[1].dim_value != channels):
            return f"input '{name}' has shape {shape}, not (N, {channels}, H, W)"
    return None


def missing_outputs(model: onnx.ModelProto, wanted: list[str]) -> str | None:
    outputs = [o.name for o in model.graph.output]
    missing = [name for name in wanted if name not in outputs]
    if missing:
        return f"its graph has no output {', '.join(repr(m) for m in missing)} (outputs: {outputs})"
    return None


def load_checked(path: Path, data: bytes | None = None) -> tuple[onnx.ModelProto, OnnxModelInfo]:
    """Parse and validate classifier file ``path`` (its bytes ``data`` when already read): a checked graph
    (``checked_graph``) with crack metadata that matches the graph."""
    model, properties = checked_graph(path, data)
    info = info_from_properties(path, properties)
    wanted = [PROBS_OUTPUT, LOGIT_MAP_OUTPUT] if info.dense else [PROBS_OUTPUT]
    problem = input_problem(model, {INPUT_NAME: 3}) or missing_outputs(model, wanted)
    if problem:
        raise CrackError(f"{path}: does not match its crack metadata: {problem}; export the model again")
    return model, info
