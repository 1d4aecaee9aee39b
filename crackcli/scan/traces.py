"""`crack scan --trace`: crack pixels, centre lines and measurements inside the windows called crack.

Tracing costs in proportion to the cracked area: the photo's crack windows are grouped where they
overlap or touch, and the extractor (``measure.extract``) runs on each group's part of the full-
resolution grey photo only, never on the clean rest.  Each centre line belongs to the region its middle
lies in (else the nearest one), and every region gets its measurements.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from crackcli.data.tiling import Window
from crackcli.measure.centerlines import CenterLine, center_lines
from crackcli.measure.extract import ExtractSettings, crack_pixels
from crackcli.measure.measurements import Scale, measure
from crackcli.scan.findings import Region, paint_cells, window_cells

# Windows are grouped on a grid of this many photo pixels, never pixel by pixel (a 42 MP photo).
GROUP_CELL = 16


@dataclass
class PhotoTraces:
    mask: np.ndarray  # bool (H, W) at photo resolution: the crack pixels found
    lines: list[CenterLine]
    region_of_line: list[int]  # index into the photo's regions of each line, -1 without regions

    def region_figures(self, regions: list[Region], scale: Scale) -> list[dict]:
        """The measurements of each region's centre lines, in the order of ``regions``."""
        return [
            measure([line for line, owner in zip(self.lines, self.region_of_line) if owner == index], scale)
            for index in range(len(regions))
        ]

    def geojson(self, scale: Scale) -> dict:
        """The centre lines as a GeoJSON FeatureCollection of LineStrings in photo pixel coordinates (x right,
        y down), each with its region and measurements."""
        features = []
        for line, owner in zip(self.lines, self.region_of_line):
            properties = {"region": owner, **measure([line], scale)}
            properties.pop("length_mm_by_width", None)  # the region's figures carry the classes
            coordinates = np.round(line.points, 1).tolist()
            features.append(
                {
                    "type": "Feature",
                    "geometry": {"type": "LineString", "coordinates": coordinates},
                    "properties": properties,
                }
            )
        return {"type": "FeatureCollection", "coordinates": "photo pixels (x right, y down)", "features": features}


def trace_photo(
    gray: np.ndarray,
    windows: list[Window],
    crack_probs: np.ndarray,
    threshold: float,
    regions: list[Region],
    settings: ExtractSettings | None = None,
) -> PhotoTraces:
    """Trace the cracks of a full-resolution grey photo inside its windows scored ``threshold`` or more."""
    settings = settings or ExtractSettings()
    height, width = gray.shape
    mask = np.zeros((height, width), bool)
    lines: list[CenterLine] = []
    margin = settings.max_width_px  # context for the top-hat around each group
    for x0, y0, x1, y1, inside in _window_groups(windows, crack_probs >= threshold, width, height):
        cx0, cy0 = max(0, x0 - margin), max(0, y0 - margin)
        cx1, cy1 = min(width, x1 + margin), min(height, y1 + margin)
        within = np.zeros((cy1 - cy0, cx1 - cx0), bool)
        within[y0 - cy0 : y1 - cy0, x0 - cx0 : x1 - cx0] = inside
        found = crack_pixels(gray[cy0:cy1, cx0:cx1], settings, within)
        mask[cy0:cy1, cx0:cx1] |= found
        lines += center_lines(found, origin=(cx0, cy0))
    return PhotoTraces(mask, lines, [_owner(line, regions) for line in lines])


def _window_groups(
    windows: list[Window], chosen: np.ndarray, width: int, height: int
) -> list[tuple[int, int, int, int, np.ndarray]]:
    """The chosen windows grouped where they overlap or touch: each group's box (x0, y0, x1, y1) in the
    photo and the mask (bool, box-sized) of the pixels its windows cover, to the GROUP_CELL outside."""
    picked = [window for window, pick in zip(windows, chosen) if pick]
    if not picked:
        return []
    cell = GROUP_CELL
    shape = (-(-height // cell), -(-width // cell))
    grid = (paint_cells(shape, window_cells(picked, cell, width, height), np.ones(len(picked))) > 0.5).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(grid, connectivity=8)
    groups = []
    for label in range(1, count):
        gx, gy, gw, gh = (int(v) for v in stats[label, :4])
        inside = np.kron(labels[gy : gy + gh, gx : gx + gw] == label, np.ones((cell, cell), bool))
        x0, y0 = gx * cell, gy * cell
        x1, y1 = min(width, (gx + gw) * cell), min(height, (gy + gh) * cell)
        groups.append((x0, y0, x1, y1, inside[: y1 - y0, : x1 - x0]))
    return groups


def _owner(line: CenterLine, regions: list[Region]) -> int:
    """The region the line's middle point lies in, else the nearest; -1 when there are none."""
    if not regions:
        return -1
    x, y = line.points[len(line.points) // 2]
    boxes = np.array([r.bbox for r in regions], np.float64)
    dx = np.maximum(0, np.maximum(boxes[:, 0] - x, x - boxes[:, 2]))
    dy = np.maximum(0, np.maximum(boxes[:, 1] - y, y - boxes[:, 3]))
    return int(np.argmin(np.hypot(dx, dy)))
