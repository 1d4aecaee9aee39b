"""Test data made on the spot: tiny textured photos and patch folders written as real image files."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from crackcli.io.images import write_image


def write_photo(path: Path, width: int, height: int, seed: int = 0) -> Path:
    """A tiny textured RGB photo written as a real image file."""
    rng = np.random.default_rng(seed)
    write_image(path, rng.integers(60, 200, (height, width, 3), dtype=np.uint8))
    return path


def crack_patch(rng: np.random.Generator, size: int, crack: bool) -> np.ndarray:
    """A concrete-like texture patch, with a dark line across it when ``crack``."""
    base = rng.integers(120, 170)
    patch = np.clip(base + rng.normal(0, 12, (size, size, 1)) + rng.normal(0, 4, (size, size, 3)), 0, 255)
    if crack:
        a, b = rng.integers(0, size, 2), rng.integers(0, size, 2)
        if rng.random() < 0.5:
            a[0], b[0] = 0, size - 1
        else:
            a[1], b[1] = 0, size - 1
        cv2.line(patch, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), (25.0, 25.0, 25.0), max(1, size // 12))
    return patch.astype(np.uint8)


def write_patch_folders(
    root: Path,
    per_class: dict[str, int],
    size: int = 32,
    seed: int = 0,
    classes: tuple[str, ...] = ("crack", "no_crack"),
) -> Path:
    """Class folders of tiny PNG patches: ``per_class`` maps a split name ('' for none) to images per class."""
    rng = np.random.default_rng(seed)
    for split, count in per_class.items():
        for name in classes:
            for i in range(count):
                write_image(root / split / name / f"{name}_{i:03d}.png", crack_patch(rng, size, name == "crack"))
    return root


def texture_photo(
    width: int, height: int, seed: int = 0, crack_rows: tuple[int, ...] = (), thickness: int = 5
) -> np.ndarray:
    """A concrete-like RGB photo, with a dark horizontal crack line (as ``crack_patch`` draws) at each row."""
    rng = np.random.default_rng(seed)
    photo = np.clip(145 + rng.normal(0, 12, (height, width, 1)) + rng.normal(0, 4, (height, width, 3)), 0, 255)
    for row in crack_rows:
        cv2.line(photo, (0, row), (width - 1, row), (25.0, 25.0, 25.0), thickness)
    return photo.astype(np.uint8)
