from pathlib import Path

import numpy as np
import pytest

from crackcli.imageio import write_image


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
