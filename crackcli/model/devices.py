"""Which torch device a model runs on: ``auto`` picks the best one present."""

from __future__ import annotations

import torch

from crackcli.errors import OptionError

DEVICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` is CUDA, then Apple's MPS, then the CPU; an unavailable device asked for is a usage error."""
    if name not in DEVICES:
        raise OptionError("device", f"unknown device; choose one of {', '.join(DEVICES)}", f"'{name}'")
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "mps" if mps else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise OptionError("device", "no CUDA GPU is visible to torch; use `device=cpu` or check the driver", "cuda")
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    if name == "mps" and not mps:
        raise OptionError("device", "Apple's Metal backend is not available here; use `device=cpu`", "mps")
    return torch.device(name)
