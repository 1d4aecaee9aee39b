"""Patch mode: every window cut, brought to the model's input size and classified, as training saw patches.

Resizing each of thousands of overlapping windows costs more than the model itself on a small network.
So the photo is shrunk once to the model's scale (area averaging at exactly that scale, as
``fit_patch`` shrinks a window), and every window that falls on that image's pixel grid is taken from
it as a view: the same pixels as shrinking the window alone, gathered straight into the model's
(N, 3, S, S) layout.  The few that do not fall on the grid (a shifted last row or column) are resized
one by one, as before.  Enlarging is always per window: a whole photo enlarged would not fit in memory.

A photo at its own resolution is shrunk in bands of rows on worker threads (after the model's minimum
filter, band by band too), so the windows of the first bands are classified while later bands are
still being made, and no filtered copy of the whole photo is ever held.  A scan job starts a photo's
bands as soon as it is decoded (``model_scale`` with the job's pool), so on a GPU the next photos are
being shrunk while this one is classified.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor, wait
from contextlib import nullcontext
from fractions import Fraction
from types import TracebackType

import cv2
import numpy as np
import numpy.typing as npt

from crackcli.data.preprocess import fit_patch, keep_thin_dark
from crackcli.data.tiling import Window, crop
from crackcli.model.meta import ModelMeta
from crackcli.model.predictors import Predictor
from crackcli.scan.straight_lines import LineCheck, LineSearch, checked_probs

BAND_ROWS = 512  # photo rows shrunk at a time: about 10 bands for a 6000-row photo


def model_scale(
    meta: ModelMeta, rgb: np.ndarray, photo_size: tuple[int, int], side: int, pool: Executor | None = None
) -> ModelScale | None:
    """The photo (pixels ``rgb``, the photo or a reduced decode of it) at the model's scale for windows of
    ``side`` photo pixels, its bands being made on ``pool`` (None: a thread of its own); None where the
    windows are resized one by one instead (enlarging, or shrinking to a vanishing sliver)."""
    size = meta.image_size
    factor = rgb.shape[1] / photo_size[0]  # below 1 for a reduced decode
    relative = size / side / factor
    if relative > 1 or min(rgb.shape[:2]) * relative < 1:
        return None
    # Bands must start on photo rows that land on whole rows at this scale, so each is shrunk exactly
    # as its rows of the whole photo would be: multiples of the scale's denominator.
    step = 1 if relative == 1 else Fraction(size, side).denominator if factor == 1 else rgb.shape[0]
    return ModelScale(rgb, relative, step, meta.min_filter_px, pool)


def patch_probs(
    predictor: Predictor,
    rgb: np.ndarray,
    photo_size: tuple[int, int],
    windows: list[Window],
    batch: int,
    prepared: ModelScale | None = None,
    check: LineCheck | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities (len(windows), C) of ``windows`` (photo pixels, one size) of a photo of
    ``photo_size`` whose pixels are ``rgb`` (the photo, or a reduced decode of it), after the model's
    minimum filter; from ``prepared`` (``model_scale`` of these pixels for these windows) where given;
    after the straight-line ``check`` where given (``scan.straight_lines``).  With them, which windows
    the check took from crack to not crack (all False without a check)."""
    size, min_filter_px = predictor.meta.image_size, predictor.meta.min_filter_px
    probs = np.empty((len(windows), len(predictor.meta.classes)), np.float32)
    cleared = np.zeros(len(windows), bool)
    if not windows:
        return probs, cleared
    side = windows[0].size
    factor = rgb.shape[1] / photo_size[0]  # below 1 for a reduced decode
    scaled = prepared or model_scale(predictor.meta, rgb, photo_size, side)
    # Window origins at model scale; those on its pixel grid and inside it are gathered from it.
    origins = np.array([(w.x, w.y) for w in windows], np.float64) * (size / side)
    at = np.rint(origins).astype(np.intp)
    gathered = np.zeros(len(windows), bool)
    if scaled is not None:
        height, width = scaled.shape
        gathered = (
            (np.abs(origins - at) < 1e-6).all(axis=1)
            & (origins >= 0).all(axis=1)
            & (at[:, 0] + size <= width)
            & (at[:, 1] + size <= height)
        )
    rest = np.flatnonzero(~gathered)
    cut = dict(zip(rest, scaled_windows([windows[i] for i in rest], factor, rgb.shape, photo_size), strict=True))

    def inputs(chosen: np.ndarray) -> np.ndarray:
        """The windows ``chosen`` as the model reads them, (n, 3, size, size)."""
        out = np.empty((len(chosen), 3, size, size), np.uint8)
        on_grid = gathered[chosen]
        if on_grid.any():
            out[on_grid] = next(_gathered(scaled, at[chosen[on_grid]], size, len(chosen)))  # type: ignore[arg-type]
        if not on_grid.all():
            off = [cut[i] for i in chosen[~on_grid]]
            out[~on_grid] = next(_resized(rgb, off, size, len(off), min_filter_px))
        return out

    # The line check looks for lines around the windows called crack while the others are classified.
    search = LineSearch(scaled.planes, origins, size, scaled.ready) if check and scaled is not None else None

    def classify(chosen: npt.NDArray[np.intp], batches: Iterator[np.ndarray]) -> None:
        """Classify the windows ``chosen`` (indices), coming as ``batches``, into ``probs``."""
        start = 0
        for batch in batches:
            rows = chosen[start : start + len(batch)]
            probs[rows] = predictor.predict(batch)
            start += len(batch)
            if search is not None and check is not None:
                search.scored(rows, probs[rows, check.crack] >= check.threshold)

    with scaled or nullcontext(), search or nullcontext():
        if gathered.any():
            classify(np.flatnonzero(gathered), _gathered(scaled, at[gathered], size, batch))  # type: ignore[arg-type]
        if len(rest):
            classify(rest, _resized(rgb, list(cut.values()), size, batch, min_filter_px))
        if check is not None:
            called = np.flatnonzero(probs[:, check.crack] >= check.threshold)
            photo_lines = search.lines() if search is not None else None
            probs = checked_probs(predictor, probs, check, inputs, photo_lines, batch)
            cleared[called] = probs[called, check.crack] < check.threshold
    return probs, cleared


