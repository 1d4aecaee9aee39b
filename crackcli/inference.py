"""One ``Predictor`` interface over the model files `crack` reads: `crack train` checkpoints (``.pt``) and,
with `crack export`, ONNX files.  A predictor takes uint8 (N, 3, S, S) RGB batches and returns class
probabilities (N, C) as float32 NumPy arrays.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from crackcli.checkpoint import ModelMeta, load_checkpoint, model_from_checkpoint
from crackcli.distributed import resolve_device
from crackcli.errors import UsageError


class Predictor(Protocol):
    meta: ModelMeta
    source: Path

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities (N, C) of a uint8 (N, 3, S, S) batch."""
        ...

    def describe(self) -> str:
        """One line: the file, the runtime and the device it runs on."""
        ...


class TorchPredictor:
    """A `crack train` checkpoint run by PyTorch (eager), on the CPU or a GPU."""

    def __init__(self, path: Path, device: str = "auto") -> None:
        self.source = path
        self.model, self.meta = model_from_checkpoint(load_checkpoint(path))
        self.device = resolve_device(device)
        self.model.to(self.device)

    @torch.inference_mode()
    def predict(self, batch: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(batch).to(self.device)
        return torch.softmax(self.model(x).float(), dim=1).cpu().numpy()

    def describe(self) -> str:
        return f"{self.source} (PyTorch checkpoint, {self.meta.backbone}, on {self.device})"


def load_predictor(path: Path, device: str = "auto") -> Predictor:
    """The predictor for a model file, chosen by its suffix."""
    suffix = path.suffix.lower()
    if suffix in (".pt", ".pth"):
        return TorchPredictor(path, device)
    raise UsageError(f"{path}: unknown model file type '{suffix}'; pass a .pt checkpoint from crack train")
