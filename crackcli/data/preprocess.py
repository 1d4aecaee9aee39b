"""The one place where pixels become model input, shared by training, evaluation, export checks and scanning.

Models take RGB batches of shape (N, 3, S, S) with values 0..255 (uint8 or float) and normalise inside
the graph (``models.CrackNet``), so every caller only has to bring patches to the model's size, after
the model's minimum filter (``ModelMeta.min_filter_px``) where it has one.
"""

from __future__ import annotations

import cv2
import numpy as np


def keep_thin_dark(rgb: np.ndarray, min_filter_px: int) -> np.ndarray:
    """``rgb`` after a ``min_filter_px``-square grey-level minimum (erosion), per channel; itself at 1.

    Shrinking by area averaging fades a crack thinner than the shrink factor into the surface around it
    (a 1 px crack keeps under half its darkness at 224 → 96 px); widened first, it stays as dark.
    """
    if min_filter_px <= 1:
        return rgb
    return cv2.erode(rgb, np.ones((min_filter_px, min_filter_px), np.uint8))


def fit_patch(rgb: np.ndarray, size: int, min_filter_px: int = 1) -> np.ndarray:
    """An (H, W, 3) uint8 patch resized to (size, size, 3) after the model's minimum filter: area
    averaging to shrink, bilinear to enlarge."""
    rgb = keep_thin_dark(rgb, min_filter_px)
    height, width = rgb.shape[:2]
    if (height, width) == (size, size):
        return rgb
    shrinking = height * width > size * size
    return cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
