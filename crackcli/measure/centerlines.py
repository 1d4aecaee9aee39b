"""Centre lines of crack pixels: skeleton, traced into polylines, with the crack's width along them.

The skeleton (scikit-image's thinning) is walked pixel to pixel between its ends and junctions; each
walk becomes a polyline (Douglas-Peucker to within a pixel), whose length is the crack's length there.
The width at a skeleton pixel is crack area per centre-line length in a square around it that holds
the crack's cross-section (the area of a "core" of the crack pixels where one is given: those a tracer
is surest of).  Unlike twice the distance to the edge, this does not depend on the crack's angle to the
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


def edge_widths(mask: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """``2·d − 1`` at ``pixels`` ((N, 2) as y, x) of ``mask``, ``d`` the distance to the nearest non-crack
    pixel centre: the crack's width there if the pixel is on its centre line, exact along the pixel grid."""
    distance = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return np.maximum(2 * distance[pixels[:, 0], pixels[:, 1]] - 1, 1).astype(np.float32)


def load_thinning() -> None:
    """Import scikit-image's thinning (about 0.5 s, scipy included), which only tracing needs: a scan
    that traces does it on a worker thread while its first photo is scored."""
    from skimage.morphology import skeletonize  # noqa: F401


def skeleton(mask: np.ndarray) -> np.ndarray:
    from skimage.morphology import skeletonize

    return skeletonize(mask.astype(bool))


def center_lines(
    mask: np.ndarray, origin: tuple[int, int] = (0, 0), core: np.ndarray | None = None
) -> list[CenterLine]:
    """The centre lines of the crack pixels of ``mask`` (bool), in the coordinates of a photo in which
    ``mask``'s top-left pixel is at ``origin`` (x, y); widths from the pixels of ``core`` among them
    (bool, same shape; None: all of them), e.g. those a tracer is surest of.

    Each crack (connected group of pixels) is thinned and measured in its own bounding box: a long
    crack's box is a fraction of the area the cracks of a photo span together."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    lines: list[CenterLine] = []
    for label in range(1, count):
        x, y, width, height = (int(v) for v in stats[label, :4])
        alone = np.pad(labels[y : y + height, x : x + width] == label, 1)  # a background border
        measured = alone if core is None else alone & np.pad(core[y : y + height, x : x + width], 1)
        lines += _component_lines(alone, measured, (origin[0] + x - 1, origin[1] + y - 1))
    return lines


def _component_lines(mask: np.ndarray, measured: np.ndarray, origin: tuple[int, int]) -> list[CenterLine]:
    thin = skeleton(mask)
    pixels = np.argwhere(thin)  # (N, 2) y, x, in row-major order
    if not len(pixels):
        return []
    edge = edge_widths(mask, pixels)
    paths = _prune_spurs(_walk(_neighbours(pixels)), edge)
    widths = _local_widths(measured, pixels, paths, edge)
    lines = []
    for path in paths:
        ys, xs = pixels[path, 0], pixels[path, 1]
        points = np.stack([xs, ys], axis=1).astype(np.float32)
        simplified = cv2.approxPolyDP(points.reshape(-1, 1, 2), SIMPLIFY_PX, False).reshape(-1, 2)
        if len(simplified) < 2:  # a single pixel: a dot, no line
            continue
        length = float(np.linalg.norm(np.diff(simplified.astype(np.float64), axis=0), axis=1).sum())
        lines.append(
            CenterLine(simplified.astype(np.float64) + origin, length, widths[path], points.astype(np.int64) + origin)
        )
    return lines


def _local_widths(mask: np.ndarray, pixels: np.ndarray, paths: list[np.ndarray], edge: np.ndarray) -> np.ndarray:
    """The width at each skeleton pixel: crack area over centre-line length in a square around it, wide
    enough to hold the crack's cross-section and at least WIDTH_SPAN pixels either side (sums from
    integral images: a few operations per pixel of the crack's box, whatever the box's size)."""
    own = np.zeros(len(pixels))  # the centre-line length each skeleton pixel stands for
    ends = _end_counts(paths, len(pixels))
    for path in paths:
        if len(path) > 1:
            steps = np.linalg.norm(np.diff(pixels[path].astype(np.float64), axis=0), axis=1)
            halves = np.concatenate([[0.0], steps / 2]) + np.concatenate([steps / 2, [0.0]])
        else:
            halves = np.ones(1)
        own[path] = np.maximum(own[path], halves)
    # Thinning stops about half a width short of a free end: the tip's area belongs to that much more length.
    free = np.flatnonzero(ends == 1)
    own[free] += edge[free] / 2
    # Lengths in 1/16 px as uint8 (at most about 12 px a pixel): OpenCV integrates 8-bit images several
    # times faster than floating-point ones.
    length_image = np.zeros(mask.shape, np.uint8)
    length_image[pixels[:, 0], pixels[:, 1]] = np.minimum(np.round(own * 16), 255).astype(np.uint8)
    areas = cv2.integral(mask.view(np.uint8) if mask.dtype == bool else mask.astype(np.uint8), sdepth=cv2.CV_32S)
    lengths = cv2.integral(length_image, sdepth=cv2.CV_32S)
    height, width = mask.shape
    reach = np.maximum(WIDTH_SPAN, np.ceil(0.75 * edge).astype(np.int64) + 1)
    y0, y1 = np.clip(pixels[:, 0] - reach, 0, height), np.clip(pixels[:, 0] + reach + 1, 0, height)
    x0, x1 = np.clip(pixels[:, 1] - reach, 0, width), np.clip(pixels[:, 1] + reach + 1, 0, width)

    def box(sums: np.ndarray) -> np.ndarray:
        return sums[y1, x1] - sums[y0, x1] - sums[y1, x0] + sums[y0, x0]

    return np.maximum(16 * box(areas) / np.maximum(box(lengths), 1), 1).astype(np.float32)


def _neighbours(pixels: np.ndarray) -> list[list[int]]:
    """Each skeleton pixel's neighbouring pixel indices, found by their row-major positions (sorted, as
    ``argwhere`` gives them) rather than through an index image as large as the crack's bounding box."""
    row = int(pixels[:, 1].max()) + 2  # a spare column: a step left of column 0 never lands on a pixel
    positions = pixels[:, 0] * row + pixels[:, 1]
    around = np.full((len(pixels), len(_STEPS)), -1, np.int64)
    for k, (dy, dx) in enumerate(_STEPS):
        wanted = positions + dy * row + dx
        found = np.minimum(np.searchsorted(positions, wanted), len(positions) - 1)
        around[:, k] = np.where(positions[found] == wanted, found, -1)
    return [[int(n) for n in near if n >= 0] for near in around]


