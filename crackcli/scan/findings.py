"""From window probabilities to findings: a crack heatmap, crack regions and a per-photo summary.

A region is a connected group of crack windows (crack probability ≥ threshold) whose boxes overlap or
touch; its box is the union of theirs, so it is in photo pixels and never larger than the photo.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from crackcli.data.tiling import Window


@dataclass(frozen=True)
class Region:
    bbox: tuple[int, int, int, int]  # x0, y0, x1, y1 in photo pixels, end-exclusive
    max_prob: float
    windows: int

    def as_dict(self) -> dict:
        return {"bbox": list(self.bbox), "max_prob": round(self.max_prob, 4), "windows": self.windows}


def heat_cell(patch: int, stride: int) -> int:
    """Heatmap resolution in photo pixels: a quarter of the finer of patch and stride."""
    return max(1, min(patch, stride) // 4)


def _cell_boxes(windows: list[Window], cell: int, width: int, height: int) -> np.ndarray:
    """Window boxes clipped to the photo, in heatmap cells (x0, y0, x1, y1), at least one cell each."""
    boxes = np.array([w.box for w in windows], np.int64).reshape(-1, 4)
    boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, width)
    boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, height)
    cells = boxes // cell
    cells[:, 2:] = np.maximum(-(-boxes[:, 2:] // cell), cells[:, :2] + 1)
    return cells


def _paint(shape: tuple[int, int], cells: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Sum of ``values`` over the boxes ``cells`` (vectorised with a 2-D difference array)."""
    diff = np.zeros((shape[0] + 1, shape[1] + 1), np.float64)
    x0, y0, x1, y1 = cells.T
    np.add.at(diff, (y0, x0), values)
    np.add.at(diff, (y0, x1), -values)
    np.add.at(diff, (y1, x0), -values)
    np.add.at(diff, (y1, x1), values)
    return diff.cumsum(0).cumsum(1)[: shape[0], : shape[1]]


def crack_heatmap(windows: list[Window], crack_probs: np.ndarray, width: int, height: int, cell: int) -> np.ndarray:
    """(ceil(H/cell), ceil(W/cell)) float32: the mean crack probability of the windows covering each cell."""
    shape = (-(-height // cell), -(-width // cell))
    if not windows:
        return np.zeros(shape, np.float32)
    cells = _cell_boxes(windows, cell, width, height)
    total = _paint(shape, cells, crack_probs.astype(np.float64))
    count = _paint(shape, cells, np.ones(len(windows)))
    return np.divide(total, count, out=np.zeros(shape), where=count > 0.5).astype(np.float32)


def crack_regions(
    windows: list[Window], crack_probs: np.ndarray, threshold: float, width: int, height: int, cell: int
) -> tuple[list[Region], np.ndarray]:
    """Connected groups of crack windows, largest first, and the crack-window mask on the heatmap grid."""
    shape = (-(-height // cell), -(-width // cell))
    hits = np.flatnonzero(crack_probs >= threshold)
    if not len(hits):
        return [], np.zeros(shape, bool)
    cells = _cell_boxes([windows[i] for i in hits], cell, width, height)
    mask = _paint(shape, cells, np.ones(len(hits))) > 0.5
    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    owner = labels[cells[:, 1], cells[:, 0]]  # every cell of a painted box carries its component's label
    regions = []
    for label in range(1, count):
        members = hits[owner == label]
        boxes = np.array([windows[i].box for i in members])
        bbox = (
            max(0, int(boxes[:, 0].min())),
            max(0, int(boxes[:, 1].min())),
            min(width, int(boxes[:, 2].max())),
            min(height, int(boxes[:, 3].max())),
        )
        regions.append(Region(bbox, float(crack_probs[members].max()), len(members)))
    regions.sort(key=lambda r: (-r.windows, -r.max_prob))
    return regions, mask


def summarize(crack_probs: np.ndarray, threshold: float, regions: list[Region]) -> dict:
    crack_windows = int((crack_probs >= threshold).sum())
    return {
        "windows": int(len(crack_probs)),
        "crack_windows": crack_windows,
        "crack_fraction": round(crack_windows / len(crack_probs), 6) if len(crack_probs) else 0.0,
        "max_crack_prob": round(float(crack_probs.max()), 4) if len(crack_probs) else 0.0,
        "regions": [region.as_dict() for region in regions],
    }
