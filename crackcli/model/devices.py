"""Which torch device a model runs on: ``auto`` picks the best one present."""

from __future__ import annotations

import os
import warnings

import torch

from crackcli.errors import OptionError
from crackcli.io.nvidia import driver_present, driver_too_old

DEVICES = ("auto", "cpu", "cuda", "mps")


def cuda_available() -> bool:
    """torch can use a CUDA GPU; its own warning on failure (e.g. "driver too old") is not printed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.cuda.is_available()


def cuda_unusable_note() -> str | None:
    """Why torch cannot use the NVIDIA GPU this machine has, or None (no NVIDIA driver, or CUDA works)."""
    if not driver_present() or cuda_available():
        return None
    if torch.version.cuda is None:
        return "this torch is a CPU-only build; install a CUDA build of torch (README, 'On a GPU')"
    too_old = driver_too_old(torch.version.cuda, "torch")
    if too_old:
        return too_old
    hidden = os.environ.get("CUDA_VISIBLE_DEVICES")
    if hidden is not None and not hidden.strip(" ,"):
        return "CUDA_VISIBLE_DEVICES is empty, which hides every GPU from torch"
    return (
        f"an NVIDIA driver is loaded but torch (CUDA {torch.version.cuda}) finds no usable GPU: `nvidia-smi` tells why"
    )


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` is CUDA, then Apple's MPS, then the CPU; an unavailable device asked for is a usage error."""
    if name not in DEVICES:
        raise OptionError("device", f"unknown device; choose one of {', '.join(DEVICES)}", f"'{name}'")
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    cuda = cuda_available()
    if name == "auto":
        name = "cuda" if cuda else "mps" if mps else "cpu"
    if name == "cuda":
        if not cuda:
            why = cuda_unusable_note() or "no CUDA GPU is visible to torch"
            raise OptionError("device", f"{why}; or use `device=cpu`", "cuda")
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    if name == "mps" and not mps:
        raise OptionError("device", "Apple's Metal backend is not available here; use `device=cpu`", "mps")
    return torch.device(name)
