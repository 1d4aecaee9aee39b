"""Output faults in every writing command: an output path that is a file, a folder without write
permission, a full disk.  Each ends in one line naming the path and the fix, with no traceback and no
temporary file left.  The full disk is a real one: a small tmpfs mounted for the test (root only)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from corpus import PERMISSIONS_BITE, UNPRIVILEGED
from helpers import write_patch_folders, write_photo

MODEL = Path(__file__).parent.parent / "models" / "crack-default.onnx"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A photo, a folder of them, a patch folder and a checkpoint to export."""
    root = tmp_path_factory.mktemp("faults")
    write_photo(root / "photos" / "big.jpg", 1600, 1200, seed=1)
    patches = write_patch_folders(root / "patches", {"train": 6, "val": 2}, size=32)
    checkpoint = root / "model.pt"
    from crackcli.model.backbones import IMAGENET_MEAN, IMAGENET_STD, build_model
    from crackcli.model.checkpoint import save_checkpoint
    from crackcli.model.meta import ModelMeta

    meta = ModelMeta("shufflenet_v2_x0_5", ("crack", "no_crack"), "crack", 32, IMAGENET_MEAN, IMAGENET_STD)
    save_checkpoint(checkpoint, meta, build_model("shufflenet_v2_x0_5", 2, "none"))
    return {"photos": root / "photos", "patches": patches, "checkpoint": checkpoint}


def commands(inputs, out: Path) -> dict[str, list[str]]:
    """Each writing command, writing under ``out``."""
    return {
        "scan": ["scan", str(inputs["photos"]), "--model", str(MODEL), "--out", str(out)],
        "prepare": ["prepare", str(inputs["photos"]), "--out", str(out), "--labels", "none", "--size", "64"],
        "synth": ["synth", str(out), "--count", "2", "--width", "800", "--height", "600"],
        "train": [
            *["train", str(inputs["patches"]), "--backbone", "shufflenet_v2_x0_5", "--weights", "none"],
            *["--image-size", "32", "--epochs", "1", "--batch", "4", "--workers", "0", "--project", str(out)],
        ],
        "export": ["export", str(inputs["checkpoint"]), "--out", str(out / "model.onnx")],
    }


def run(command: list[str], prefix: list[str] = ()) -> subprocess.CompletedProcess:
    quiet = ["--quiet"] if command[0] not in ("export", "synth") else []
    full = [*prefix, sys.executable, "-m", "crackcli", *command, *quiet]
    return subprocess.run(full, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})


def assert_one_line(result: subprocess.CompletedProcess, path: Path, says: str) -> None:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("crack: error:")]
    assert len(lines) == 1, result.stderr
    assert str(path) in lines[0] and says in lines[0], lines[0]


@pytest.mark.parametrize("name", ["scan", "prepare", "synth", "train", "export"])
def test_an_output_path_that_is_a_file(inputs, tmp_path, name):
    blocker = tmp_path / "taken"
    blocker.write_text("a file the user made")
    result = run(commands(inputs, blocker)[name])
    assert_one_line(result, blocker, "a file is in the way")
    assert blocker.read_text() == "a file the user made"


@pytest.mark.skipif(not PERMISSIONS_BITE, reason="root without setpriv: write permissions do not bite")
@pytest.mark.parametrize("name", ["scan", "prepare", "synth", "train", "export"])
def test_an_output_folder_without_write_permission(inputs, tmp_path, name):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        result = run(commands(inputs, locked / "out")[name], UNPRIVILEGED)
    finally:
        locked.chmod(0o755)
    assert_one_line(result, locked, "no permission to write")
    assert list(locked.iterdir()) == []


@pytest.fixture
def full_disk(tmp_path):
    """A folder on a 160 KiB file system: real ENOSPC after a few files."""
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {made.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


@pytest.mark.parametrize("name", ["scan", "prepare", "synth", "train", "export"])
def test_a_full_disk(inputs, full_disk, name):
    out = full_disk / "out"
    result = run(commands(inputs, out)[name])
    assert_one_line(result, out, "the disk is full")
    assert not [p for p in full_disk.rglob("*") if p.name.endswith(".part")]
