"""`crack info MODEL`: what a model file says about itself, read without running it."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from crackcli.errors import UsageError


def model_file_info(path: Path) -> dict[str, Any]:
    """The metadata of a `crack export` ONNX file, a tracer file or a `crack train` checkpoint."""
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        from crackcli.model.onnx_files import load_checked
        from crackcli.model.onnx_properties import read_model_file, read_properties
        from crackcli.model.tracer_files import TRACER_FORMAT

        data = read_model_file(path)
        if read_properties(path, data).get("format") == TRACER_FORMAT:
            return _tracer_file_info(path, data)

        model, info = load_checked(path, data)
        details: dict[str, Any] = {
            "file": str(path),
            "kind": "ONNX (crack export)",
            "size_mb": round(path.stat().st_size / 1e6, 2),
        }
        details.update(info.meta.as_dict())
        details.update(
            {
                "dense": info.dense,
                "scan_mode": info.scan_mode,
                "precision": info.precision,
                "opset": model.opset_import[0].version,
            }
        )
        details.update({k: v for k, v in info.properties.items() if k in ("input", "outputs")})
        details["training"] = info.training()
        return details
    if suffix in (".pt", ".pth"):
        from crackcli.model.checkpoint import load_checkpoint

        payload = load_checkpoint(path)
        details = {"file": str(path), "kind": "crack train checkpoint", "size_mb": round(path.stat().st_size / 1e6, 2)}
        details.update(payload["meta"])
        details.update({"epoch": payload.get("epoch"), "crackcli_version": payload.get("crackcli_version")})
        details["training"] = json.loads(json.dumps(payload.get("summary", {}), default=str))
        return details
    raise UsageError(f"{path}: unknown model file type '{suffix}'; pass a .onnx or .pt file")


def _tracer_file_info(path: Path, data: bytes) -> dict[str, Any]:
    from crackcli.model.tracer_files import load_tracer_checked

    model, info = load_tracer_checked(path, data)
    return {
        "file": str(path),
        "kind": "ONNX crack tracer (crack scan --trace --tracer)",
        "size_mb": round(len(data) / 1e6, 2),
        "threshold": info.threshold,
        "width_threshold": info.width_threshold,
        "min_length_px": info.min_length_px,
        "max_fill": None if math.isinf(info.max_fill) else info.max_fill,
        "size_multiple": info.size_multiple,
        "context_px": info.context_px,
        "opset": model.opset_import[0].version,
        **{k: v for k, v in info.properties.items() if k in ("input", "outputs")},
        "training": info.training(),
    }
