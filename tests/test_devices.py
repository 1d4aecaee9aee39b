"""An NVIDIA driver that cannot run the installed CUDA builds is named in one line, and stdout stays clean."""

import json

import pytest
from test_train import tiny_config

from crackcli.errors import OptionError
from crackcli.io import nvidia
from crackcli.model.devices import cuda_unusable_note, resolve_device
from crackcli.model.predictors import create_session, onnxruntime_cuda_version
from crackcli.train.events import TrainEvents
from crackcli.train.trainer import Trainer

PROPRIETARY = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  {}  Thu Feb 22 01:44:30 UTC 2024\nGCC version:  gcc 12\n"
OPEN = "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  {}  Release Build  (dvs-builder@U16)\n"


@pytest.fixture
def driver(tmp_path, monkeypatch):
    """Pretend the kernel module of the given version is loaded (this machine has none)."""

    def load(version: str, template: str = PROPRIETARY) -> None:
        path = tmp_path / "nvidia-version"
        path.write_text(template.format(version))
        monkeypatch.setattr(nvidia, "DRIVER_VERSION_FILE", path)

    return load


@pytest.mark.parametrize("template", [PROPRIETARY, OPEN])
def test_the_driver_version_is_read_from_either_kernel_module(driver, template):
    driver("550.54.14", template)
    assert nvidia.driver_present()
    assert nvidia.driver_version() == (550, 54, 14)


def test_no_driver_no_version_and_no_complaint(tmp_path, monkeypatch):
    monkeypatch.setattr(nvidia, "DRIVER_VERSION_FILE", tmp_path / "missing")
    assert nvidia.driver_version() is None
    assert nvidia.driver_too_old("13.0", "torch") is None


@pytest.mark.parametrize(
    ("version", "cuda", "advice"),
    [
        ("550.54.14", "13.0", "built for CUDA 12"),  # CUDA 12 builds would run
        ("470.82.01", "13.0", "built for CUDA 11"),
        ("418.40.04", "13.0", "update the driver"),  # nothing in the table runs there
    ],
)
def test_a_driver_too_old_for_the_build_says_which_driver_is_needed_and_what_else_runs(driver, version, cuda, advice):
    driver(version)
    note = nvidia.driver_too_old(cuda, "torch")
    assert note is not None and "\n" not in note
    assert version in note and "needs driver 580" in note and advice in note


@pytest.mark.parametrize("version", ["580.65.06", "590.12"])
def test_a_new_enough_driver_is_fine(driver, version):
    driver(version)
    assert nvidia.driver_too_old("13.0", "torch") is None
    assert nvidia.driver_too_old("12.4", "onnxruntime-gpu") is None


def test_asking_torch_for_cuda_with_an_old_driver_names_the_driver(driver, monkeypatch):
    driver("550.54.14")
    monkeypatch.setattr("torch.version.cuda", "13.0")
    with pytest.raises(OptionError, match="driver 550.54.14 is too old"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"


def test_an_empty_cuda_visible_devices_is_named_when_the_driver_is_fine(driver, monkeypatch):
    driver("580.65.06")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert "CUDA_VISIBLE_DEVICES" in (cuda_unusable_note() or "")


def test_training_on_auto_says_in_one_line_why_the_gpu_is_not_used(driver, monkeypatch, patch_data, tmp_path):
    driver("550.54.14")
    monkeypatch.setattr("torch.version.cuda", "13.0")
    warnings: list[str] = []

    class Events(TrainEvents):
        def warning(self, message: str) -> None:
            warnings.append(message)

    trainer = Trainer(tiny_config(patch_data, tmp_path, device="auto", epochs=1), events=Events())
    assert trainer.device.type == "cpu"
    assert [w for w in warnings if w.startswith("training on the CPU: NVIDIA driver 550.54.14")]


def test_onnx_runtime_on_cuda_falls_back_in_silence_and_names_the_driver(driver, crack_model, capfd):
    """A real ONNX Runtime session asked for CUDA on this GPU-less machine: the CUDA provider cannot start,
    nothing reaches stdout or stderr (ONNX Runtime's own banners included), and the reason names the driver."""
    if onnxruntime_cuda_version() is None:
        pytest.skip("this onnxruntime has no CUDA build")
    driver("550.54.14")
    _, onnx_path, _ = crack_model
    session, fallback = create_session(onnx_path.read_bytes(), device="cuda")
    assert session.get_providers() == ["CPUExecutionProvider"]
    assert fallback is not None and "driver 550.54.14 is too old for onnxruntime-gpu" in fallback
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""


def test_crack_info_lists_what_keeps_the_gpu_unused(driver, monkeypatch):
    from typer.testing import CliRunner

    from crackcli.cli import app

    driver("550.54.14")
    monkeypatch.setattr("torch.version.cuda", "13.0")
    result = CliRunner().invoke(app, ["info", "--json"])
    assert result.exit_code == 0
    problems = json.loads(result.stdout)["gpu_problems"]
    assert any("too old for torch" in problem for problem in problems)
