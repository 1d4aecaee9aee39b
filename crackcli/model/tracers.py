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

# Crops run in bands of this many rows (each with its context), and in each band only the stretches of
# columns holding a pixel to trace: a group of crack windows seldom fills its bounding box (square tiles
# of this side ran 1.4x the pixels on a photo with a third of its windows crack), and inside the graph a
# pixel takes about a hundred bytes, so a whole cracked 42 MP photo at once would take gigabytes.
TILE_PX = 256
# A band ends early, where the rows to trace change (a group of windows ends or begins), if that leaves it at
# least this share of TILE_PX: the next band then runs only the new rows' columns (on a 42 MP photo with a
# tenth of its windows crack, 12% fewer pixels run than with bands at every TILE_PX rows).
SHORTEST_BAND = 0.375
MAX_RUN_TILES = 8  # a stretch of columns runs at most this many TILE_PX wide at once (memory)


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
        H×W), only the stretches of each band of rows that hold its pixels are run, the rest scores 0."""
        height, width = gray.shape
        statistics = crop_statistics(gray)
        probs = np.zeros((height, width), np.float32)
        context = self.info.context_px
        for y, y_end in _bands(within, height):
            columns = np.ones(width, bool) if within is None else np.any(within[y:y_end], axis=0)
            for x, x_end in _stretches(columns, 2 * context, MAX_RUN_TILES * TILE_PX):
                y0, x0 = max(0, y - context), max(0, x - context)
                tile = self._run(gray[y0 : min(height, y_end + context), x0 : min(width, x_end + context)], statistics)
                probs[y:y_end, x:x_end] = tile[y - y0 : y_end - y0, x - x0 : x_end - x0]
        return probs

    def _run(self, gray: np.ndarray, statistics: np.ndarray) -> np.ndarray:
        height, width = gray.shape
        step, context = self.info.size_multiple, self.info.context_px
        if self.pad_tiles:  # a few shapes only: a band's height, widths in whole tiles
            padded_h = -(-(TILE_PX + 2 * context) // step) * step
            padded_w = -(-(-(-(width - 2 * context) // TILE_PX) * TILE_PX + 2 * context) // step) * step
        else:
            padded_h, padded_w = -(-height // step) * step, -(-width // step) * step
        # mirrored to the size the graph takes (a repeated edge pixel would draw a line)
        padded = np.pad(gray, ((0, padded_h - height), (0, padded_w - width)), mode="symmetric")
        inputs = {TRACER_INPUT: padded[None, None], TRACER_STATISTICS: statistics}
        probs = self.session.run([TRACER_OUTPUT], inputs)[0]
        return finite_scores(self.source, probs[0, 0, :height, :width])


def _bands(within: np.ndarray | None, height: int) -> list[tuple[int, int]]:
    """(start, end) of the bands of rows run one after the other: at most TILE_PX rows, each ending at the
    last row before TILE_PX where ``within`` changes from one row to the next, when there is one after
    SHORTEST_BAND of TILE_PX; at every TILE_PX rows without ``within``."""
    changes = np.empty(0, np.int64) if within is None else np.flatnonzero(np.any(within[1:] != within[:-1], axis=1)) + 1
    shortest = int(SHORTEST_BAND * TILE_PX)
    bands, y = [], 0
    while y < height:
        limit = min(height, y + TILE_PX)
        early = changes[(changes > y + shortest) & (changes < limit)]
        end = int(early[-1]) if len(early) and limit < height else limit
        bands.append((y, end))
        y = end
    return bands


def _stretches(columns: np.ndarray, join_gap: int, longest: int) -> list[tuple[int, int]]:
    """(start, end) of the runs of True in ``columns``, runs less than ``join_gap`` apart joined (running
    the gap costs less than the context of another run), each at most ``longest`` long."""
    edges = np.flatnonzero(np.diff(np.concatenate([[False], columns, [False]]).astype(np.int8)))
    runs: list[list[int]] = []
    for start, end in zip(edges[::2].tolist(), edges[1::2].tolist()):
        if runs and start - runs[-1][1] < join_gap:
            runs[-1][1] = end
        else:
            runs.append([start, end])
    return [(x, min(end, x + longest)) for start, end in runs for x in range(start, end, longest)]
