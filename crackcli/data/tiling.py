"""Window geometry shared by `prepare` and `scan`: the same size and stride give the same windows.

Edge rules for the part of a photo that a whole number of strides does not reach:

- ``shift``: the last window is moved back so it ends exactly at the border (windows stay inside the
  photo and every pixel is covered); a photo smaller than a window has no windows.
- ``pad``: windows keep the stride and the last one may stick out; the outside is filled by
  reflection when pixels are read (``crop``).  Every pixel is covered.
- ``drop``: only whole windows at the stride; a remainder narrower than a stride is left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

EDGE_RULES = ("shift", "pad", "drop")
MAX_WINDOW = 8192  # a window is shrunk to a model's input (about 100 px): a larger one sees nothing more


@dataclass(frozen=True)
class Window:
    x: int
    y: int
    size: int

    @property
    def box(self) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1), end-exclusive."""
        return self.x, self.y, self.x + self.size, self.y + self.size


def axis_origins(length: int, size: int, stride: int, edge: str) -> list[int]:
    """Window starts along one axis of ``length`` pixels."""
    if size <= 0 or stride <= 0:
        raise ValueError("window size and stride must be positive")
    if edge not in EDGE_RULES:
        raise ValueError(f"unknown edge rule '{edge}': choose one of {', '.join(EDGE_RULES)}")
    if edge == "pad":
        # Stride on until a window reaches the border; every window starts inside the photo.
        origins = [0]
        while origins[-1] + size < length and origins[-1] + stride < length:
            origins.append(origins[-1] + stride)
        return origins
    if length < size:
        return []
    origins = list(range(0, length - size + 1, stride))
    if edge == "shift" and origins[-1] + size < length:
        origins.append(length - size)
    return origins


def grid(width: int, height: int, size: int, stride: int | None = None, edge: str = "shift") -> list[Window]:
    """All windows over a ``width``×``height`` photo, row by row."""
    stride = stride or size
    xs = axis_origins(width, size, stride, edge)
    ys = axis_origins(height, size, stride, edge)
    return [Window(x, y, size) for y in ys for x in xs]


def crop(image: np.ndarray, window: Window) -> np.ndarray:
    """The pixels under ``window``; parts outside the photo are filled by reflection (``pad`` rule)."""
    height, width = image.shape[:2]
    x0, y0, x1, y1 = window.box
    inside = image[max(y0, 0) : min(y1, height), max(x0, 0) : min(x1, width)]
    if inside.shape[0] == window.size and inside.shape[1] == window.size:
        return inside
    return cv2.copyMakeBorder(
        np.ascontiguousarray(inside),
        top=max(0, -y0),
        bottom=max(0, y1 - height),
        left=max(0, -x0),
        right=max(0, x1 - width),
        borderType=cv2.BORDER_REFLECT_101,
    )
