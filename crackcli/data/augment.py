"""Training augmentations on uint8 RGB patches, driven by an explicit random generator.

Each sample's generator is seeded from (seed, epoch, index), so an epoch's augmentations are the
same whatever the number of loader workers, and a resumed run repeats them exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

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


def _darken(rgb: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """``rgb`` darkened by ``depth`` (0: unchanged, 1: black) per pixel, as a mark in the surface would."""
    return np.clip(rgb.astype(np.float32) * (1 - depth)[..., None], 0, 255).astype(np.uint8)


def paint_hairline(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``rgb`` with a thin, jagged, dark line drawn across it from a random point of one edge.

    Sizes are those of a hairline in a 96 px patch (0.8-2 px wide), scaled to the patch size.  Lines
    are drawn with sub-pixel positions and anti-aliasing and slightly blurred, so that they look
    like a crack seen through a lens rather than a drawn stroke.
    """
    height, width = rgb.shape[:2]
    scale = max(height, width) / 96
    depth = np.zeros((height, width), np.float32)
    edge, along = int(rng.integers(4)), rng.uniform(0.15, 0.85)
    x, y = [(along * width, 0.0), (width - 1.0, along * height), (along * width, height - 1.0), (0.0, along * height)][
        edge
    ]
    heading = [math.pi / 2, math.pi, -math.pi / 2, 0.0][edge] + rng.uniform(-0.7, 0.7)  # into the patch
    line_width, step = rng.uniform(0.8, 2.0) * scale, 1.5 * scale
    for _ in range(int(rng.uniform(0.6, 1.4) * max(height, width) / step)):
        heading += rng.normal(0, 0.06)  # the course drifts slowly...
        jagged = heading + rng.normal(0, 0.5)  # ...while each step zigzags, as a fracture does
        nx, ny = x + step * math.cos(jagged), y + step * math.sin(jagged)
        if not (0 <= nx < width and 0 <= ny < height):
            break
        thickness = max(1, round(line_width * rng.uniform(0.7, 1.3)))
        # shift=2: coordinates in quarter pixels
        cv2.line(depth, (round(x * 4), round(y * 4)), (round(nx * 4), round(ny * 4)), 1.0, thickness, cv2.LINE_AA, 2)
        x, y = nx, ny
    depth = cv2.GaussianBlur(depth, (0, 0), 0.5 * scale) * rng.uniform(0.3, 0.7)
    return _darken(rgb, depth)


def paint_stains(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``rgb`` with one to three small dark blots (pits, stains), 3-12 px across at 96 px, scaled to the patch.

    Painted on clean patches that stay clean, they teach a model that learns painted hairlines that
    darkness alone is not a crack: the shape is.
    """
    height, width = rgb.shape[:2]
    scale = max(height, width) / 96
    depth = np.zeros((height, width), np.float32)
    for _ in range(int(rng.integers(1, 4))):
        centre = (float(rng.uniform(0, width)), float(rng.uniform(0, height)))
        axes = (float(rng.uniform(1.5, 6) * scale), float(rng.uniform(1.5, 6) * scale))
        cv2.ellipse(depth, (centre, (2 * axes[0], 2 * axes[1]), float(rng.uniform(0, 180))), 1.0, -1, cv2.LINE_AA)
    depth = cv2.GaussianBlur(depth, (0, 0), 0.7 * scale) * rng.uniform(0.3, 0.7)
    return _darken(rgb, depth)


@dataclass(frozen=True)
class SyntheticCracks:
    """Turn a ``share`` of the clean training patches into crack patches by painting a hairline on them.

    CCIC-like data has wide, clear cracks only; hairlines on a textured surface (road and distant
    photos) are what such a model misses.  Painting them on real clean texture teaches them without
    a single hand-labelled example, at the price of a model more ready to call any dark mark crack;
    a ``stain_share`` of other clean patches gets dark blots and stays clean, to price that back.
    """

    share: float
    clean_label: int
    crack_label: int
    stain_share: float = 0.0

    def __call__(self, rgb: np.ndarray, label: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        # No draw for crack patches: their augmentation stream stays as it is without this option.
        if label == self.clean_label:
            draw = rng.random()
            if draw < self.share:
                return paint_hairline(rgb, rng), self.crack_label
            if draw < self.share + self.stain_share:
                return paint_stains(rgb, rng), label
        return rgb, label


def synthetic_cracks_for(
    share: float, classes: tuple[str, ...], crack_class: str | None, stain_share: float = 0.0
) -> SyntheticCracks | None:
    """The painting of `synthetic_cracks` / `synthetic_stains` (shares of clean patches, checked by the
    training configuration) for these classes; None when both shares are 0."""
    if share == 0 and stain_share == 0:
        return None
    clean = "no_crack" if "no_crack" in classes else None
    if clean is None and len(classes) == 2 and crack_class in classes:
        clean = classes[1 - classes.index(crack_class)]
    if crack_class is None or crack_class not in classes or clean is None or clean == crack_class:
        raise OptionError(
            "synthetic_cracks",
            f"painting needs a crack class and a clean class named no_crack (classes: {', '.join(classes)}); "
            "rename the clean folder to no_crack or pass `crack_class`",
        )
    return SyntheticCracks(share, classes.index(clean), classes.index(crack_class), stain_share)


def build_augment(name: str) -> Augment | None:
    """The augmentation called ``name`` (one of ``AUGMENTS``); None for no augmentation."""
    if name == "paper":
        return horizontal_flip
    if name == "field":
        return field_conditions
    if name == "none":
        return None
    raise OptionError("augment", f"unknown augmentation; choose one of {', '.join(AUGMENTS)}", f"'{name}'")
