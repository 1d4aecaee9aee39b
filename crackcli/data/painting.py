"""Marks painted on clean training patches: hairlines trained as crack, and what field photos hold that is not.

CCIC-like data shows wide cracks on plain wall concrete.  Field photos add thin cracks in wide views, and
things a texture model confuses with cracks: formwork and planking joints, road markings and their worn
edges, brick and tile grids, shadow and object edges, tyre marks, stains, and other surfaces such as
asphalt aggregate.  Painting these on real clean texture (or on a procedural surface) teaches them without
a hand-labelled example.  Sizes are given for a 96 px patch and scale with the patch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from crackcli.errors import OptionError


def _darken(rgb: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """``rgb`` darkened by ``depth`` (0: unchanged, 1: black) per pixel, as a mark in the surface would."""
    return np.clip(rgb.astype(np.float32) * (1 - depth)[..., None], 0, 255).astype(np.uint8)


def _blend(rgb: np.ndarray, colour: np.ndarray, cover: np.ndarray) -> np.ndarray:
    """``rgb`` covered by ``colour`` (RGB) with opacity ``cover`` (0-1) per pixel, as paint is."""
    out = rgb.astype(np.float32) * (1 - cover[..., None]) + colour.astype(np.float32) * cover[..., None]
    return np.clip(out, 0, 255).astype(np.uint8)


def _scale(rgb: np.ndarray) -> tuple[int, int, float]:
    height, width = rgb.shape[:2]
    return height, width, max(height, width) / 96


def _crack_path(
    depth: np.ndarray,
    rng: np.random.Generator,
    widths: tuple[float, float],
    step: float,
    wander: float = 0.5,
    cross: bool = False,
) -> np.ndarray:
    """Draw into ``depth`` a jagged path (width drawn from ``widths``, px) from a random point of one edge
    into the patch.  It stops where a step would leave the patch; with ``cross``, a step out of the patch
    in the path's first third is drawn again instead, so that the path crosses the patch."""
    height, width = depth.shape
    edge, along = int(rng.integers(4)), rng.uniform(0.15, 0.85)
    starts = [(along * width, 0.0), (width - 1.0, along * height), (along * width, height - 1.0)]
    x, y = (starts + [(0.0, along * height)])[edge]
    heading = [math.pi / 2, math.pi, -math.pi / 2, 0.0][edge] + rng.uniform(-0.7, 0.7)  # into the patch
    line_width = rng.uniform(*widths)
    steps, drawn = int(rng.uniform(0.6, 1.4) * max(height, width) / step), 0
    for _ in range(steps):
        heading += rng.normal(0, 0.06)  # the course drifts slowly...
        jagged = heading + rng.normal(0, wander)  # ...while each step zigzags, as a fracture does
        nx, ny = x + step * math.cos(jagged), y + step * math.sin(jagged)
        if not (0 <= nx < width and 0 <= ny < height):
            if not cross or drawn >= steps // 3:
                break
            continue
        drawn += 1
        thickness = max(1, round(line_width * rng.uniform(0.7, 1.3)))
        # shift=2: coordinates in quarter pixels
        cv2.line(depth, (round(x * 4), round(y * 4)), (round(nx * 4), round(ny * 4)), 1.0, thickness, cv2.LINE_AA, 2)
        x, y = nx, ny
    return depth


