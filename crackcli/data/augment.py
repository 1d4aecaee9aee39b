"""Training augmentations on uint8 RGB patches, driven by an explicit random generator.

Each sample's generator is seeded from (seed, epoch, index), so an epoch's augmentations are the
same whatever the number of loader workers, and a resumed run repeats them exactly.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from crackcli.errors import OptionError

Augment = Callable[[np.ndarray, np.random.Generator], np.ndarray]
AUGMENTS = ("paper", "field", "none")


def horizontal_flip(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The paper's only augmentation: a random horizontal flip."""
    return rgb[:, ::-1] if rng.random() < 0.5 else rgb


def field_conditions(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What changes between inspection photos: orientation, distance, exposure, focus and sensor noise.

    Cracks have no preferred direction, so all eight flips/rotations are fair.  Distance changes the
    apparent crack width both ways: zooming in crops at most 30% of the side so a crack crossing the
    patch stays in it; zooming out (up to 2.5×) makes cracks thinner, as in photos taken from further
    away, and fills the border by mirroring the texture.
    """
    out = np.rot90(rgb, int(rng.integers(4)))
    if rng.random() < 0.5:
        out = out[:, ::-1]
    out = change_distance(np.ascontiguousarray(out), rng)
    pixels = np.ascontiguousarray(out).astype(np.float32)
    contrast, brightness = rng.uniform(0.75, 1.25), rng.uniform(-25, 25)
    pixels = (pixels - pixels.mean()) * contrast + pixels.mean() + brightness
    pixels *= rng.uniform(0.92, 1.08, size=3).astype(np.float32)  # white balance
    if rng.random() < 0.25:
        pixels = cv2.GaussianBlur(pixels, (0, 0), rng.uniform(0.5, 1.5))
    if rng.random() < 0.25:
        pixels += rng.normal(0.0, rng.uniform(2, 8), pixels.shape).astype(np.float32)
    return np.clip(pixels, 0, 255).astype(np.uint8)


def change_distance(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Zoom in (half the time), out (three times in ten) or leave the patch as it is."""
    size = rgb.shape[0]
    draw = rng.random()
    if draw < 0.5:
        side = int(round(size * rng.uniform(0.7, 1.0)))
        x, y = (int(v) for v in rng.integers(0, size - side + 1, 2))
        return cv2.resize(
            np.ascontiguousarray(rgb[y : y + side, x : x + side]), (size, size), interpolation=cv2.INTER_LINEAR
        )
    if draw < 0.8:
        side = max(1, int(round(size / rng.uniform(1.0, 2.5))))
        small = cv2.resize(rgb, (side, side), interpolation=cv2.INTER_AREA)
        top, left = (int(v) for v in rng.integers(0, size - side + 1, 2))
        return cv2.copyMakeBorder(small, top, size - side - top, left, size - side - left, cv2.BORDER_REFLECT_101)
    return rgb


def build_augment(name: str) -> Augment | None:
    """The augmentation called ``name`` (one of ``AUGMENTS``); None for no augmentation."""
    if name == "paper":
        return horizontal_flip
    if name == "field":
        return field_conditions
    if name == "none":
        return None
    raise OptionError("augment", f"unknown augmentation; choose one of {', '.join(AUGMENTS)}", f"'{name}'")
