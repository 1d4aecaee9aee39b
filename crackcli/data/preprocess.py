"""The one place where pixels become model input, shared by training, evaluation, export checks and scanning.

Models take RGB batches of shape (N, 3, S, S) with values 0..255 (uint8 or float) and normalise inside
the graph (``models.CrackNet``), so every caller only has to bring patches to the model's size.
"""

from __future__ import annotations

import cv2
import numpy as np


def fit_patch(rgb: np.ndarray, size: int) -> np.ndarray:
    """An (H, W, 3) uint8 patch resized to (size, size, 3): area averaging to shrink, bilinear to enlarge."""
    height, width = rgb.shape[:2]
    if (height, width) == (size, size):
        return rgb
    shrinking = height * width > size * size
    return cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
