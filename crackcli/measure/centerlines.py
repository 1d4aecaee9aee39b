"""Centre lines of crack pixels: skeleton, traced into polylines, with the crack's width along them.

The skeleton (scikit-image's thinning) is walked pixel to pixel between its ends and junctions; each
walk becomes a polyline (Douglas-Peucker to within a pixel), whose length is the crack's length there.
The width along a walk is crack area per length: every crack pixel is given to its nearest skeleton
pixel, and over a few skeleton pixels either side the pixels given divided by the length walked is the
width there.  Unlike twice the distance to the edge, this does not depend on the crack's angle to the
pixel grid (at 30° a 3 px crack's distance transform says 1.8 or 3).  Spurs shorter than the crack is
wide at their junction are thinning artefacts of wide cracks and are dropped, as are the one-step
links between the pixels of a junction.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# The eight neighbours of a pixel, (dy, dx).
_STEPS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))
SIMPLIFY_PX = 1.0  # the polylines keep to within a pixel of the skeleton
WIDTH_SPAN = 3  # skeleton pixels either side over which a width is measured


@dataclass(frozen=True)
class CenterLine:
    points: np.ndarray  # (K, 2) float64 x, y in photo pixels, simplified
    length_px: float
    widths_px: np.ndarray  # the width at each skeleton pixel along it
    pixels: np.ndarray  # (N, 2) int64 x, y of those skeleton pixels, in photo pixels

    @property
    def max_width_px(self) -> float:
        return float(self.widths_px.max())


def width_map(mask: np.ndarray) -> np.ndarray:
    """float32 ``2·d − 1`` at every crack pixel, ``d`` its distance to the nearest non-crack pixel centre (the
    width of the crack if the pixel is on its centre line, exact along the pixel grid); 0 elsewhere."""
    distance = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return np.where(mask, np.maximum(2 * distance - 1, 1), 0).astype(np.float32)


def skeleton(mask: np.ndarray) -> np.ndarray:
    from skimage.morphology import skeletonize  # 0.4 s of imports that only tracing needs

    return skeletonize(mask.astype(bool))


def center_lines(mask: np.ndarray, origin: tuple[int, int] = (0, 0)) -> list[CenterLine]:
    """The centre lines of the crack pixels of ``mask`` (bool), in the coordinates of a photo in which
    ``mask``'s top-left pixel is at ``origin`` (x, y)."""
    thin = skeleton(mask)
    area = _area_per_skeleton_pixel(mask, thin)
    edge_widths = width_map(mask)
    half_widths = edge_widths / 2
    paths = _prune_spurs(_walk(thin), edge_widths)
    lines = []
    for path in paths:
        ys, xs = path[:, 0], path[:, 1]
        points = np.stack([xs, ys], axis=1).astype(np.float32)
        simplified = cv2.approxPolyDP(points.reshape(-1, 1, 2), SIMPLIFY_PX, False).reshape(-1, 2)
        if len(simplified) < 2:  # a single pixel: a dot, no line
            continue
        length = float(np.linalg.norm(np.diff(simplified.astype(np.float64), axis=0), axis=1).sum())
        widths = _widths_along(path, area, half_widths[ys[[0, -1]], xs[[0, -1]]])
        pixels = np.stack([xs, ys], axis=1) + origin
        lines.append(CenterLine(simplified.astype(np.float64) + origin, length, widths, pixels))
    return lines


def _area_per_skeleton_pixel(mask: np.ndarray, thin: np.ndarray) -> np.ndarray:
    """For every pixel of the skeleton, how many crack pixels are nearer to it than to any other (else 0)."""
    if not thin.any():
        return np.zeros(mask.shape, np.float32)
    _, nearest = cv2.distanceTransformWithLabels(
        np.where(thin, 0, 255).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_5, labelType=cv2.DIST_LABEL_PIXEL
    )
    counts = np.bincount(nearest[mask.astype(bool)], minlength=int(nearest.max()) + 1).astype(np.float32)
    return np.where(thin, counts[nearest], 0).astype(np.float32)


