"""A crack tracer file (``tracer_files``) run by ONNX Runtime, on the CPU or a GPU: crack probabilities
per pixel of grey photo crops.  The file is checked in full before its graph runs, as classifier files
are."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from crackcli.errors import CrackError
from crackcli.model.onnx_properties import read_model_file
from crackcli.model.predictors import create_session, finite_scores, first_line, runtime_refusals
from crackcli.model.tracer_files import TRACER_INPUT, TRACER_OUTPUT, TRACER_STATISTICS, crop_statistics

# Crops run in tiles of this side (each with its context), and only tiles holding a pixel to trace run:
# a group of crack windows seldom fills its bounding box, and inside the graph a pixel takes about a
# hundred bytes, so a whole cracked 42 MP photo at once would take gigabytes.
TILE_PX = 256


class OnnxTracer:
    """The tracer of file ``path`` on ``device`` (auto: a GPU where ONNX Runtime can use one)."""

    def __init__(
        self, path: Path, device: str = "auto", threads: int | None = None, pad_tiles: bool | None = None
    ) -> None:
        from crackcli.model.tracer_files import load_tracer_checked

        data = read_model_file(path)
        model, self.info = load_tracer_checked(path, data)
        self.source = path
        self.sha256 = hashlib.sha256(data).hexdigest()
        try:
            self.session, _ = create_session(model.SerializeToString(), device, threads)
        except runtime_refusals() as exc:
            why = first_line(exc)
            raise CrackError(f"{path}: ONNX Runtime cannot run this tracer ({why}); make it again") from None
        # Every tile padded to one shape on the CUDA provider, where each new shape reruns cuDNN's search;
        # on the CPU, edge tiles and small crops run at their own size (less work).
        on_cuda = self.session.get_providers()[0] == "CUDAExecutionProvider"
        self.pad_tiles = on_cuda if pad_tiles is None else pad_tiles

    def probabilities(self, gray: np.ndarray, within: np.ndarray | None = None) -> np.ndarray:
        """Crack probability (float32, H×W) of the pixels of a uint8 grey crop (H×W); with ``within`` (bool,
        H×W), tiles holding none of its pixels are not run and score 0."""
        height, width = gray.shape
        statistics = crop_statistics(gray)
        probs = np.zeros((height, width), np.float32)
        context = self.info.context_px
        for y in range(0, height, TILE_PX):
            for x in range(0, width, TILE_PX):
                y_end, x_end = min(height, y + TILE_PX), min(width, x + TILE_PX)
                if within is not None and not within[y:y_end, x:x_end].any():
                    continue
                y0, x0 = max(0, y - context), max(0, x - context)
                tile = self._run(gray[y0 : min(height, y_end + context), x0 : min(width, x_end + context)], statistics)
                probs[y:y_end, x:x_end] = tile[y - y0 : y_end - y0, x - x0 : x_end - x0]
        return probs

    def _run(self, gray: np.ndarray, statistics: np.ndarray) -> np.ndarray:
        height, width = gray.shape
        step = self.info.size_multiple
        if self.pad_tiles:
            side = -(-(TILE_PX + 2 * self.info.context_px) // step) * step
            padded_h, padded_w = side, side
        else:
            padded_h, padded_w = -(-height // step) * step, -(-width // step) * step
        # mirrored to the size the graph takes (a repeated edge pixel would draw a line)
        padded = np.pad(gray, ((0, padded_h - height), (0, padded_w - width)), mode="symmetric")
        inputs = {TRACER_INPUT: padded[None, None], TRACER_STATISTICS: statistics}
        probs = self.session.run([TRACER_OUTPUT], inputs)[0]
        return finite_scores(self.source, probs[0, 0, :height, :width])
