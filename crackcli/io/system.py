"""What `crack info` reports about the installation: versions, devices, runtimes, threads."""

from __future__ import annotations

import os
import platform
from typing import Any

from crackcli import __version__

_PACKAGES = (
    "torch",
    "torchvision",
    "onnx",
    "onnxruntime",
    "onnxruntime-gpu",
    "opencv-python-headless",
    "pillow",
    "numpy",
    "typer",
    "rich",
)


def package_versions() -> dict[str, str]:
    from importlib import metadata  # 20 ms of imports that only `crack info` needs

    versions = {"crackcli": __version__, "python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def torch_devices() -> list[str]:
    import torch

    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("mps")
    return devices


def onnxruntime_providers() -> list[str]:
    import onnxruntime

    return list(onnxruntime.get_available_providers())


def usable_cpus() -> int:
    """CPUs this process may run on (affinity and container limits), not all the host has."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cpu_threads() -> dict[str, int]:
    import torch

    return {"logical_cpus": os.cpu_count() or 1, "usable_cpus": usable_cpus(), "torch_threads": torch.get_num_threads()}


def environment_report() -> dict[str, Any]:
    return {
        "versions": package_versions(),
        "platform": platform.platform(),
        "torch_devices": torch_devices(),
        "onnxruntime_providers": onnxruntime_providers(),
        "cpu": cpu_threads(),
    }
