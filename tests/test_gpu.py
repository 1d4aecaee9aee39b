"""The GPU set: what only a CUDA machine can check.  Not part of the default run (`make test` hides GPUs
and deselects these); a GPU owner runs `.venv/bin/python -m pytest -m gpu` (see docs/BENCHMARKS.md)."""

import json
import subprocess
import sys

import pytest
import torch
from helpers import texture_photo, write_patch_folders

from crackcli.io.images import write_image
from crackcli.train.config import TrainConfig
from crackcli.train.device_setup import amp_dtype_for
from crackcli.train.trainer import Trainer

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def tiny_config(data, tmp_path, device: str, **changes) -> TrainConfig:
    settings = dict(
        data=str(data),
        backbone="resnet18",
        weights="none",
        epochs=2,
        batch=16,
        image_size=64,
        workers=2,
        project=str(tmp_path / "runs"),
        name="gpu",
        device=device,
    )
    return TrainConfig(**{**settings, **changes})


def test_bf16_only_where_the_gpu_has_it_natively_else_fp16_with_a_scaler(tmp_path):
    native = torch.cuda.is_bf16_supported(including_emulation=False)
    assert amp_dtype_for(torch.device("cuda"), None) == (torch.bfloat16 if native else torch.float16)
    data = write_patch_folders(tmp_path / "patches", {"train": 16, "val": 8}, size=64)
    trainer = Trainer(tiny_config(data, tmp_path, "cuda", epochs=1))
    assert trainer.scaler.is_enabled() == (not native)
    result = trainer.fit()
    assert (result.run_dir / "best.pt").is_file()


def test_a_cpu_run_resumes_on_the_gpu_in_fp16(tmp_path):
    data = write_patch_folders(tmp_path / "patches", {"train": 16, "val": 8}, size=64)
    cpu = Trainer(tiny_config(data, tmp_path, "cpu", epochs=1, workers=0)).fit()
    last = cpu.run_dir / "last.pt"
    payload = torch.load(last, weights_only=False)
    payload["config"]["device"], payload["config"]["epochs"], payload["config"]["amp"] = "cuda", 2, True
    torch.save(payload, last)
    # An empty gradient-scaler state (the CPU run had none) must not stop an fp16 run from resuming.
    trainer = Trainer.resume(last)
    assert trainer.device.type == "cuda"
    trainer.fit()


def test_scan_on_cuda_runs_on_the_cuda_provider_and_stdout_stays_json(crack_model, tmp_path):
    _, model, _ = crack_model
    photo = tmp_path / "wall.jpg"
    write_image(photo, texture_photo(256, 192, crack_rows=(96,)))
    command = [sys.executable, "-m", "crackcli", "scan", str(photo), "--model", str(model), "--patch", "64"]
    done = subprocess.run([*command, "--device", "cuda", "--json", "--out", str(tmp_path / "o")], capture_output=True)
    assert done.returncode == 0, done.stderr.decode()
    lines = done.stdout.decode().splitlines()
    assert len(lines) == 1 and "CUDA" in json.loads(lines[0])["runtime"]


def test_the_tracer_runs_on_the_cuda_provider_at_one_tile_shape_as_on_the_cpu():
    import numpy as np

    from crackcli.model.shipped import TRACER_NAME, shipped_file
    from crackcli.model.tracers import OnnxTracer

    path = shipped_file(TRACER_NAME)
    gpu = OnnxTracer(path, "cuda")
    assert gpu.session.get_providers()[0] == "CUDAExecutionProvider" and gpu.pad_tiles
    gray = texture_photo(700, 600, seed=5, crack_rows=(300,), thickness=3)[..., 0]
    expected = OnnxTracer(path, "cpu", pad_tiles=True).probabilities(gray)
    np.testing.assert_allclose(gpu.probabilities(gray), expected, atol=1e-3)
