"""Procedural concrete photos with ground truth, for tests, samples and benchmarks.

A photo is textured concrete (multi-scale mottling, fine grain, aggregate, pores, stains, a lighting
gradient) with three kinds of line: cracks (dark, branching random walks of varying width; in the
crack mask), scratches (thin, lighter, smooth curves; in the scratch mask: the paper's confusable
third class) and formwork joints (long straight lines; in neither mask).  The same seed and size
always give the same photo.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from crackcli.errors import OptionError, UsageError
from crackcli.io.images import write_image

MIN_SIDE = 16
MAX_SIDE = 12_000  # 144 MP, beyond any inspection camera; painting it takes about 2 GB


@dataclass
class SynthPhoto:
    image: np.ndarray  # (H, W, 3) uint8 RGB
    crack_mask: np.ndarray  # (H, W) uint8, 255 = crack
    scratch_mask: np.ndarray  # (H, W) uint8, 255 = scratch


def synthesize(
    width: int,
    height: int,
    seed: int = 0,
    *,
    cracks: int | None = None,
    scratches: int | None = None,
    joints: int | None = None,
) -> SynthPhoto:
    """One synthetic photo; ``None`` counts are drawn at random (1-3 cracks, 0-2 scratches, 0-1 joints)."""
    rng = np.random.default_rng(seed)
    cracks = int(rng.integers(1, 4)) if cracks is None else cracks
    scratches = int(rng.integers(0, 3)) if scratches is None else scratches
    joints = int(rng.integers(0, 2)) if joints is None else joints

    gray = _concrete_texture(rng, width, height)
    for _ in range(joints):
        _draw_joint(rng, gray)

    scratch_mask = np.zeros((height, width), np.uint8)
    for _ in range(scratches):
        _draw_scratch(rng, gray, scratch_mask)

    crack_mask = np.zeros((height, width), np.uint8)
    depth = np.zeros((height, width), np.float32)
    for _ in range(cracks):
        _draw_crack(rng, depth, crack_mask)
    # A slight blur gives crack edges the softness of a real lens; the mask stays crisp.
    gray *= 1.0 - cv2.GaussianBlur(depth, (0, 0), 0.8)

    tint = np.array([1.0, 0.98 + 0.02 * rng.random(), 0.93 + 0.05 * rng.random()], np.float32)
    rgb = np.empty((height, width, 3), np.uint8)
    for channel in range(3):
        rgb[..., channel] = np.clip(gray * (255.0 * tint[channel]), 0, 255)
    return SynthPhoto(rgb, crack_mask, scratch_mask)


def _smooth_noise(rng: np.random.Generator, width: int, height: int, cell: float) -> np.ndarray:
    """Zero-mean noise varying over about ``cell`` pixels, cheap at any size (upsampled small grid)."""
    grid = rng.standard_normal((max(2, int(height / cell) + 2), max(2, int(width / cell) + 2))).astype(np.float32)
    return cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)


def _concrete_texture(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    gray = np.full((height, width), 0.55 + 0.15 * rng.random(), np.float32)
    for cell, amplitude in ((300, 0.05), (60, 0.03), (12, 0.02)):
        gray += amplitude * _smooth_noise(rng, width, height, cell)
    gray += 0.025 * rng.standard_normal((height, width), dtype=np.float32)

    area = width * height
    aggregate = np.zeros((height, width), np.float32)
    for _ in range(area // 1600):
        center = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        axes = (int(rng.integers(2, 9)), int(rng.integers(2, 7)))
        cv2.ellipse(aggregate, center, axes, float(rng.uniform(0, 180)), 0, 360, float(rng.uniform(-0.06, 0.06)), -1)
    gray += cv2.GaussianBlur(aggregate, (0, 0), 1.0)
    for _ in range(area // 4000):  # pores: small dark holes, a classic false alarm for crack detectors
        center = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.circle(gray, center, int(rng.integers(1, 4)), float(rng.uniform(0.2, 0.4)), -1)

    stains = np.clip(_smooth_noise(rng, width, height, 500) - 0.8, 0, None)
    gray -= 0.08 * stains
    ys = np.linspace(-1, 1, height, dtype=np.float32)[:, None]
    xs = np.linspace(-1, 1, width, dtype=np.float32)[None, :]
    angle = rng.uniform(0, 2 * math.pi)
    gray += 0.06 * (math.cos(angle) * xs + math.sin(angle) * ys)
    return np.clip(gray, 0.05, 1.0, out=gray)


def _random_edge_point(rng: np.random.Generator, width: int, height: int) -> tuple[float, float]:
    return float(rng.uniform(0.1, 0.9) * width), float(rng.uniform(0.1, 0.9) * height)


def _draw_crack(
    rng: np.random.Generator,
    depth: np.ndarray,
    mask: np.ndarray,
    start: tuple[float, float] | None = None,
    heading: float | None = None,
    length: float | None = None,
    width: float | None = None,
    level: int = 0,
) -> None:
    """A random walk whose heading drifts; width tapers towards the tip; a few branches split off."""
    height, img_width = mask.shape
    x, y = start or _random_edge_point(rng, img_width, height)
    heading = rng.uniform(0, 2 * math.pi) if heading is None else heading
    length = length or rng.uniform(0.3, 0.8) * math.hypot(img_width, height)
    width = width or rng.uniform(2.0, 6.0)
    darkness = rng.uniform(0.35, 0.65) / (1 + level)
    step = 3.0
    steps = max(2, int(length / step))
    for i in range(steps):
        heading += rng.normal(0, 0.08)  # slow drift of the overall course
        jagged = heading + rng.normal(0, 0.45)  # step-to-step zigzag of a real fracture
        nx, ny = x + step * math.cos(jagged), y + step * math.sin(jagged)
        if not (0 <= nx < img_width and 0 <= ny < height):
            break
        tip = 1.0 - i / steps
        thickness = max(1, round(width * (0.35 + 0.65 * math.sqrt(tip)) * rng.uniform(0.8, 1.2)))
        p0, p1 = (round(x), round(y)), (round(nx), round(ny))
        cv2.line(depth, p0, p1, float(darkness), thickness, lineType=cv2.LINE_AA)
        cv2.line(mask, p0, p1, 255, thickness)
        if level < 2 and rng.random() < 0.004:
            branch = heading + rng.choice([-1, 1]) * rng.uniform(0.4, 1.1)
            _draw_crack(rng, depth, mask, (nx, ny), branch, (steps - i) * step * 0.5, width * 0.6, level + 1)
        x, y = nx, ny


def _draw_scratch(rng: np.random.Generator, gray: np.ndarray, mask: np.ndarray) -> None:
    """A smooth, thin, lighter curve (quadratic Bézier), as left by tools or abrasion."""
    height, width = gray.shape
    points = np.array([_random_edge_point(rng, width, height) for _ in range(3)])
    t = np.linspace(0, 1, max(16, int(math.hypot(width, height) / 8)))[:, None]
    curve = (1 - t) ** 2 * points[0] + 2 * (1 - t) * t * points[1] + t**2 * points[2]
    polyline = np.round(curve).astype(np.int32).reshape(-1, 1, 2)
    thickness = int(rng.integers(1, 3))
    layer = np.zeros_like(gray)
    cv2.polylines(layer, [polyline], False, float(rng.uniform(0.12, 0.22)), thickness, lineType=cv2.LINE_AA)
    gray += layer
    cv2.polylines(mask, [polyline], False, 255, thickness)


def _draw_joint(rng: np.random.Generator, gray: np.ndarray) -> None:
    """A straight formwork joint across the whole photo, slightly darker."""
    height, width = gray.shape
    thickness = int(rng.integers(3, 8))
    shade = float(rng.uniform(0.85, 0.93))
    if rng.random() < 0.5:
        y = int(rng.integers(thickness, height - thickness))
        gray[y : y + thickness] *= shade
    else:
        x = int(rng.integers(thickness, width - thickness))
        gray[:, x : x + thickness] *= shade


def write_synthetic_set(
    out_dir: Path,
    count: int,
    width: int,
    height: int,
    seed: int,
    image_format: str = "jpg",
    quality: int = 90,
    overwrite: bool = False,
) -> list[Path]:
    """``count`` photos ``synth_<seed>`` in ``out_dir/images``, crack masks in ``masks``, scratch masks in
    ``scratches``.

    Refuses (before writing anything) to replace an existing file unless ``overwrite``.
    """
    if image_format not in ("jpg", "png"):
        raise OptionError("image_format", "choose jpg or png", image_format)
    if count < 1:
        raise OptionError("count", "give at least one photo", count)
    for name, side in (("width", width), ("height", height)):
        if not MIN_SIDE <= side <= MAX_SIDE:
            raise OptionError(name, f"photos are {MIN_SIDE} to {MAX_SIDE} pixels a side", side)
    suffix = f".{image_format}"
    names = [f"synth_{seed + index:04d}" for index in range(count)]
    targets = [
        (
            out_dir / "images" / f"{name}{suffix}",
            out_dir / "masks" / f"{name}.png",
            out_dir / "scratches" / f"{name}.png",
        )
        for name in names
    ]
    clash = next((path for group in targets for path in group if path.exists()), None)
    if clash is not None and not overwrite:
        raise UsageError(f"{clash} exists; pass `overwrite` to replace it, or another `seed` or folder")
    for index, (image_path, mask_path, scratch_path) in enumerate(targets):
        photo = synthesize(width, height, seed + index)
        write_image(image_path, photo.image, jpeg_quality=quality)
        write_image(mask_path, photo.crack_mask, png_compression=9)
        write_image(scratch_path, photo.scratch_mask, png_compression=9)
    return [group[0] for group in targets]