def paint_hairline(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``rgb`` with a thin, jagged, dark line drawn across it from a random point of one edge.

    0.8-2 px wide at 96 px, faint to clear: a hairline, or a crack seen in a wide view.  Lines are drawn
    with sub-pixel positions and anti-aliasing and slightly blurred, so that they look like a crack seen
    through a lens rather than a drawn stroke.  (The shipped model was trained on exactly these lines:
    keep their random draws as they are, or its recipe no longer rebuilds it bit for bit.)
    """
    height, width, scale = _scale(rgb)
    depth = _crack_path(np.zeros((height, width), np.float32), rng, (0.8 * scale, 2.0 * scale), 1.5 * scale)
    depth = cv2.GaussianBlur(depth, (0, 0), 0.5 * scale) * rng.uniform(0.3, 0.7)
    return _darken(rgb, depth)


def paint_crack_with_mask(
    rgb: np.ndarray, rng: np.random.Generator, widths: tuple[float, float], darkness: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """``rgb`` with a jagged crack across it, ``widths`` px wide and darkened by a share drawn from
    ``darkness``, and the crack's mask (bool): pictures whose crack pixels are known, for measuring a
    crack extractor on real surface texture."""
    height, width = rgb.shape[:2]
    step = max(1.5, 0.6 * widths[1])
    drawn = _crack_path(np.zeros((height, width), np.float32), rng, widths, step, cross=True)
    depth = cv2.GaussianBlur(drawn, (0, 0), 0.6) * rng.uniform(*darkness)  # a lens's blur
    return _darken(rgb, depth), drawn >= 0.5


def paint_stains(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``rgb`` with one to three small dark blots (pits, stains), 3-12 px across.

    Painted on clean patches that stay clean, they teach a model that learns painted hairlines that
    darkness alone is not a crack: the shape is.
    """
    height, width, scale = _scale(rgb)
    depth = np.zeros((height, width), np.float32)
    for _ in range(int(rng.integers(1, 4))):
        centre = (float(rng.uniform(0, width)), float(rng.uniform(0, height)))
        axes = (float(rng.uniform(1.5, 6) * scale), float(rng.uniform(1.5, 6) * scale))
        cv2.ellipse(depth, (centre, (2 * axes[0], 2 * axes[1]), float(rng.uniform(0, 180))), 1.0, -1, cv2.LINE_AA)
    depth = cv2.GaussianBlur(depth, (0, 0), 0.7 * scale) * rng.uniform(0.3, 0.7)
    return _darken(rgb, depth)


def _straight_line(shape: tuple[int, int], angle: float, offset: float) -> np.ndarray:
    """Signed distance (px) of every pixel from a straight line at ``angle`` through the centre moved by ``offset``."""
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    cx, cy = shape[1] / 2, shape[0] / 2
    return (xs - cx) * math.sin(angle) - (ys - cy) * math.cos(angle) - offset


def _joint_angle(rng: np.random.Generator) -> float:
    """Joints and formwork run mostly with the photo's axes (as drones and crews frame them), sometimes not."""
    if rng.random() < 0.7:
        return int(rng.integers(2)) * math.pi / 2 + rng.normal(0, 0.05)
    return rng.uniform(0, math.pi)


def paint_joint(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Formwork, planking or expansion joints: one to three straight lines across the whole patch, dark
    grooves or light ridges, 0.6-5 px wide, parallel when several."""
    height, width, scale = _scale(rgb)
    angle = _joint_angle(rng)
    out = rgb
    offset = rng.uniform(-0.45, 0.45) * max(height, width)
    for _ in range(int(rng.choice([1, 1, 2, 3]))):
        distance = np.abs(_straight_line((height, width), angle, offset))
        half = rng.uniform(0.3, 2.5) * scale
        profile = np.clip(half + 0.5 - distance, 0, 1)  # anti-aliased band
        profile = cv2.GaussianBlur(profile, (0, 0), rng.uniform(0.3, 1.0) * scale)
        strength = rng.uniform(0.2, 0.75)
        if rng.random() < 0.7:
            out = _darken(out, profile * strength)
        else:
            out = _blend(out, np.full(3, 235.0), profile * strength * 0.6)
        offset += rng.choice([-1, 1]) * rng.uniform(6, 40) * scale
    return out


def paint_marking(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Road paint: a white or yellow band with straight, worn edges, crossing part of the patch."""
    height, width, scale = _scale(rgb)
    angle = rng.uniform(0, math.pi)
    distance = _straight_line((height, width), angle, rng.uniform(-0.5, 0.5) * max(height, width))
    band = rng.uniform(8, 60) * scale
    ragged = cv2.GaussianBlur(rng.normal(0, 1.5 * scale, (height, width)).astype(np.float32), (0, 0), 1.0 * scale)
    inside = np.clip(0.5 + np.minimum(distance + ragged, band - distance - ragged), 0, 1)
    wear = np.clip(rng.uniform(0.55, 1.0) - np.abs(rng.normal(0, 0.25, (height, width))), 0, 1).astype(np.float32)
    colour = np.array([240.0, 240.0, 235.0]) if rng.random() < 0.6 else np.array([235.0, 195.0, 60.0])
    return _blend(rgb, colour * rng.uniform(0.8, 1.05), inside * wear)


def paint_grid(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Brick or tile joints: mortar lines every 12-45 px both ways, bricks staggered half the time."""
    height, width, scale = _scale(rgb)
    step_x, step_y = rng.uniform(12, 45, 2) * scale
    if rng.random() < 0.5:
        step_x = step_y * rng.uniform(1.5, 3)  # brick: longer than high
    half = rng.uniform(0.4, 2.0) * scale
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    ys, xs = ys + rng.uniform(0, step_y), xs + rng.uniform(0, step_x)
    if rng.random() < 0.5:
        xs += (np.floor(ys / step_y) % 2) * step_x / 2  # stagger each course
    across_rows = np.abs((ys + step_y / 2) % step_y - step_y / 2)
    across_columns = np.abs((xs + step_x / 2) % step_x - step_x / 2)
    distance = np.minimum(across_rows, across_columns)
    mortar = np.clip(half + 0.5 - distance, 0, 1) * rng.uniform(0.2, 0.6)
    if rng.random() < 0.7:
        return _darken(rgb, mortar)
    return _blend(rgb, np.full(3, 225.0), mortar)


def paint_edge(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A shadow or object edge: one side of a straight or gently curved boundary darker, sharp or soft."""
    height, width, scale = _scale(rgb)
    distance = _straight_line((height, width), rng.uniform(0, 2 * math.pi), rng.uniform(-0.4, 0.4) * width)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    distance += rng.uniform(-1, 1) * ((xs - width / 2) ** 2 + (ys - height / 2) ** 2) / (width * 4)  # curvature
    softness = rng.uniform(0.3, 4.0) * scale
    side = 1 / (1 + np.exp(-np.clip(distance / softness, -30, 30)))
    return _darken(rgb, side * rng.uniform(0.25, 0.7))


def paint_tyre_marks(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Tyre marks and wet streaks: one to three broad, soft, faint dark stripes in parallel."""
    height, width, scale = _scale(rgb)
    angle, offset = rng.uniform(0, math.pi), rng.uniform(-0.4, 0.4) * width
    depth = np.zeros((height, width), np.float32)
    for _ in range(int(rng.integers(1, 4))):
        distance = np.abs(_straight_line((height, width), angle, offset))
        depth += np.exp(-((distance / (rng.uniform(4, 14) * scale)) ** 2)) * rng.uniform(0.1, 0.35)
        offset += rng.uniform(15, 35) * scale
    return _darken(rgb, np.clip(depth, 0, 0.6))


def paint_striations(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Brushed concrete or wood-grain formwork prints: many faint parallel streaks, light and dark."""
    height, width, scale = _scale(rgb)
    angle = _joint_angle(rng)
    across = _straight_line((height, width), angle, 0.0)
    streaks = np.zeros((height, width), np.float32)
    for _ in range(int(rng.integers(8, 30))):
        streaks += np.exp(-(((across - rng.uniform(-70, 70) * scale) / (rng.uniform(0.4, 2.0) * scale)) ** 2)) * (
            rng.uniform(-1, 1)
        )
    shade = streaks * rng.uniform(0.06, 0.18)
    return np.clip(rgb.astype(np.float32) * (1 + shade[..., None]), 0, 255).astype(np.uint8)


CONFUSERS = (paint_joint, paint_marking, paint_grid, paint_edge, paint_tyre_marks, paint_striations, paint_stains)


# What may lie beside a crack without hiding it (road paint could cover it): painted on crack patches,
# which stay crack, so that a joint or a shadow next to a crack does not talk the model out of it.
BESIDE_CRACKS = tuple(painter for painter in CONFUSERS if painter is not paint_marking)


def paint_confuser(rgb: np.ndarray, rng: np.random.Generator, painters: tuple = CONFUSERS) -> np.ndarray:
    """One confuser, chosen evenly among ``painters``."""
    return painters[int(rng.integers(len(painters)))](rgb, rng)


def asphalt(size: int, rng: np.random.Generator) -> np.ndarray:
    """A procedural asphalt surface: grey stones in a darker binder, seen from near (coarse stones of up
    to 11 px, strong contrast) to far (fine, faint grain that reads as a mottled grey)."""
    scale = size / 96 * math.exp(rng.uniform(math.log(0.15), math.log(1.2)))  # as often far as near
    binder = rng.uniform(35, 120)
    canvas = np.full((size, size, 3), binder, np.float32)
    canvas += cv2.GaussianBlur(rng.normal(0, 12, (size, size)).astype(np.float32), (0, 0), 3 * scale)[..., None]
    stone_range = rng.uniform(90, 200)
    contrast = rng.uniform(0.3, 1.0)  # far away, stones and binder blur into each other
    tint = rng.uniform(0.98, 1.02, 3)  # a slightly warm or cool aggregate
    area, covered = size * size * rng.uniform(0.55, 0.9), 0.0
    while covered < area:
        axes = np.maximum(rng.uniform(0.6, 4.5, 2) * scale, 0.5)  # finer grain than half a pixel is noise
        grey = binder + contrast * (rng.uniform(0.2, 1.0) * (stone_range - binder) + 40)
        colour = tuple(float(c) for c in np.clip(grey * tint * rng.uniform(0.98, 1.02, 3), 0, 255))
        centre = (float(rng.uniform(0, size)), float(rng.uniform(0, size)))
        box = (centre, (2 * float(axes[0]), 2 * float(axes[1])), float(rng.uniform(0, 180)))
        cv2.ellipse(canvas, box, colour, -1, cv2.LINE_AA)
        covered += math.pi * axes[0] * axes[1]
    canvas += rng.normal(0, rng.uniform(3, 10), canvas.shape).astype(np.float32)
    return np.clip(cv2.GaussianBlur(canvas, (0, 0), rng.uniform(0.3, 0.9)), 0, 255).astype(np.uint8)


def paint_pavement_crack(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A road crack: a dark, jagged, 0.8-7 px wide fracture, sometimes with a branch."""
    height, width, scale = _scale(rgb)
    depth = np.zeros((height, width), np.float32)
    widths = (0.8 * scale, 7.0 * scale)
    for _ in range(int(rng.choice([1, 1, 2]))):
        _crack_path(depth, rng, widths, 2.0 * scale, wander=0.7, cross=True)
        widths = (0.6 * widths[0], 0.6 * widths[1])  # a branch is thinner
    depth = cv2.GaussianBlur(np.clip(depth, 0, 1), (0, 0), 0.6 * scale) * rng.uniform(0.5, 0.85)
    return _darken(rgb, depth)


@dataclass(frozen=True)
class SyntheticCracks:
    """Paint shares of the clean training patches, each share a different kind of mark (see the module).

    ``share``: a hairline, trained as crack.  ``stain_share``: dark blots, kept clean.  ``confuser_share``:
    one of the confusers, kept clean; the same share of crack patches gets one of ``BESIDE_CRACKS`` and
    stays crack.  ``surface_share``: replaced by procedural asphalt, half of it with a road crack (trained
    as crack), half plain.  Without confusers, crack patches are left alone.
    """

    share: float
    clean_label: int
    crack_label: int
    stain_share: float = 0.0
    confuser_share: float = 0.0
    surface_share: float = 0.0

    def __call__(self, rgb: np.ndarray, label: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        if label != self.clean_label:
            # No draw without confusers: crack patches then keep the augmentation stream they had before.
            if self.confuser_share > 0 and rng.random() < self.confuser_share:
                return paint_confuser(rgb, rng, BESIDE_CRACKS), label
            return rgb, label
        draw = rng.random()
        if draw < self.share:
            return paint_hairline(rgb, rng), self.crack_label
        draw -= self.share
        if draw < self.stain_share:
            return paint_stains(rgb, rng), label
        draw -= self.stain_share
        if draw < self.confuser_share:
            return paint_confuser(rgb, rng), label
        draw -= self.confuser_share
        if draw < self.surface_share:
            surface = asphalt(rgb.shape[0], rng)
            if rng.random() < 0.5:
                return paint_pavement_crack(surface, rng), self.crack_label
            return (paint_confuser(surface, rng) if rng.random() < 0.5 else surface), label
        return rgb, label


def synthetic_cracks_for(
    share: float,
    classes: tuple[str, ...],
    crack_class: str | None,
    stain_share: float = 0.0,
    confuser_share: float = 0.0,
    surface_share: float = 0.0,
) -> SyntheticCracks | None:
    """The painting of `synthetic_cracks` / `synthetic_stains` / `synthetic_confusers` /
    `synthetic_surfaces` (shares of clean patches, checked by the training configuration) for these
    classes; None when all shares are 0."""
    if share == 0 and stain_share == 0 and confuser_share == 0 and surface_share == 0:
        return None
    clean = clean_label(classes, crack_class, "synthetic_cracks")
    assert crack_class is not None  # checked by clean_label
    return SyntheticCracks(share, clean, classes.index(crack_class), stain_share, confuser_share, surface_share)


def clean_label(classes: tuple[str, ...], crack_class: str | None, option: str) -> int:
    """The index of the clean class that ``option`` (a training option acting on clean patches) changes:
    no_crack, or the class beside the crack class when there are two."""
    clean = "no_crack" if "no_crack" in classes else None
    if clean is None and len(classes) == 2 and crack_class in classes:
        clean = classes[1 - classes.index(crack_class)]
    if crack_class is None or crack_class not in classes or clean is None or clean == crack_class:
        raise OptionError(
            option,
            f"needs a crack class and a clean class named no_crack (classes: {', '.join(classes)}); "
            "rename the clean folder to no_crack or pass `crack_class`",
        )
    return classes.index(clean)
