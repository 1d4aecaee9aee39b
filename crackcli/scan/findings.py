"""From window probabilities to findings: a crack heatmap, crack regions and a per-photo summary.

A region is a group of crack windows (crack probability ≥ threshold) whose tiles touch, a window's tile
being the central stride × stride part of it that it shares with no other window: with overlapping
windows a region is finer than a window.  A group longer than the cap is cut into parts, so a crack
across the whole photo is several regions along it, each a place to look at.
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
    windows: int  # crack windows whose tiles make it up
    mean_prob: float
    area: int  # photo pixels² its tiles cover

    def as_dict(self) -> dict:
        return {
            "bbox": list(self.bbox),
            "area": self.area,
            "max_prob": round(self.max_prob, 4),
            "mean_prob": round(self.mean_prob, 4),
            "windows": self.windows,
        }


def region_max_side(patch: int) -> int:
    """The longest side of a region, in photo pixels: two windows, a close-up of the place to look at."""
    return 2 * patch


def heat_cell(patch: int, stride: int) -> int:
    """Heatmap resolution in photo pixels: a quarter of the finer of patch and stride."""
    return max(1, min(patch, stride) // 4)


def window_cells(windows: list[Window], cell: int, width: int, height: int) -> np.ndarray:
    """Window boxes clipped to the photo, in cells of ``cell`` photo pixels (x0, y0, x1, y1), at least one each."""
    boxes = np.array([w.box for w in windows], np.int64).reshape(-1, 4)
    boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, width)
    boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, height)
    return _cell_boxes_of(boxes, cell)


def paint_cells(shape: tuple[int, int], cells: np.ndarray, values: np.ndarray) -> np.ndarray:
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
    cells = window_cells(windows, cell, width, height)
    total = paint_cells(shape, cells, crack_probs.astype(np.float64))
    count = paint_cells(shape, cells, np.ones(len(windows)))
    return np.divide(total, count, out=np.zeros(shape), where=count > 0.5).astype(np.float32)


def _tiles(windows: list[Window], stride: int, width: int, height: int) -> np.ndarray:
    """Each window's own tile (x0, y0, x1, y1): its central stride × stride part, which no other window
    of a regular grid shares, reaching out to the photo's edge where the window does; the tiles of a
    grid cover the photo, and overlapping windows say where in them the crack is, to within a stride."""
    boxes = np.array([w.box for w in windows], np.int64).reshape(-1, 4)
    margin = np.maximum(0, (boxes[:, 2] - boxes[:, 0] - stride) // 2)
    tiles = boxes + margin[:, None] * np.array([1, 1, -1, -1])
    tiles[:, :2] = np.where(boxes[:, :2] <= 0, 0, tiles[:, :2])
    tiles[:, 2] = np.where(boxes[:, 2] >= width, width, tiles[:, 2])
    tiles[:, 3] = np.where(boxes[:, 3] >= height, height, tiles[:, 3])
    return tiles


def crack_regions(
    windows: list[Window],
    crack_probs: np.ndarray,
    threshold: float,
    width: int,
    height: int,
    cell: int,
    stride: int,
    max_side: int,
) -> tuple[list[Region], np.ndarray]:
    """Groups of crack windows whose tiles (see ``_tiles``) touch, highest score first, and the tiles'
    mask on the heatmap grid.  A group longer than ``max_side`` is cut into a grid of parts no longer
    than that, each taking the tiles whose centres fall in it (so a part's box may reach half a tile
    beyond)."""
    shape = (-(-height // cell), -(-width // cell))
    hits = np.flatnonzero(crack_probs >= threshold)
    if not len(hits):
        return [], np.zeros(shape, bool)
    tiles = _tiles([windows[i] for i in hits], stride, width, height)
    cells = _cell_boxes_of(tiles, cell)
    mask = paint_cells(shape, cells, np.ones(len(hits))) > 0.5
    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    owner = labels[cells[:, 1], cells[:, 0]]  # every cell of a painted tile carries its component's label
    probs = crack_probs[hits]
    regions = []
    for label in range(1, count):
        members = np.flatnonzero(owner == label)
        for part in _parts(tiles[members], max_side):
            chosen = members[part]
            regions.append(_region(tiles[chosen], probs[chosen], cell))
    regions.sort(key=lambda r: (-r.max_prob, -r.windows))
    return regions, mask


def _cell_boxes_of(boxes: np.ndarray, cell: int) -> np.ndarray:
    """Photo-pixel boxes in heatmap cells, at least one cell each."""
    cells = boxes // cell
    cells[:, 2:] = np.maximum(-(-boxes[:, 2:] // cell), cells[:, :2] + 1)
    return cells


def _parts(tiles: np.ndarray, max_side: int) -> list[np.ndarray]:
    """Indices of ``tiles`` grouped by the grid cell of equal parts, none over ``max_side``, that their
    centres fall in (one group when the union already fits)."""
    x0, y0 = tiles[:, 0].min(), tiles[:, 1].min()
    span = np.array([tiles[:, 2].max() - x0, tiles[:, 3].max() - y0], np.float64)
    splits = np.maximum(1, np.ceil(span / max_side))
    if (splits == 1).all():
        return [np.arange(len(tiles))]
    centres = (tiles[:, :2] + tiles[:, 2:]) / 2 - (x0, y0)
    index = np.minimum((centres / (span / splits)).astype(np.int64), (splits - 1).astype(np.int64))
    keys = index[:, 1] * int(splits[0]) + index[:, 0]
    return [np.flatnonzero(keys == key) for key in np.unique(keys)]


def _region(tiles: np.ndarray, probs: np.ndarray, cell: int) -> Region:
    x0, y0 = int(tiles[:, 0].min()), int(tiles[:, 1].min())
    x1, y1 = int(tiles[:, 2].max()), int(tiles[:, 3].max())
    # Area of the union of the tiles, at heatmap resolution (tiles of shifted edge windows overlap).
    local = np.zeros((-(-(y1 - y0) // cell) + 1, -(-(x1 - x0) // cell) + 1), bool)
    for tx0, ty0, tx1, ty1 in (tiles - (x0, y0, x0, y0)) // cell:
        local[ty0 : max(ty1, ty0 + 1), tx0 : max(tx1, tx0 + 1)] = True
    area = min(int(local.sum()) * cell * cell, (x1 - x0) * (y1 - y0))
    return Region((x0, y0, x1, y1), float(probs.max()), len(tiles), float(probs.mean()), area)


def summarize(crack_probs: np.ndarray, threshold: float, regions: list[Region]) -> dict:
    crack_windows = int((crack_probs >= threshold).sum())
    return {
        "windows": int(len(crack_probs)),
        "crack_windows": crack_windows,
        "crack_fraction": round(crack_windows / len(crack_probs), 6) if len(crack_probs) else 0.0,
        "max_crack_prob": round(float(crack_probs.max()), 4) if len(crack_probs) else 0.0,
        "regions": [region.as_dict() for region in regions],
    }
