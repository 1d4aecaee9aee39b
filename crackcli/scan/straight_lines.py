"""Long straight lines taken out of the windows called crack, which are then classified again.

Formwork and planking joints, expansion joints, the edges of road paint and of kerbs are thin, dark (or
light) and straight, and a texture classifier that finds thin cracks calls them crack: the default
model called two thirds of the windows of drone photos that hold a joint and no crack crack.  A crack
is almost never straight over most of a window.  So each window called crack is looked at again, as
the model sees it (its input, after the model's minimum filter and shrink): lines darker or lighter
than their surroundings (top-hats, thresholded at the window's own noise level) that are straight
(a probabilistic Hough transform) over at least ``MIN_LENGTH`` of the window, and as even as a ruled
line (centre and width barely moving along it), are painted out (OpenCV's inpainting from the pixels
beside them) and the window is classified again.  Its crack probability is
the lower of the two: what is left of a crack beside or across a joint is still found; a crack that
runs straight along most of a window, or along a joint, is not.

All sizes are shares of the model's input side, so the check sees a window as the model does whatever
the photo's resolution.  Its settings were chosen on the field selection sets and ccic/val
(docs/BENCHMARKS.md, "The line check").
"""

from __future__ import annotations

import math
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


@dataclass(frozen=True)
class LineCheck:
    """Windows whose class ``crack`` (an index of the model's classes) scores at least ``threshold`` are
    checked for straight lines."""

    crack: int
    threshold: float


def line_segments(gray: np.ndarray) -> np.ndarray:
    """(K, 4) x0, y0, x1, y1 of the long straight lines of a grey window (uint8, square)."""
    side = gray.shape[0]
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (max(3, round(TOP_HAT * side)) | 1,) * 2)
    length = max(8, round(MIN_LENGTH * side))
    found = []
    for operation in (cv2.MORPH_BLACKHAT, cv2.MORPH_TOPHAT):  # dark grooves, then light ridges
        hat = cv2.morphologyEx(gray, operation, kernel, borderType=cv2.BORDER_REPLICATE).astype(np.float32)
        median = float(np.median(hat))
        spread = MAD_TO_SIGMA * float(np.median(np.abs(hat - median))) + 1e-3
        marked = hat > median + NOISE_LEVELS * spread
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


def erase_lines(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The windows of ``batch`` ((n, 3, S, S) uint8) that hold long straight lines, with the lines painted
    out, and their indices in ``batch``."""
    erased, which = [], []
    for i, window in enumerate(batch):
        rgb = np.ascontiguousarray(window.transpose(1, 2, 0))
        segments = line_segments(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
        if len(segments):
            erased.append(without_lines(rgb, segments))
            which.append(i)
    side = batch.shape[-1]
    return np.stack(erased) if erased else np.zeros((0, 3, side, side), np.uint8), np.array(which, np.intp)


def checked_probs(predictor: Predictor, batch: np.ndarray, probs: np.ndarray, check: LineCheck) -> np.ndarray:
    """``probs`` of ``batch`` (as ``predictor`` gave them) after the line check: a window called crack that
    holds long straight lines takes the probabilities of its classification without them where its crack
    probability is then lower."""
    called = np.flatnonzero(probs[:, check.crack] >= check.threshold)
    if not len(called):
        return probs
    erased, which = erase_lines(batch[called])
    if not len(which):
        return probs
    again = predictor.predict(erased)
    rows = called[which]
    lower = again[:, check.crack] < probs[rows, check.crack]
    probs[rows[lower]] = again[lower]
    return probs
