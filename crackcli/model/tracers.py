"""A crack tracer file (``tracer_files``) run by ONNX Runtime: crack probabilities per pixel of grey
photo crops.  The file is checked in full before its graph runs, as classifier files are."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from crackcli.errors import CrackError
from crackcli.model.onnx_properties import read_model_file
from crackcli.model.predictors import create_session, finite_scores
from crackcli.model.tracer_files import TRACER_INPUT, TRACER_OUTPUT


class OnnxTracer:
    """The tracer of file ``path`` on the CPU (its crops are cut as photos are scored: the GPU, where there
    is one, is the classifier's)."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

        from crackcli.model.tracer_files import load_tracer_checked

        data = read_model_file(path)
        model, self.info = load_tracer_checked(path, data)
        self.source = path
        self.sha256 = hashlib.sha256(data).hexdigest()
        try:
            self.session, _ = create_session(model.SerializeToString(), "cpu", threads)
        except (ort_errors.Fail, ort_errors.InvalidArgument, ort_errors.InvalidGraph) as exc:
            first = (str(exc).strip().splitlines() or ["no reason given"])[0][:160]
            raise CrackError(f"{path}: ONNX Runtime cannot run this tracer ({first}); make it again") from None

    def probabilities(self, gray: np.ndarray) -> np.ndarray:
        """Crack probability (float32, H×W) of every pixel of a uint8 grey crop (H×W)."""
        height, width = gray.shape
        step = self.info.size_multiple
        # mirrored, not repeated, to the size the graph takes: a repeated edge pixel would draw a line
        padded = np.pad(gray, ((0, -height % step), (0, -width % step)), mode="reflect")
        probs = self.session.run([TRACER_OUTPUT], {TRACER_INPUT: padded[None, None]})[0]
        return finite_scores(self.source, probs[0, 0, :height, :width])
