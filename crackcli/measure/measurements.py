"""A crack's length and widths from its centre lines, in pixels and, given a scale, in millimetres, with
the length falling in each width class (as inspection codes grade cracks: e.g. under 0.1 mm, 0.1-0.3,
0.3-1, over 1 mm)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from crackcli.errors import OptionError
from crackcli.measure.centerlines import CenterLine

WIDTH_CLASSES_MM = (0.1, 0.3, 1.0)  # class boundaries in mm


@dataclass(frozen=True)
class Scale:
    """How long a photo pixel is; None when the user gave no scale (measurements stay in pixels)."""

    mm_per_px: float | None = None
    width_classes_mm: tuple[float, ...] = WIDTH_CLASSES_MM

    def __post_init__(self) -> None:
        if self.mm_per_px is not None and not 0 < self.mm_per_px < math.inf:
            raise OptionError("mm_per_px", "give the length of one pixel in millimetres, over 0", self.mm_per_px)
        bounds = self.width_classes_mm
        if not bounds or any(b <= 0 for b in bounds) or list(bounds) != sorted(set(bounds)):
            given = ",".join(f"{b:g}" for b in bounds)
            raise OptionError("width_classes", "give increasing widths in mm, e.g. 0.1,0.3,1", given)

    def class_names(self) -> list[str]:
        bounds = [f"{b:g}" for b in self.width_classes_mm]
        inner = [f"{low}-{high}" for low, high in zip(bounds, bounds[1:])]
        return [f"<{bounds[0]}", *inner, f">{bounds[-1]}"]


def scale_from_line(text: str) -> float:
    """mm per pixel from ``X1,Y1,X2,Y2,MM``: two photo points (pixels) a known distance (mm) apart."""
    try:
        x1, y1, x2, y2, mm = (float(part) for part in text.split(","))
    except ValueError:
        raise OptionError(
            "scale_line", "give X1,Y1,X2,Y2,MM: two photo points in pixels and their distance in mm", text
        ) from None
    pixels = math.hypot(x2 - x1, y2 - y1)
    if pixels == 0 or not 0 < mm < math.inf:
        raise OptionError("scale_line", "the two points must differ and the distance be over 0 mm", text)
    return mm / pixels


def photo_scale(mm_per_px: float | None, scale_line: str | None) -> float | None:
    """The scale the user gave, as mm per pixel or as a line of known length; not both."""
    if mm_per_px is not None and scale_line is not None:
        raise OptionError("scale_line", "give the scale once: `mm_per_px` or `scale_line`", scale_line)
    return scale_from_line(scale_line) if scale_line is not None else mm_per_px


def parse_widths(text: str) -> tuple[float, ...]:
    """Width class boundaries from ``0.1,0.3,1`` (mm)."""
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise OptionError("width_classes", "give increasing widths in mm, e.g. 0.1,0.3,1", text) from None


def measure(lines: list[CenterLine], scale: Scale) -> dict:
    """Length, maximum and mean width of a set of centre lines; in mm too, with the length per width class,
    when the scale is known.  The mean width is along the length (every skeleton pixel weighs alike)."""
    if not lines:
        figures: dict = {"length_px": 0.0, "max_width_px": 0.0, "mean_width_px": 0.0}
    else:
        widths = np.concatenate([line.widths_px for line in lines])
        figures = {
            "length_px": round(sum(line.length_px for line in lines), 1),
            "max_width_px": round(float(widths.max()), 2),
            "mean_width_px": round(float(widths.mean()), 2),
        }
    if scale.mm_per_px is None:
        return figures
    mm = scale.mm_per_px
    figures.update(
        length_mm=round(figures["length_px"] * mm, 2),
        max_width_mm=round(figures["max_width_px"] * mm, 3),
        mean_width_mm=round(figures["mean_width_px"] * mm, 3),
    )
    per_class = np.zeros(len(scale.width_classes_mm) + 1)
    for line in lines:
        # each skeleton pixel of a line carries an equal share of its length
        classes = np.searchsorted(scale.width_classes_mm, line.widths_px * mm, side="right")
        np.add.at(per_class, classes, line.length_px / len(line.widths_px))
    figures["length_mm_by_width"] = {
        name: round(float(length * mm), 2) for name, length in zip(scale.class_names(), per_class)
    }
    return figures
