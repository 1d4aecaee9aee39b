"""Reading PyTorch files without running code: ``torch.load(weights_only=True)`` with one-line errors."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from crackcli.errors import CrackError

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _reason(exc: BaseException) -> str:
    """The informative line of torch's long message (e.g. the global it refused), without colour codes."""
    lines = [_ANSI.sub("", line).strip() for line in str(exc).splitlines() if line.strip()]
    for line in lines:
        if "Unsupported global" in line or "WeightsUnpickler error" in line:
            return line.split("Please use", 1)[0].strip()
    return lines[0][:160] if lines else exc.__class__.__name__


def load_plain(path: Path, what: str) -> Any:
    """The tensors and plain data in ``path``; anything that would need code to load is refused, never run."""
    if not path.is_file():
        raise CrackError(f"{path}: {what} not found; check the path")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure means the file is not a safe, plain PyTorch file
        raise CrackError(
            f"{path}: refused as {what} ({_reason(exc)}); only tensors and plain data are loaded, never code"
        ) from None


def nonfinite_weights(weights: dict[str, Any]) -> list[str]:
    """Names of the floating-point tensors holding NaN or an infinity: the mark of a diverged run."""
    return [
        name
        for name, t in weights.items()
        if isinstance(t, torch.Tensor) and t.is_floating_point() and not bool(torch.isfinite(t).all())
    ]
