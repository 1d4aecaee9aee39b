from pathlib import Path

import numpy as np
import pytest

from crackcli.io.images import write_image


def write_photo(path: Path, width: int, height: int, seed: int = 0) -> Path:
    """A tiny textured RGB photo written as a real image file."""
    rng = np.random.default_rng(seed)
    write_image(path, rng.integers(60, 200, (height, width, 3), dtype=np.uint8))
    return path


@pytest.fixture
def photo_factory(tmp_path):
    def make(relative: str, width: int = 100, height: int = 80, seed: int = 0) -> Path:
        return write_photo(tmp_path / relative, width, height, seed)

    return make


def crack_patch(rng: np.random.Generator, size: int, crack: bool) -> np.ndarray:
    """A concrete-like texture patch, with a dark line across it when ``crack``."""
    base = rng.integers(120, 170)
    patch = np.clip(base + rng.normal(0, 12, (size, size, 1)) + rng.normal(0, 4, (size, size, 3)), 0, 255)
    if crack:
        import cv2

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


@pytest.fixture
def patch_data(tmp_path) -> Path:
    """crack/no_crack patches split into train (24 a class) and val (8 a class)."""
    return write_patch_folders(tmp_path / "patches", {"train": 24, "val": 8})


def texture_photo(
    width: int, height: int, seed: int = 0, crack_rows: tuple[int, ...] = (), thickness: int = 5
) -> np.ndarray:
    """A concrete-like RGB photo, with a dark horizontal crack line (as ``crack_patch`` draws) at each row."""
    import cv2

    rng = np.random.default_rng(seed)
    photo = np.clip(145 + rng.normal(0, 12, (height, width, 1)) + rng.normal(0, 4, (height, width, 3)), 0, 255)
    for row in crack_rows:
        cv2.line(photo, (0, row), (width - 1, row), (25.0, 25.0, 25.0), thickness)
    return photo.astype(np.uint8)


@pytest.fixture(scope="session")
def crack_model(tmp_path_factory):
    """A resnet18 trained for real on 64 px crack/no-crack patches (F = 1 on its val split), and its ONNX export.

    Returns (checkpoint, onnx file, patch folders).
    """
    from crackcli.model.export import export_checkpoint
    from crackcli.train.config import TrainConfig
    from crackcli.train.trainer import Trainer

    root = tmp_path_factory.mktemp("crack_model")
    data = write_patch_folders(root / "patches", {"train": 64, "val": 16}, size=64)
    config = TrainConfig(
        data=str(data),
        backbone="resnet18",
        weights="none",
        epochs=6,
        milestones=(4,),
        batch=16,
        image_size=64,
        workers=0,
        project=str(root / "runs"),
        name="m",
    )
    result = Trainer(config).fit()
    checkpoint = result.run_dir / "last.pt"  # trained to the end: sharper probabilities than the first F = 1 epoch
    exported = export_checkpoint(checkpoint, root / "model.onnx")
    return checkpoint, exported.path, data