def _walk(neighbours: list[list[int]]) -> list[np.ndarray]:
    """Paths of skeleton pixel indices covering every link once: from ends and junctions to the next end
    or junction, then loops, then lone pixels."""
    degree = np.array([len(n) for n in neighbours], np.int64)
    used: set[tuple[int, int]] = set()  # links walked, as (smaller, larger) pixel index
    paths: list[np.ndarray] = []

    def link(a: int, b: int) -> tuple[int, int]:
        return (a, b) if a < b else (b, a)

    def follow(start: int, first: int) -> np.ndarray:
        path, previous, current = [start], start, first
        used.add(link(start, first))
        while True:
            path.append(current)
            if degree[current] != 2 or current == start:
                return np.array(path, np.int64)
            onward = [n for n in neighbours[current] if n != previous and link(n, current) not in used]
            if not onward:
                return np.array(path, np.int64)
            previous, current = current, onward[0]
            used.add(link(previous, current))

    for node in (int(n) for n in np.flatnonzero(degree != 2)):
        for first in neighbours[node]:
            if link(node, first) not in used:
                paths.append(follow(node, first))
    for start in (int(n) for n in np.flatnonzero(degree == 2)):  # what is left is loops of degree-2 pixels
        for first in neighbours[start]:
            if link(start, first) not in used:
                paths.append(follow(start, first))
    paths.extend(np.array([i], np.int64) for i in np.flatnonzero(degree == 0))
    return paths


def _end_counts(paths: list[np.ndarray], pixels: int) -> np.ndarray:
    """How many paths start or end at each skeleton pixel: 1 at a free end, more at a junction."""
    if not paths:
        return np.zeros(pixels, np.int64)
    return np.bincount(np.concatenate([path[[0, -1]] for path in paths]), minlength=pixels)


def _prune_spurs(paths: list[np.ndarray], widths: np.ndarray) -> list[np.ndarray]:
    """Drop the paths that run from a free end to a junction and are shorter than the crack is wide there
    (``widths`` by skeleton pixel index)."""
    ends = _end_counts(paths, len(widths))
    kept = []
    for path in paths:
        head, tail = ends[path[0]] == 1, ends[path[-1]] == 1
        if head != tail:  # one free end, one junction
            junction = path[-1] if head else path[0]
            if len(path) <= widths[junction]:
                continue
        elif not head and len(path) == 2:
            continue  # two touching pixels of one junction, not a stretch of crack
        kept.append(path)
    return kept
