"""The picture an inspector looks at: the photo with the crack heatmap blended on, crack regions outlined
and a legend for the colours.  Rendered at a viewing size (the report keeps full-resolution boxes)."""

from __future__ import annotations

import cv2
import numpy as np

WHITE = (255, 255, 255)
BLACK = (0, 0, 0)
OUTLINE = (255, 40, 40)
TRACE = (255, 0, 255)  # magenta: in no colour of the heatmap's scale
MAX_ALPHA = 0.6  # the heat colour never hides the surface under it completely
LEGEND_FONT = cv2.FONT_HERSHEY_SIMPLEX


def viewing_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(width, height) scaled so the longer side is at most ``max_side`` (0: full size)."""
    longest = max(width, height)
    if max_side <= 0 or longest <= max_side:
        return width, height
    scale = max_side / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


# The turbo colour map (blue low, red high) as an RGB table of 256 levels, for applyColorMap.
_TURBO_RGB = cv2.cvtColor(
    cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], cv2.COLORMAP_TURBO), cv2.COLOR_BGR2RGB
)


def heat_levels(heat: np.ndarray) -> np.ndarray:
    """Probabilities 0..1 as uint8 levels 0..255."""
    return np.clip(heat * 255 + 0.5, 0, 255).astype(np.uint8)


def heat_colours(levels: np.ndarray) -> np.ndarray:
    """RGB colours of uint8 probability levels (turbo: blue low, red high)."""
    return cv2.applyColorMap(levels, _TURBO_RGB)


def viewing_pixels(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``rgb`` at ``size`` (width, height), area-averaged: halved (2×2 means) while its sides are even and
    at least twice that size, then averaged once over what is left.  OpenCV halves a 42 MP photo in a
    tenth of the time it takes to average it at a fractional factor; the picture differs from one
    direct averaging by under a level at the mean."""
    while not (rgb.shape[0] % 2 or rgb.shape[1] % 2) and rgb.shape[1] >= 2 * size[0] and rgb.shape[0] >= 2 * size[1]:
        rgb = cv2.resize(rgb, (rgb.shape[1] // 2, rgb.shape[0] // 2), interpolation=cv2.INTER_AREA)
    return rgb if rgb.shape[1::-1] == size else cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


THUMBNAIL_SIDE = 320  # px, the longer side: a job page of 50 rows loads about 1 MB of thumbnails


def thumbnail(picture: np.ndarray) -> np.ndarray:
    """``picture`` shrunk for a table row."""
    height, width = picture.shape[:2]
    return viewing_pixels(picture, viewing_size(width, height, THUMBNAIL_SIDE))


def render_overlay(
    base: np.ndarray, levels: np.ndarray, crack_mask: np.ndarray, threshold: float, caption: str
) -> np.ndarray:
    """``base`` (the photo at viewing size, see ``viewing_pixels``) with the heatmap's ``levels`` (see
    ``heat_levels``) blended in proportion to the probability, regions outlined, a legend."""
    size = (base.shape[1], base.shape[0])
    # Levels are interpolated as uint8 (a fraction of the cost of floats over a whole picture); the
    # blend is one OpenCV pass: base·(1 - α) + colour·α with α = 0.6·probability.
    levels = cv2.resize(levels, size, interpolation=cv2.INTER_LINEAR)
    alpha = levels.astype(np.float32)
    alpha *= MAX_ALPHA / 255
    image = cv2.blendLinear(base, heat_colours(levels), 1 - alpha, alpha)

    mask_up = cv2.resize(crack_mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
    contours, _ = cv2.findContours(mask_up, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    thickness = max(2, round(max(size) / 600))
    cv2.drawContours(image, contours, -1, OUTLINE, thickness, cv2.LINE_AA)
    _draw_legend(image, threshold, caption)
    return image


def draw_traces(image: np.ndarray, polylines: list[np.ndarray], scale: float) -> None:
    """Crack centre lines (photo pixel coordinates, times ``scale`` for the picture) drawn on ``image``."""
    if not polylines:
        return
    thickness = max(1, round(max(image.shape[:2]) / 1000))
    shift = 4  # sub-pixel positions: 1/16 px
    points = [np.round(line * scale * (1 << shift)).astype(np.int32).reshape(-1, 1, 2) for line in polylines]
    cv2.polylines(image, points, False, TRACE, thickness, cv2.LINE_AA, shift)


def load_legend_font() -> None:
    """Have OpenCV build its font tables, which it does on first use (about 30 ms): a scan does it on
    the writer thread while the first photo is scored, not after."""
    cv2.getTextSize("0", LEGEND_FONT, 1.0, 1)


def _draw_legend(image: np.ndarray, threshold: float, caption: str) -> None:
    """A colour bar from 0 to 1 with the threshold marked, and a caption, in the bottom-left corner."""
    height, width = image.shape[:2]
    unit = max(1.0, min(width, height) / 500)
    bar_w, bar_h, pad = int(200 * unit), int(12 * unit), int(8 * unit)
    font, scale, line = LEGEND_FONT, 0.45 * unit, max(1, round(unit))
    text_h = int(18 * unit)
    box_w = min(width, max(bar_w, int(cv2.getTextSize(caption, font, scale, line)[0][0])) + 2 * pad)
    box_h = bar_h + 2 * text_h + 2 * pad
    if width < bar_w + 2 * pad or height < 2 * box_h:
        return  # too small a picture to carry a legend
    x0, y0 = 0, height - box_h
    panel = image[y0:height, x0 : x0 + box_w]
    panel[:] = (panel * 0.35).astype(np.uint8)  # darken under the legend so it reads on any photo

    bar = heat_colours(heat_levels(np.linspace(0, 1, bar_w, dtype=np.float32)[None, :].repeat(bar_h, 0)))
    bx, by = x0 + pad, y0 + pad + text_h
    image[by : by + bar_h, bx : bx + bar_w] = bar
    tick = bx + int(threshold * (bar_w - 1))
    cv2.line(image, (tick, by - 3), (tick, by + bar_h + 2), WHITE, line)
    cv2.putText(
        image,
        f"P(crack): 0   threshold {threshold:g}   1",
        (bx, by - int(5 * unit)),
        font,
        scale,
        WHITE,
        line,
        cv2.LINE_AA,
    )
    cv2.putText(image, caption, (bx, by + bar_h + text_h - int(3 * unit)), font, scale, WHITE, line, cv2.LINE_AA)
