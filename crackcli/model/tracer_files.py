"""What a crack tracer file is: an ONNX graph that maps a grey photo crop to a crack probability per
pixel, with everything a scanner needs to use it in its metadata, checked as classifier files are.

The graph takes uint8 grey (1, 1, H, W), H and W multiples of ``size_multiple``, and the mean and
spread of the crop it belongs to (``crop_statistics``), by which it standardises the pixels inside:
a large crop runs in tiles, each standardised as the whole crop.  The metadata names the
probability from which a pixel is crack, the shortest crack kept, and the context (pixels around a
traced area the network should see).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from crackcli.errors import CrackError
from crackcli.model.onnx_properties import check_format

TRACER_FORMAT = "crack-tracer"
TRACER_FORMAT_VERSION = 1
TRACER_INPUT = "gray"
TRACER_STATISTICS = "statistics"
TRACER_OUTPUT = "crack_prob"


def crop_statistics(gray: np.ndarray) -> np.ndarray:
    """float32 (mean, spread) of a grey crop, the spread at least one grey level (a flat crop stays flat)."""
    mean, spread = (float(v.ravel()[0]) for v in cv2.meanStdDev(gray))  # one pass in C; NumPy: 50 ms a megapixel
    return np.array([mean, max(spread, 1.0)], np.float32)


@dataclass(frozen=True)
class TracerInfo:
    """What a tracer file says about itself."""

    threshold: float  # pixels at this crack probability or more are crack
    min_length_px: int  # connected crack pixels whose bounding square is shorter are dropped
    size_multiple: int  # the input's height and width must be multiples of this
    context_px: int  # photo pixels around a traced area handed to the network with it
    width_threshold: float  # crack pixels at this probability or more make a crack's width (≥ threshold)
    # connected crack pixels filling this share of their bounding square or more are dropped (blots of
    # marked texture, not cracks); files without it keep every group long enough
    max_fill: float = math.inf
    properties: dict[str, str] = field(default_factory=dict)

    def training(self) -> dict[str, Any]:
        return json.loads(self.properties.get("training", "{}"))


def tracer_properties(
    threshold: float,
    min_length_px: int,
    size_multiple: int,
    context_px: int,
    training: dict[str, Any],
    width_threshold: float | None = None,
    max_fill: float = math.inf,
) -> dict[str, str]:
    """The metadata of a tracer file, as ONNX string properties (``width_threshold`` None: ``threshold``;
    ``max_fill`` inf: no limit, the property left out)."""
    fill = {} if max_fill == math.inf else {"max_fill": repr(float(max_fill))}
    return {
        "format": TRACER_FORMAT,
        "format_version": str(TRACER_FORMAT_VERSION),
        "input": f"{TRACER_INPUT}: uint8 grey (1, 1, H, W), H and W multiples of size_multiple; "
        f"{TRACER_STATISTICS}: float (2,), the mean and standard deviation (at least 1) of the crop's grey levels",
        "outputs": f"{TRACER_OUTPUT}: float crack probability (1, 1, H, W)",
        "threshold": repr(float(threshold)),
        "width_threshold": repr(float(threshold if width_threshold is None else width_threshold)),
        "min_length_px": str(int(min_length_px)),
        **fill,
        "size_multiple": str(int(size_multiple)),
        "context_px": str(int(context_px)),
        "training": json.dumps(training, sort_keys=True),
    }


def tracer_info(path: Path, properties: dict[str, str]) -> TracerInfo:
    """Parse the metadata of tracer file ``path``."""
    otherwise = "not a crack tracer file; pass a tracer made by benchmarks/trace_learned.py"
    check_format(path, properties, TRACER_FORMAT, TRACER_FORMAT_VERSION, otherwise)
    try:
        info = TracerInfo(
            threshold=float(properties["threshold"]),
            min_length_px=int(properties["min_length_px"]),
            size_multiple=int(properties["size_multiple"]),
            context_px=int(properties["context_px"]),
            # files made before widths had a threshold of their own measured at the crack pixels' one
            width_threshold=float(properties.get("width_threshold", properties["threshold"])),
            max_fill=float(properties.get("max_fill", "inf")),
            properties=dict(properties),
        )
    except (KeyError, ValueError) as exc:
        raise CrackError(f"{path}: damaged tracer metadata ({exc.__class__.__name__}: {exc}); make it again") from None
    if (
        not 0 < info.threshold <= info.width_threshold < 1
        or info.min_length_px < 1
        or not (0 < info.max_fill <= 1 or info.max_fill == math.inf)
        or info.size_multiple < 1
        or info.context_px < 0
    ):
        raise CrackError(f"{path}: tracer metadata out of range ({properties}); make it again")
    return info


def load_tracer_checked(path: Path, data: bytes | None = None):
    """Parse and validate tracer file ``path``: a checked graph (``onnx_files.checked_graph``) whose input
    and output are what its metadata promises; the model and its ``TracerInfo``."""
    from crackcli.model.onnx_files import checked_graph, input_problem, missing_outputs

    model, properties = checked_graph(path, data, "benchmarks/trace_learned.py")
    info = tracer_info(path, properties)
    problem = input_problem(model, {TRACER_INPUT: 1, TRACER_STATISTICS: None}) or missing_outputs(
        model, [TRACER_OUTPUT]
    )
    if problem:
        raise CrackError(f"{path}: does not match its tracer metadata: {problem}; make it again")
    return model, info