class ModelScale:
    """``rgb`` after a minimum filter, shrunk by ``relative`` (area averaging; 1: as it is), as colour
    planes (3, H', W') filled on ``pool`` (None: a thread of its own), ``step``-multiple bands of about
    ``BAND_ROWS`` rows at a time; ``ready(rows)`` waits for the first ``rows`` rows of the planes.  Leaving
    its ``with`` block drops the bands not yet begun and waits for those being made."""

    def __init__(
        self, rgb: np.ndarray, relative: float, step: int, min_filter_px: int, pool: Executor | None = None
    ) -> None:
        self._rgb, self._relative, self._min_filter_px = rgb, relative, min_filter_px
        height, width = rgb.shape[:2]
        self.shape = (_scaled_length(height, relative), _scaled_length(width, relative))
        self.planes = np.empty((3, *self.shape), np.uint8)
        band = step * max(1, round(BAND_ROWS / step))
        self._own_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-scale") if pool is None else None
        submit = (pool or self._own_pool).submit  # type: ignore[union-attr]
        self.bands: list[tuple[int, Future]] = []  # (scaled rows made once the band is, its job), in order
        for start in range(0, height, band):
            stop = min(height, start + band)
            self.bands.append((_scaled_length(stop, relative), submit(self._make, start, stop)))

    def _make(self, start: int, stop: int) -> None:
        """Rows ``start:stop`` of the photo, filtered (with the rows around them the filter reaches) and
        shrunk into their rows of the planes."""
        halo = self._min_filter_px // 2
        first, last = max(0, start - halo), min(self._rgb.shape[0], stop + halo)
        band = keep_thin_dark(self._rgb[first:last], self._min_filter_px)[start - first : stop - first]
        if self._relative < 1:
            # fx/fy rather than a size: the mapping is then exactly ``relative``, so window origins on whole
            # pixels at that scale cover the same source pixels as the windows shrunk alone.
            band = cv2.resize(band, None, fx=self._relative, fy=self._relative, interpolation=cv2.INTER_AREA)
        row = _scaled_length(start, self._relative)
        rows = min(band.shape[0], self.shape[0] - row)  # the last band's rounding, as the whole photo's
        self.planes[:, row : row + rows] = band[:rows].transpose(2, 0, 1)

    def ready(self, rows: int) -> None:
        for end, job in self.bands:
            job.result()
            if end >= rows:
                return

    def __enter__(self) -> ModelScale:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        for _, job in self.bands:
            job.cancel()
        wait([job for _, job in self.bands])
        if self._own_pool is not None:
            self._own_pool.shutdown()


