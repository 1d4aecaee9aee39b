"""A crack's width read across its centre line from the grey photo: its width at half its darkness.

Crack pixels say how wide a crack is only to a pixel or two, and where an extractor is unsure its band
runs wider or narrower than the crack.  The grey levels across the crack say more.  At each centre-line
pixel the photo is sampled along the line's normal (bilinear, in steps of a pixel) and the profiles of the
line's neighbouring centre-line pixels are averaged (grain and noise); the profile dips from the
surface's level (a high percentile of the profile: the crack fills less than a quarter of it) to the
crack's darkest point near the centre line, and the width is how far apart the profile crosses half that
depth on either side, found between samples.  Each line's profiles reach about twice its width either
side; further where most of them are dark to their ends (a wide crack whose crack pixels marked a narrow
band), and the widths are read a second time over the reach the first reading sets.  Where the dip is
too shallow to read, the crack pixels' width stays.

All lines of a photo are read together (a photo holds thousands of short ones): lines of one reach share
their arrays.  The settings were chosen on the selection sets' width errors (docs/BENCHMARKS.md, "Crack
traces").
"""

from __future__ import annotations

import dataclasses

import numpy as np

from crackcli.measure.centerlines import CenterLine

# What decides the widths: a traced report measured another way is made again.
METHOD = "half-depth-1"
STEP_PX = 1.0  # between samples across the crack (crossings found between them)
LEVEL = 0.5  # the share of the dip's depth at which the crack's edge is read
SURFACE_PERCENTILE = 75  # of a profile: the surface's grey level beside the crack
MIN_DEPTH = 4.0  # grey levels: a shallower dip keeps the crack pixels' width
ALONG_PX = 8  # profiles averaged over up to this many of the line's centre-line pixels either side
DIRECTION_PX = 3  # the line's direction at a pixel: from its pixels up to this far along either side
MIN_REACH_PX = 6  # profiles reach at least this far either side of the centre line
MAX_REACH_PX = 32  # ... and at most this far: cracks up to about 30 px wide are read whole
PASSES = 2


def with_profile_widths(gray: np.ndarray, lines: list[CenterLine]) -> list[CenterLine]:
    """``lines`` (in the pixels of the uint8 grey photo ``gray``) with their widths read from the photo."""
    if not lines:
        return []
    sizes = np.array([len(line.pixels) for line in lines])
    along = _Along(np.concatenate([line.pixels for line in lines]), sizes)
    widths = np.concatenate([line.widths_px for line in lines]).astype(np.float32)
    for _ in range(PASSES):
        reach = along.reach(widths)
        measured, unread = _read(gray, along, widths, reach)
        # Most of a line's profiles dark to an end or too shallow: the crack fills them, read further out.
        wider = (unread > 0.5) & (reach < MAX_REACH_PX)
        while wider.any():
            reach = np.where(wider, np.minimum(2 * reach, MAX_REACH_PX), reach)
            again, unread_again = _read(gray, along, widths, reach, wider)
            measured = np.where(np.repeat(wider, sizes), again, measured)
            unread = np.where(wider, unread_again, unread)
            wider &= (unread > 0.5) & (reach < MAX_REACH_PX)
        widths = measured
    return [
        dataclasses.replace(line, widths_px=part) for line, part in zip(lines, np.split(widths, along.bounds[1:-1]))
    ]