def _widths_along(path: np.ndarray, area: np.ndarray, end_reach: np.ndarray) -> np.ndarray:
    """The width at each pixel of a path: the crack pixels given to the path's pixels within WIDTH_SPAN
    of it, over the length of path they span; the end pixels also span ``end_reach`` beyond themselves
    (thinning stops about half a width short of a crack's tip)."""
    given = area[path[:, 0], path[:, 1]].astype(np.float64)
    if len(path) == 1:
        return np.maximum(given / (1 + 2 * end_reach[0]), 1).astype(np.float32)
    steps = np.linalg.norm(np.diff(path.astype(np.float64), axis=0), axis=1)
    # each pixel stands for half the step before it and half the step after it
    own = np.concatenate([[steps[0] / 2], (steps[:-1] + steps[1:]) / 2, [steps[-1] / 2]])
    own[[0, -1]] += end_reach
    return np.maximum(_window_sums(given) / _window_sums(own), 1).astype(np.float32)


def _window_sums(values: np.ndarray) -> np.ndarray:
    """At each index, the sum of ``values`` within WIDTH_SPAN of it (fewer at the ends)."""
    total = np.concatenate([[0.0], np.cumsum(values)])
    index = np.arange(len(values))
    return total[np.minimum(index + WIDTH_SPAN + 1, len(values))] - total[np.maximum(index - WIDTH_SPAN, 0)]


def _neighbours(thin: np.ndarray) -> tuple[np.ndarray, list[list[int]]]:
    """The skeleton's pixels (N, 2) as (y, x), and each one's neighbouring pixel indices."""
    pixels = np.argwhere(thin)
    index = np.full(thin.shape, -1, np.int64)
    index[pixels[:, 0], pixels[:, 1]] = np.arange(len(pixels))
    padded = np.pad(index, 1, constant_values=-1)
    around = np.stack([padded[1 + dy + pixels[:, 0], 1 + dx + pixels[:, 1]] for dy, dx in _STEPS], axis=1)
    return pixels, [[int(n) for n in row if n >= 0] for row in around]


def _walk(thin: np.ndarray) -> list[np.ndarray]:
    """Pixel paths (K, 2) as (y, x) covering every skeleton link once: from ends and junctions to the
    next end or junction, then loops."""
    pixels, neighbours = _neighbours(thin)
    degree = np.array([len(n) for n in neighbours], np.int64)
    used: set[tuple[int, int]] = set()  # links walked, as (smaller, larger) pixel index
    paths: list[np.ndarray] = []

    def link(a: int, b: int) -> tuple[int, int]:
        return (a, b) if a < b else (b, a)

    def follow(start: int, first: int) -> list[int]:
        path, previous, current = [start], start, first
        used.add(link(start, first))
        while True:
            path.append(current)
            if degree[current] != 2 or current == start:
                return path
            onward = [n for n in neighbours[current] if n != previous and link(n, current) not in used]
            if not onward:
                return path
            previous, current = current, onward[0]
            used.add(link(previous, current))

    for node in np.flatnonzero(degree != 2):
        for first in neighbours[node]:
            if link(int(node), first) not in used:
                paths.append(pixels[follow(int(node), first)])
    for start in np.flatnonzero(degree == 2):  # what is left is loops of degree-2 pixels
        for first in neighbours[start]:
            if link(int(start), first) not in used:
                paths.append(pixels[follow(int(start), first)])
    paths.extend(pixels[[i]] for i in np.flatnonzero(degree == 0))
    return paths


def _prune_spurs(paths: list[np.ndarray], widths: np.ndarray) -> list[np.ndarray]:
    """Drop the paths that run from a free end to a junction and are shorter than the crack is wide there."""
    ends: dict[tuple[int, int], int] = {}
    for path in paths:
        for y, x in (path[0], path[-1]):
            ends[(int(y), int(x))] = ends.get((int(y), int(x)), 0) + 1

    def free(point: np.ndarray) -> bool:
        return ends[(int(point[0]), int(point[1]))] == 1

    kept = []
    for path in paths:
        head, tail = free(path[0]), free(path[-1])
        if head != tail:  # one free end, one junction
            junction = path[-1] if head else path[0]
            if len(path) <= widths[junction[0], junction[1]]:
                continue
        elif not head and len(path) == 2:
            continue  # two touching pixels of one junction, not a stretch of crack
        kept.append(path)
    return kept
