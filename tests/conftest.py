import os
from pathlib import Path

import pytest
from helpers import write_patch_folders, write_photo


def pytest_configure(config: pytest.Config) -> None:
    """The suite runs on the CPU even on a GPU machine (exact resumes, one device per comparison): GPUs
    are hidden from this process and its subprocesses unless the GPU set is asked for (``-m gpu``)."""
    marks = config.getoption("markexpr") or ""
    if "gpu" not in marks or "not gpu" in marks:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""


@pytest.fixture
def photo_factory(tmp_path):
    def make(relative: str, width: int = 100, height: int = 80, seed: int = 0) -> Path:
        return write_photo(tmp_path / relative, width, height, seed)

    return make


@pytest.fixture
def patch_data(tmp_path) -> Path:
    """crack/no_crack patches split into train (24 a class) and val (8 a class)."""
    return write_patch_folders(tmp_path / "patches", {"train": 24, "val": 8})


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
