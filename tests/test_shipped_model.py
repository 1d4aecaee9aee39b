"""The shipped default model: present, loadable without code, found from a checkout and from a wheel."""

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

from crackcli.model.predictors import OnnxPredictor
from crackcli.model.shipped import DEFAULT_MODEL_NAME, DEFAULT_WEIGHTS_NAME, MODEL_ENV, TRACER_NAME, default_model
from crackcli.model.torch_files import load_plain

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "models"


def test_default_model_is_shipped_and_dense_capable(monkeypatch, tmp_path):
    monkeypatch.delenv(MODEL_ENV, raising=False)
    assert default_model() == MODELS / DEFAULT_MODEL_NAME
    # $CRACK_MODEL wins over the shipped file, whatever it names.
    monkeypatch.setenv(MODEL_ENV, str(tmp_path / "mine.onnx"))
    assert default_model() == tmp_path / "mine.onnx"
    predictor = OnnxPredictor(MODELS / DEFAULT_MODEL_NAME, "cpu")
    meta = predictor.info.meta
    assert meta.classes[meta.classes.index(meta.crack_class)] == "crack"
    assert predictor.dense
    checkpoint = load_plain(MODELS / DEFAULT_WEIGHTS_NAME, "a checkpoint")
    assert checkpoint["meta"]["backbone"] == meta.backbone
    total = sum(p.stat().st_size for p in MODELS.glob("crack-default.*"))
    assert total <= 25 * 2**20, f"shipped model files take {total / 2**20:.1f} MiB"


def test_wheel_carries_the_model_and_scan_finds_it(tmp_path, photo_factory):
    """Build the wheel, install it into a fresh prefix and scan with no --model from outside the checkout."""
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(wheels),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    (wheel,) = wheels.glob("crackcli-*.whl")
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "show", "--files", "crackcli"], capture_output=True, text=True
    ).stdout
    names = zipfile.ZipFile(wheel).namelist()
    for name in (DEFAULT_MODEL_NAME, TRACER_NAME):
        assert any(n.endswith(f".data/data/share/crackcli/models/{name}") for n in names)

    prefix = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(prefix)], check=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--ignore-installed",
            "--prefix",
            str(prefix),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    # --ignore-installed: installing into another prefix must leave this environment's crackcli alone.
    assert (
        subprocess.run(
            [sys.executable, "-m", "pip", "show", "--files", "crackcli"], capture_output=True, text=True
        ).stdout
        == installed
    )
    # The fresh venv borrows this environment's dependencies, but not its editable crackcli.
    purelib = Path(sysconfig.get_path("purelib", vars={"base": str(prefix), "platbase": str(prefix)}))
    (purelib / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    photo = photo_factory("field.jpg", 400, 300)
    env = {k: v for k, v in os.environ.items() if k != "CRACK_MODEL"}
    proc = subprocess.run(
        [
            str(prefix / "bin" / "python"),
            "-m",
            "crackcli",
            "scan",
            str(photo),
            "--out",
            str(tmp_path / "scan"),
            "--json",
            "--quiet",
            "--trace",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    shipped = prefix / "share" / "crackcli" / "models"
    assert Path(report["model"]).resolve() == (shipped / DEFAULT_MODEL_NAME).resolve()
    assert Path(report["provenance"]["settings"]["trace"]["tracer"]).resolve() == (shipped / TRACER_NAME).resolve()
    assert Path(
        json.loads(
            subprocess.run(
                [
                    str(prefix / "bin" / "python"),
                    "-c",
                    "import crackcli; print(__import__('json').dumps(crackcli.__file__))",
                ],
                capture_output=True,
                text=True,
                cwd=tmp_path,
                check=True,
            ).stdout
        )
    ).is_relative_to(prefix)
