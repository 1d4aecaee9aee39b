"""`crack scan --trace`: crack pixels, centre lines and measurements inside the windows called crack.

Tracing costs in proportion to the cracked area: the photo's crack windows are grouped where they
overlap or touch, and the extractor runs on each group's part of the full-resolution grey photo only
(with some context around it), never on the clean rest.  Two extractors: the learned tracer shipped in
``models/`` (or another tracer file), run by ONNX Runtime, and the classical filter of
``measure.extract``.  A crack's width is read across its centre line from the photo's grey levels
(``measure.profile_widths``), the extractor's crack pixels giving only the first estimate.  Each centre
line belongs to the region its middle lies in (else the nearest one), and every region gets its
measurements.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import cv2
import numpy as np

from crackcli.data.tiling import Window
from crackcli.errors import CrackError, UsageError
from crackcli.measure.centerlines import CenterLine, center_lines
from crackcli.measure.extract import ExtractSettings, confident_pixels, crack_pixels
from crackcli.measure.measurements import Scale, measure
from crackcli.measure.profile_widths import with_profile_widths
from crackcli.model.shipped import TRACER_NAME, model_folders, shipped_file
from crackcli.model.tracers import OnnxTracer
from crackcli.scan.findings import Region, paint_cells, window_cells

CLASSICAL, LEARNED = "classical", "learned"
DEFAULT_EXTRACTOR = LEARNED

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


class CrackPixels(NamedTuple):
    found: np.ndarray  # bool: the crack pixels
    core: np.ndarray  # bool, among them: the pixels a crack's width is measured from


class Extractor(Protocol):
    @property
    def context_px(self) -> int:
        """Photo pixels around a group of windows that its result there depends on."""
        ...

    def crack_pixels(self, gray: np.ndarray, within: np.ndarray) -> CrackPixels:
        """The crack pixels of uint8 grey crop ``gray``, only inside ``within`` (bool, same shape)."""
        ...

    def record(self) -> dict[str, Any]:
        """What decides its output: a traced report is reused only when this is the same."""
        ...


@dataclass(frozen=True)
class ClassicalExtractor:
    settings: ExtractSettings = field(default_factory=ExtractSettings)

    @property
    def context_px(self) -> int:
        return self.settings.max_width_px  # the top-hat's reach

    def crack_pixels(self, gray: np.ndarray, within: np.ndarray) -> CrackPixels:
        found = crack_pixels(gray, self.settings, within)
        return CrackPixels(found, found)

    def record(self) -> dict[str, Any]:
        return {"extractor": CLASSICAL, **asdict(self.settings)}


class LearnedExtractor:
    def __init__(self, tracer: OnnxTracer, name: str = LEARNED) -> None:
        self.tracer = tracer
        self.name = name
        self.context_px = tracer.info.context_px

    def crack_pixels(self, gray: np.ndarray, within: np.ndarray) -> CrackPixels:
        info = self.tracer.info
        probs = self.tracer.probabilities(gray, within)
        found = confident_pixels(probs, info.threshold, info.min_length_px, within, info.max_fill)
        # Widths from the pixels it is surest of: at the threshold that finds cracks, the band it marks
        # is wider than the crack (the file's width_threshold was chosen on the selection sets).
        return CrackPixels(found, found & (probs >= info.width_threshold))

    def record(self) -> dict[str, Any]:
        return {"extractor": self.name, "tracer": str(self.tracer.source), "sha256": self.tracer.sha256}


def open_extractor(choice: str | None, device: str = "auto") -> Extractor:
    """The extractor `crack scan --tracer` names: ``learned`` (the shipped tracer), ``classical``, or a
    tracer file; None: the default.  A tracer runs on ``device``.  UsageError when it cannot be used."""
    choice = choice or DEFAULT_EXTRACTOR
    if choice == CLASSICAL:
        return ClassicalExtractor()
    if choice == LEARNED:
        path = shipped_file(TRACER_NAME)
        if path is None:
            raise UsageError(
                f"no shipped tracer in {' or '.join(str(f) for f in model_folders())}; "
                "pass `tracer` classical, or a tracer FILE"
            )
    else:
        path = Path(choice)
    try:
        return LearnedExtractor(OnnxTracer(path, device), LEARNED if choice == LEARNED else "file")
    except CrackError as exc:
        raise UsageError(str(exc)) from None


def trace_photo(
    gray: np.ndarray,
    windows: list[Window],
    crack_probs: np.ndarray,
    threshold: float,
    regions: list[Region],
    extractor: Extractor,
) -> PhotoTraces:
    """Trace the cracks of a full-resolution grey photo inside its windows scored ``threshold`` or more."""
    height, width = gray.shape
    mask = np.zeros((height, width), bool)
    lines: list[CenterLine] = []
    margin = extractor.context_px
    for x0, y0, x1, y1, inside in _window_groups(windows, crack_probs >= threshold, width, height):
        cx0, cy0 = max(0, x0 - margin), max(0, y0 - margin)
        cx1, cy1 = min(width, x1 + margin), min(height, y1 + margin)
        within = np.zeros((cy1 - cy0, cx1 - cx0), bool)
        within[y0 - cy0 : y1 - cy0, x0 - cx0 : x1 - cx0] = inside
        found, core = extractor.crack_pixels(gray[cy0:cy1, cx0:cx1], within)
        mask[cy0:cy1, cx0:cx1] |= found
        lines += center_lines(found, origin=(cx0, cy0), core=core)
    # the widths the crack pixels give, read again across each line from the photo's grey levels
    lines = with_profile_widths(gray, lines)
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
