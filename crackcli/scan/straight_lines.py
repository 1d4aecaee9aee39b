"""Long straight lines taken out of the windows called crack, which are then classified again.

Formwork and planking joints, expansion joints, the edges of road paint and of kerbs are thin, dark (or
light) and straight, and a texture classifier that finds thin cracks calls them crack: the default
model called two thirds of the windows of drone photos that hold a joint and no crack crack.  A crack
is almost never straight over most of a window.  So the photo around the windows called crack is
looked at as the model sees it (at model scale, after the model's minimum filter): lines darker or
lighter than their surroundings (top-hats, thresholded at the noise level of each window-sized tile)
that are straight (a probabilistic Hough transform) over at least ``MIN_LENGTH`` of a window, and as
even as a ruled line (centre and width barely moving along it).  A joint runs on beyond the window,
so it is found even where it only crosses a window's corner.  Where such lines run through a window
called crack they are painted out (OpenCV's inpainting from the pixels beside them) and the window is
classified again; its crack probability is the lower of the two: what is left of a crack beside or
across a joint is still found; a crack that runs straight along most of a window, or along a joint,
is not.  Windows with no pixels at model scale to look around (enlarged ones) are looked at alone.

All sizes are shares of the model's input side, so the check sees a photo as the model does whatever
its resolution.  Its settings were chosen on the field selection sets and ccic/val (docs/BENCHMARKS.md,
"The line check" and "Lines beyond the window").
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np

from crackcli.model.predictors import Predictor

MIN_LENGTH = 0.75  # a line counts when straight over this share of the window side
TOP_HAT = 0.07  # side of the top-hats' square: lines up to about half as wide are seen whole
BAND = 0.07  # width of the band painted out along a line
MAX_GAP = 0.04  # gaps along a line bridged by the Hough transform
NOISE_LEVELS = 3.0  # line pixels: this many noise σ (from the median absolute deviation) above the median
MAD_TO_SIGMA = 1.4826
PROFILE_REACH = 4  # model pixels either side of a line looked at across it
MIN_COVER = 0.7  # share of a line's length where it is marked
MAX_WANDER = 0.8  # spread (px) of the marked band's centre across the line: a ruled line stays put
MAX_WIDTH_SPREAD = 1.25  # spread (px) of its width along the line
ANGLE_STEP = math.pi / 360  # the Hough transform's angular resolution: half a degree
REACH = 0.5  # lines are also looked for this many window sides around the windows called crack
VERSION = "2"  # of the check's method: recorded with a report, so one made by another is not reused


@dataclass(frozen=True)
class PhotoLines:
    """The long straight lines of a photo at model scale near its windows called crack, and where every
    window lies at that scale: a joint crossing only a window's corner, or too faint there to be seen
    within the window, runs on beyond it and is found there."""

    segments: np.ndarray  # (K, 4) x0, y0, x1, y1 in model-scale pixels
    origins: np.ndarray  # (windows, 2) each window's x, y in model-scale pixels
    side: int  # the windows' side at model scale (the model's input side)

    def through(self, window: int) -> np.ndarray:
        """(K, 4) the parts of the lines inside window number ``window``, in its own pixels."""
        x, y = (int(v) for v in np.rint(self.origins[window]))
        inside = []
        for x0, y0, x1, y1 in self.segments:
            crosses, start, end = cv2.clipLine((x, y, self.side, self.side), (int(x0), int(y0)), (int(x1), int(y1)))
            if crosses:
                inside.append((start[0] - x, start[1] - y, end[0] - x, end[1] - y))
        return np.array(inside, np.int32).reshape(-1, 4)


class LineSearch:
    """Builds a photo's ``PhotoLines`` while its windows are still being classified.

    The lines are looked for over each connected stretch of the windows called crack (with ``REACH``
    window sides around them, drawn on a coarse grid rounded outwards), at once.  A stretch is looked at,
    on a thread of its own, as soon as no window still to be scored could reach it: the lines found are
    the same as when every stretch is looked at after the last window (as the check first did), while
    the classification of the rest goes on.
    ``ready(rows)`` waits until the first ``rows`` rows of ``planes`` are made.
    """

    def __init__(self, planes: np.ndarray, origins: np.ndarray, side: int, ready: Callable[[int], None]) -> None:
        self._planes, self._origins, self._side, self._ready = planes, origins, side, ready
        height, width = planes.shape[1:]
        self._cell = cell = max(1, side // 8)
        reach = round(REACH * side)
        self._reaches = [
            (
                slice(max(0, y - reach) // cell, -(-(y + side + reach) // cell)),
                slice(max(0, x - reach) // cell, -(-(x + side + reach) // cell)),
            )
            for x, y in np.rint(origins).astype(np.intp)
        ]  # each window's cells with the reach around it
        cells = (-(-height // cell), -(-width // cell))
        self._called = np.zeros(cells, np.uint8)
        self._taken = np.zeros(cells, bool)  # cells of the stretches already being looked at
        self._unscored = np.zeros(cells, np.int32)  # windows not yet scored that reach each cell
        for reach_cells in self._reaches:
            self._unscored[reach_cells] += 1
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="line-search")
        self._found: list[Future] = []

    def scored(self, windows: np.ndarray, called: np.ndarray) -> None:
        """Windows (indices) scored now, and which of them (a boolean per window) are called crack."""
        for window, crack in zip(windows.tolist(), called.tolist(), strict=True):
            reach_cells = self._reaches[window]
            self._unscored[reach_cells] -= 1
            if crack:
                self._called[reach_cells] = 1
        self._start_settled()  # a stretch waits for the windows around it, called crack or not

    def lines(self) -> PhotoLines:
        """The lines near every window called crack (all windows scored by now)."""
        self._start_settled()
        segments = [np.zeros((0, 4), np.int32)] + [job.result() for job in self._found]
        return PhotoLines(np.concatenate(segments).astype(np.int32), self._origins, self._side)

    def _start_settled(self) -> None:
        """Look at each stretch that no window still to be scored reaches or touches."""
        if not (self._called.astype(bool) & ~self._taken).any():
            return  # every cell called crack is being looked at already
        reachable = cv2.dilate((self._unscored > 0).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        count, labels, stats, _ = cv2.connectedComponentsWithStats(self._called)
        for label, (left, top, cells_wide, cells_high, _) in enumerate(stats[1:count], 1):
            box = (slice(top, top + cells_high), slice(left, left + cells_wide))
            stretch = labels[box] == label
            if self._taken[box][stretch].any() or reachable[box][stretch].any():
                continue
            self._taken[box] |= stretch
            self._found.append(self._pool.submit(self._segments, left, top, stretch))

    def _segments(self, left: int, top: int, stretch: np.ndarray) -> np.ndarray:
        """The lines of one stretch (cells ``stretch`` from cell ``left``, ``top``), in model-scale pixels."""
        cell, (height, width) = self._cell, self._planes.shape[1:]
        x0, y0 = left * cell, top * cell
        x1, y1 = min(width, x0 + stretch.shape[1] * cell), min(height, y0 + stretch.shape[0] * cell)
        self._ready(y1)
        rgb = np.ascontiguousarray(self._planes[:, y0:y1, x0:x1].transpose(1, 2, 0))
        near = np.repeat(np.repeat(stretch, cell, axis=0), cell, axis=1)[: y1 - y0, : x1 - x0]
        return line_segments(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), self._side, near) + np.array([x0, y0, x0, y0])

    def __enter__(self) -> LineSearch:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._pool.shutdown(cancel_futures=True)  # a scan stopped early does not wait for stretches not begun


@dataclass(frozen=True)
class LineCheck:
    """Windows whose class ``crack`` (an index of the model's classes) scores at least ``threshold`` are
    checked for straight lines."""

    crack: int
    threshold: float


def line_segments(gray: np.ndarray, side: int | None = None, near: np.ndarray | None = None) -> np.ndarray:
    """(K, 4) x0, y0, x1, y1 of the long straight lines of a grey window (uint8, square), or of a grey
    part of a photo at model scale, measured against windows of ``side`` pixels, looked for only among
    its pixels ``near`` (a boolean image) where given."""
    side = side or gray.shape[0]
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (max(3, round(TOP_HAT * side)) | 1,) * 2)
    length = max(8, round(MIN_LENGTH * side))
    found = []
    for operation in (cv2.MORPH_BLACKHAT, cv2.MORPH_TOPHAT):  # dark grooves, then light ridges
        hat = cv2.morphologyEx(gray, operation, kernel, borderType=cv2.BORDER_REPLICATE)
        marked = _marked(hat, side)
        if near is not None:
            marked &= near
        lines = cv2.HoughLinesP(
            marked.astype(np.uint8) * 255,
            1,
            ANGLE_STEP,
            threshold=length // 2,
            minLineLength=length,
            maxLineGap=max(1, round(MAX_GAP * side)),
        )
        if lines is not None:
            found += [segment for segment in lines.reshape(-1, 4) if _ruled(marked, segment)]
    return np.array(found, np.int32).reshape(-1, 4)


def _marked(hat: np.ndarray, side: int) -> np.ndarray:
    """Pixels of a top-hat ``NOISE_LEVELS`` noise σ above the median of their tile of ``side`` pixels
    (square tiles from the top left): the noise level of a surface changes across a photo."""
    height, width = hat.shape
    tops, lefts = range(0, height, side), range(0, width, side)
    counts = np.stack(
        [
            np.bincount(hat[top : top + side, left : left + side].ravel(), minlength=256)
            for top in tops
            for left in lefts
        ]
    )
    median, deviation = tile_medians(counts)
    # hat > t holds exactly when hat > ⌊t⌋, hats being whole numbers
    limit = np.floor(median + NOISE_LEVELS * (MAD_TO_SIGMA * deviation + 1e-3)).astype(np.int16)
    limit = limit.reshape(len(tops), len(lefts)).repeat(side, axis=0).repeat(side, axis=1)
    return hat > limit[:height, :width]


def tile_medians(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """From the histograms of uint8 tiles ((tiles, 256) counts), each tile's median and median absolute
    deviation from it, as ``np.median`` gives them (far faster than sorting each tile's pixels)."""
    levels = np.arange(256)
    median = _sorted_medians(np.broadcast_to(levels, counts.shape), counts)
    deviations = np.abs(levels[None, :] - median[:, None])
    order = np.argsort(deviations, axis=1, kind="stable")
    return median, _sorted_medians(np.take_along_axis(deviations, order, 1), np.take_along_axis(counts, order, 1))


def _sorted_medians(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per row, the median of ``values`` (ascending along the row) each repeated ``counts`` times."""
    total = np.cumsum(counts, axis=1)
    n = total[:, -1]
    low = (total <= ((n - 1) // 2)[:, None]).sum(axis=1)  # the first place whose running count passes the rank
    high = (total <= (n // 2)[:, None]).sum(axis=1)
    rows = np.arange(len(values))
    return (values[rows, low] + values[rows, high]) / 2


def _ruled(marked: np.ndarray, segment: np.ndarray) -> bool:
    """Whether the marked pixels along ``segment`` form a band as straight and as even as a ruled line: a
    crack that the Hough transform finds straight still wanders across its line and changes width."""
    x0, y0, x1, y1 = (float(v) for v in segment)
    length = math.hypot(x1 - x0, y1 - y0)
    along = np.array([x1 - x0, y1 - y0]) / length
    normal = np.array([-along[1], along[0]])
    steps = np.arange(0.0, length + 0.5)
    offsets = np.arange(-PROFILE_REACH, PROFILE_REACH + 1, dtype=np.float64)
    points = np.array([x0, y0]) + steps[:, None, None] * along + offsets[None, :, None] * normal  # (L, O, 2)
    xs = np.clip(np.rint(points[..., 0]).astype(np.intp), 0, marked.shape[1] - 1)
    ys = np.clip(np.rint(points[..., 1]).astype(np.intp), 0, marked.shape[0] - 1)
    profile = marked[ys, xs]  # (L, O): marked pixels across the line at each step along it
    widths = profile.sum(axis=1)
    seen = widths > 0
    if seen.mean() < MIN_COVER:
        return False
    centres = (profile[seen] * offsets).sum(axis=1) / widths[seen]
    return float(np.std(centres)) <= MAX_WANDER and float(np.std(widths[seen])) <= MAX_WIDTH_SPREAD


def without_lines(rgb: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """A window (S, S, 3 uint8, contiguous) with ``segments`` painted out, as the model reads it: (3, S, S)."""
    side = rgb.shape[0]
    band = np.zeros((side, side), np.uint8)
    for x0, y0, x1, y1 in segments:
        cv2.line(band, (int(x0), int(y0)), (int(x1), int(y1)), 255, max(1, round(BAND * side)))
    return cv2.inpaint(rgb, band, 3, cv2.INPAINT_TELEA).transpose(2, 0, 1)


def checked_probs(
    predictor: Predictor,
    probs: np.ndarray,
    check: LineCheck,
    inputs: Callable[[np.ndarray], np.ndarray],
    photo_lines: PhotoLines | None = None,
    batch: int = 64,
) -> np.ndarray:
    """``probs`` of a photo's windows (as ``predictor`` gave them) after the line check.  A window called
    crack that ``photo_lines`` run through (without them: that holds long straight lines of its own) is
    fetched again as the model reads it (``inputs(indices)``: (n, 3, S, S) uint8) and takes the
    probabilities of its classification without those lines where its crack probability is then lower."""
    called = np.flatnonzero(probs[:, check.crack] >= check.threshold)
    pieces: dict[int, np.ndarray] = {}
    if photo_lines is not None:  # only the windows the photo's lines run through are fetched again
        pieces = {int(index): photo_lines.through(int(index)) for index in called}
        called = np.array([index for index in called if len(pieces[int(index)])], np.intp)
    for start in range(0, len(called), batch):
        chunk = called[start : start + batch]
        erased, which = [], []
        for index, window in zip(chunk, inputs(chunk), strict=True):
            rgb = np.ascontiguousarray(window.transpose(1, 2, 0))
            if photo_lines is None:
                segments = line_segments(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
            else:
                segments = pieces[int(index)]
            if len(segments):
                erased.append(without_lines(rgb, segments))
                which.append(index)
        if not which:
            continue
        again = predictor.predict(np.stack(erased))
        rows = np.array(which, np.intp)
        lower = again[:, check.crack] < probs[rows, check.crack]
        probs[rows[lower]] = again[lower]
    return probs
