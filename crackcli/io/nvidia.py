"""The NVIDIA driver on this machine, and whether it can run a library built for a given CUDA version.

torch and ONNX Runtime report an unusable GPU as "no CUDA" (torch) or by quietly running on the CPU
(ONNX Runtime); the usual cause on a machine with a GPU is a driver older than the CUDA the wheels were
built for.  Reading the kernel module's version (Linux) lets `crack` say that in one line.
"""

from __future__ import annotations

import re
from pathlib import Path

DRIVER_VERSION_FILE = Path("/proc/driver/nvidia/version")
DEVICE_NODE = Path("/dev/nvidiactl")

# The oldest Linux driver each CUDA major version runs on (NVIDIA's CUDA release notes, minor version
# compatibility: any 12.x runtime works from 525 on).
MINIMUM_DRIVER = {13: (580, 65), 12: (525, 60), 11: (450, 80)}


def driver_present() -> bool:
    """An NVIDIA kernel driver is loaded (a GPU is, or was, there to use)."""
    return DRIVER_VERSION_FILE.exists() or DEVICE_NODE.exists()


def driver_version(version_file: Path | None = None) -> tuple[int, ...] | None:
    """The loaded driver's version, e.g. (550, 54, 14), or None when there is none or it cannot be read."""
    text = _driver_text(version_file)
    return tuple(int(part) for part in text.split(".")) if text else None


def _driver_text(version_file: Path | None) -> str | None:
    """The version as the driver writes it ("470.82.01"), or None."""
    try:
        text = (version_file or DRIVER_VERSION_FILE).read_text(errors="replace")
    except OSError:
        return None
    found = re.search(r"Kernel Module\s+(?:for \S+\s+)?(\d+\.\d+(?:\.\d+)?)\s", text)
    return found.group(1) if found else None


def driver_too_old(cuda_version: str | None, library: str, version_file: Path | None = None) -> str | None:
    """Why the loaded driver cannot run ``library`` built for ``cuda_version`` (e.g. "13.0"), with what to do;
    None when it can, when there is no driver, or when either version is unknown."""
    text = _driver_text(version_file)
    if text is None or not cuda_version:
        return None
    driver = tuple(int(part) for part in text.split("."))
    major = int(cuda_version.split(".")[0])
    needed = MINIMUM_DRIVER.get(major)
    if needed is None or driver[: len(needed)] >= needed:
        return None
    older = [cuda for cuda, minimum in sorted(MINIMUM_DRIVER.items(), reverse=True) if driver[:2] >= minimum]
    other = f", or install {library} built for CUDA {older[0]} (README, 'On a GPU')" if older else ""
    return (
        f"NVIDIA driver {text} is too old for {library} built for CUDA {cuda_version} "
        f"(needs driver {needed[0]} or newer): update the driver{other}"
    )
