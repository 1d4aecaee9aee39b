"""Patch mode: every window cut, brought to the model's input size and classified, as training saw patches.

Resizing each of thousands of overlapping windows costs more than the model itself on a small network.
So the photo is shrunk once to the model's scale (area averaging at exactly that scale, as
``fit_patch`` shrinks a window), and every window that falls on that image's pixel grid is taken from
it as a view: the same pixels as shrinking the window alone, gathered straight into the model's
(N, 3, S, S) layout.  The few that do not fall on the grid (a shifted last row or column) are resized
one by one, as before.  Enlarging is always per window: a whole photo enlarged would not fit in memory.
"""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np

from crackcli.data.preprocess import fit_patch
from crackcli.data.tiling import Window, crop
from crackcli.model.predictors import Predictor


def patch_probs(
    predictor: Predictor, rgb: np.ndarray, photo_size: tuple[int, int], windows: list[Window], batch: int
) -> np.ndarray:
    """Class probabilities (len(windows), C) of ``windows`` (photo pixels, one size) of a photo of
    ``photo_size`` whose pixels are ``rgb`` (the photo, or a reduced decode of it)."""
    size = predictor.meta.image_size
    probs = np.empty((len(windows), len(predictor.meta.classes)), np.float32)
    if not windows:
        return probs
    side = windows[0].size
    pixels, factor = model_scale(rgb, photo_size, size / side)
    origins = np.array([(w.x, w.y) for w in windows], np.float64)
    at = np.rint(origins * factor).astype(np.intp)
    gathered = (
        (np.abs(origins * factor - at) < 1e-6).all(axis=1)
        & (abs(side * factor - size) < 1e-6)
        & (origins >= 0).all(axis=1)
        & (at[:, 0] + size <= pixels.shape[1])
        & (at[:, 1] + size <= pixels.shape[0])
    )
    if gathered.any():
        probs[gathered] = _classify(predictor, _gathered(pixels, at[gathered], size, batch))
    rest = np.flatnonzero(~gathered)
    if len(rest):
        scaled = scaled_windows([windows[i] for i in rest], rgb.shape[1] / photo_size[0], rgb.shape, photo_size)
        probs[rest] = _classify(predictor, _resized(rgb, scaled, size, batch))
    return probs


def model_scale(rgb: np.ndarray, photo_size: tuple[int, int], scale: float) -> tuple[np.ndarray, float]:
    """The photo at ``scale`` pixels per photo pixel where that shrinks ``rgb`` (else ``rgb`` itself), and
    the pixels per photo pixel of what is returned."""
    factor = rgb.shape[1] / photo_size[0]  # below 1 for a reduced decode
    relative = scale / factor
    if relative >= 1 or min(rgb.shape[:2]) * relative < 1:  # enlarging, or a sliver that would vanish
        return rgb, factor
    # fx/fy rather than a size: the mapping is then exactly ``relative``, so window origins on whole
    # pixels at that scale cover the same source pixels as the windows shrunk alone.
    return cv2.resize(rgb, None, fx=relative, fy=relative, interpolation=cv2.INTER_AREA), scale


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


def _gathered(pixels: np.ndarray, at: np.ndarray, size: int, batch: int) -> Iterator[np.ndarray]:
    """Contiguous (n, 3, size, size) batches of the windows at ``at`` (x, y) of ``pixels``.

    Gathered plane by plane from the photo split into colour planes once, so every batch is written in
    the layout ONNX Runtime reads in one copy (gathering from interleaved RGB and then making it
    contiguous took four times as long).
    """
    planes = [np.ascontiguousarray(pixels[:, :, c]) for c in range(3)]
    views = [np.lib.stride_tricks.sliding_window_view(plane, (size, size)) for plane in planes]  # (H', W', S, S)
    for start in range(0, len(at), batch):
        chunk = at[start : start + batch]
        out = np.empty((len(chunk), 3, size, size), np.uint8)
        for c, view in enumerate(views):
            out[:, c] = view[chunk[:, 1], chunk[:, 0]]
        yield out


def _resized(rgb: np.ndarray, windows: list[Window], size: int, batch: int) -> Iterator[np.ndarray]:
    """(n, 3, size, size) batches of ``windows`` cut from ``rgb`` and resized one by one."""
    buffer = np.empty((min(batch, len(windows)), size, size, 3), np.uint8)
    for start in range(0, len(windows), batch):
        chunk = windows[start : start + batch]
        for i, window in enumerate(chunk):
            buffer[i] = fit_patch(crop(rgb, window), size)
        yield buffer[: len(chunk)].transpose(0, 3, 1, 2)


def _classify(predictor: Predictor, batches: Iterator[np.ndarray]) -> np.ndarray:
    return np.concatenate([predictor.predict(batch) for batch in batches])