def _scaled_length(length: int, relative: float) -> int:
    """Pixels along an axis of ``length`` after OpenCV's resize by ``relative`` (it rounds to nearest)."""
    return length if relative == 1 else int(np.rint(length * relative))


def scaled_windows(
    windows: list[Window], factor: float, shape: tuple[int, ...], photo_size: tuple[int, int]
) -> list[Window]:
    """``windows`` (photo pixels) on the photo scaled by ``factor`` to ``shape``: a window inside the photo
    stays inside the image despite rounding; one reaching out of it (the pad rule) still does, to be
    filled by reflection."""
    height, width = shape[:2]
    scaled = []
    for window in windows:
        size = max(1, round(window.size * factor))
        x, y = round(window.x * factor), round(window.y * factor)
        if window.x + window.size <= photo_size[0]:
            x = min(x, max(0, width - size))
        if window.y + window.size <= photo_size[1]:
            y = min(y, max(0, height - size))
        scaled.append(Window(x, y, size))
    return scaled


def _gathered(scaled: ModelScale, at: np.ndarray, size: int, batch: int) -> Iterator[np.ndarray]:
    """Contiguous (n, 3, size, size) batches of the windows at ``at`` (x, y, row by row) of ``scaled``,
    each as soon as its rows are made.

    Gathered plane by plane (every batch is then written in the layout ONNX Runtime reads in one copy;
    gathering from interleaved RGB and then making it contiguous took four times as long).
    """
    views = [np.lib.stride_tricks.sliding_window_view(plane, (size, size)) for plane in scaled.planes]
    for start in range(0, len(at), batch):
        chunk = at[start : start + batch]
        scaled.ready(int(chunk[:, 1].max()) + size)
        out = np.empty((len(chunk), 3, size, size), np.uint8)
        for c, view in enumerate(views):
            out[:, c] = view[chunk[:, 1], chunk[:, 0]]
        yield out


def _resized(rgb: np.ndarray, windows: list[Window], size: int, batch: int, min_filter_px: int) -> Iterator[np.ndarray]:
    """(n, 3, size, size) batches of ``windows`` cut from ``rgb`` after the minimum filter and resized
    one by one."""
    buffer = np.empty((min(batch, len(windows)), size, size, 3), np.uint8)
    for start in range(0, len(windows), batch):
        chunk = windows[start : start + batch]
        for i, window in enumerate(chunk):
            buffer[i] = fit_patch(filtered_crop(rgb, window, min_filter_px), size)
        yield buffer[: len(chunk)].transpose(0, 3, 1, 2)


def filtered_crop(rgb: np.ndarray, window: Window, min_filter_px: int) -> np.ndarray:
    """``crop(keep_thin_dark(rgb), window)`` without filtering the whole photo: the window's part inside
    the photo is filtered with the pixels around it that the filter reaches."""
    if min_filter_px <= 1:
        return crop(rgb, window)
    height, width = rgb.shape[:2]
    halo = min_filter_px // 2
    x0, y0, x1, y1 = window.box
    left, top = max(0, max(x0, 0) - halo), max(0, max(y0, 0) - halo)
    right, bottom = min(width, min(x1, width) + halo), min(height, min(y1, height) + halo)
    region = keep_thin_dark(rgb[top:bottom, left:right], min_filter_px)
    return crop(region, Window(x0 - left, y0 - top, window.size))