class _Along:
    """The centre-line pixels of several lines, one after the other: each pixel's normal to its line and
    the range of its line's pixels."""

    def __init__(self, pixels: np.ndarray, sizes: np.ndarray) -> None:
        self.pixels = pixels.astype(np.float32)
        self.bounds = np.concatenate([[0], np.cumsum(sizes)])
        self.line = line = np.repeat(np.arange(len(sizes)), sizes)
        self.start, self.end = self.bounds[line], self.bounds[line + 1]  # end: one past the line's last pixel
        index = np.arange(len(pixels))
        ahead = self.pixels[np.minimum(index + DIRECTION_PX, self.end - 1)]
        behind = self.pixels[np.maximum(index - DIRECTION_PX, self.start)]
        direction = ahead - behind
        length = np.hypot(direction[:, 0], direction[:, 1])
        unit = np.where(
            length[:, None] > 0, direction / np.maximum(length, 1e-6)[:, None], np.array([1, 0], np.float32)
        )
        self.normal: np.ndarray = np.stack([-unit[:, 1], unit[:, 0]], axis=1)

    def reach(self, widths: np.ndarray) -> np.ndarray:
        """How far each line's profiles reach either side: twice its median width and some surface."""
        values = widths[np.lexsort((widths, self.line))]  # each line's widths in order, line after line
        sizes = np.diff(self.bounds)
        median = (values[self.bounds[:-1] + (sizes - 1) // 2] + values[self.bounds[:-1] + sizes // 2]) / 2
        return np.ceil(np.maximum(MIN_REACH_PX, 2 * median + 4)).astype(np.int64)


def _read(
    gray: np.ndarray, along: _Along, widths: np.ndarray, reach: np.ndarray, chosen: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The widths read at every centre-line pixel (those of lines not ``chosen`` left as ``widths``) with
    each line's profiles ``reach`` px either side, and each line's share of unreadable profiles."""
    measured = widths.copy()
    unread = np.zeros(len(reach))
    for value in np.unique(reach if chosen is None else reach[chosen]):
        lines = reach == value if chosen is None else (reach == value) & chosen
        at = np.flatnonzero(lines[along.line])
        measured[at], readable = _half_depth(gray, along, at, widths[at], int(value))
        counts = np.bincount(along.line[at], minlength=len(reach))
        read = np.bincount(along.line[at], weights=readable, minlength=len(reach))
        unread[lines] = 1 - read[lines] / np.maximum(counts[lines], 1)
    return measured, unread


def _half_depth(
    gray: np.ndarray, along: _Along, at: np.ndarray, widths: np.ndarray, reach: int
) -> tuple[np.ndarray, np.ndarray]:
    """Widths at centre-line pixels ``at`` (indices, whole lines, in order), ``widths`` the estimate so far;
    and whether each profile could be read (deep enough, with surface on both sides)."""
    offsets = np.arange(-reach, reach + STEP_PX / 2, STEP_PX, dtype=np.float32)
    points = along.pixels[at, None, :] + along.normal[at, None, :] * offsets[None, :, None]
    profiles = _average_along(_bilinear(gray, points), along, at)
    count, centre = len(offsets), len(offsets) // 2
    index = np.arange(count)[None]
    # the darkest sample within the crack's half-width (and a pixel) of the centre line
    near = np.abs(index - centre) <= np.maximum(1, np.round((widths / 2 + 1) / STEP_PX))[:, None]
    darkest = np.argmin(np.where(near, profiles, np.inf), axis=1)[:, None]
    surface = np.percentile(profiles, SURFACE_PERCENTILE, axis=1, keepdims=True)
    depth = surface - np.take_along_axis(profiles, darkest, 1)
    cut = surface - LEVEL * depth
    light = profiles > cut
    first = np.where(light & (index < darkest), index, -1).max(axis=1, keepdims=True) + 1  # of the dark run
    last = np.where(light & (index > darkest), index, count).min(axis=1, keepdims=True) - 1

    def crossing(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Where the profile passes the cut between samples a and b (clipped into the profile)."""
        a, b = np.clip(a, 0, count - 1), np.clip(b, 0, count - 1)
        pa, pb = np.take_along_axis(profiles, a, 1), np.take_along_axis(profiles, b, 1)
        rise = pb - pa
        share = np.where(rise != 0, (cut - pa) / np.where(rise != 0, rise, 1), 0.5)
        return offsets[a] + np.clip(share, 0, 1) * (offsets[b] - offsets[a])

    left = np.where(first > 0, crossing(first - 1, first), offsets[0])[:, 0]
    right = np.where(last < count - 1, crossing(last, last + 1), offsets[-1])[:, 0]
    deep = depth[:, 0] >= MIN_DEPTH
    readable = deep & (first[:, 0] > 0) & (last[:, 0] < count - 1)
    return np.maximum(np.where(deep, right - left, widths), 1).astype(np.float32), readable


def _bilinear(gray: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Grey levels (float32) at ``points`` (..., 2) x, y, bilinear; the photo mirrored about its edges."""
    height, width = gray.shape
    x, y = _mirrored(points[..., 0], width), _mirrored(points[..., 1], height)
    # the top-left of the four pixels around each point, one short of the last row and column
    x0 = np.minimum(x.astype(np.int64), max(width - 2, 0))
    y0 = np.minimum(y.astype(np.int64), max(height - 2, 0))
    fx, fy = x - x0, y - y0
    flat = np.ascontiguousarray(gray).ravel()
    at = y0 * width + x0
    right, down = min(1, width - 1), width * min(1, height - 1)
    top = flat[at] + fx * (flat[at + right].astype(np.float32) - flat[at])
    bottom = flat[at + down] + fx * (flat[at + down + right].astype(np.float32) - flat[at + down])
    return top + fy * (bottom - top)


def _mirrored(position: np.ndarray, size: int) -> np.ndarray:
    """Positions outside 0 … size - 1 mirrored into it (a crack at the photo's edge: its surface continues
    as it was, where a repeated edge pixel would look like a band of one grey level)."""
    inside = size - 1 - np.abs(size - 1 - np.abs(position))
    return np.clip(inside, 0, size - 1)


def _average_along(profiles: np.ndarray, along: _Along, at: np.ndarray) -> np.ndarray:
    """Each profile averaged with those of up to ALONG_PX pixels of its own line either side (``at``: the
    profiles' centre-line pixels, whole lines in order)."""
    sums = np.concatenate([np.zeros((1, profiles.shape[1])), np.cumsum(profiles, axis=0, dtype=np.float64)])
    # positions within ``at``: a line's pixels are consecutive there as in ``along``
    shift = np.arange(len(at)) - at
    low = np.maximum(at - ALONG_PX, along.start[at]) + shift
    high = np.minimum(at + ALONG_PX + 1, along.end[at]) + shift
    return ((sums[high] - sums[low]) / (high - low)[:, None]).astype(np.float32)
