"""What a checkpoint must hold beyond the released weights for ``--resume`` to continue exactly.

The raw weights when a weight average is released instead, the average's own state, the loss's
covariance estimator, the optimizer, the gradient scaler and the random state: restored, a resumed run
on the CPU ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from crackcli.train.ema import WeightAverage


@dataclass
class TrainingParts:
    """The pieces of a run whose state changes with every step."""

    model: nn.Module
    average: WeightAverage | None
    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    device: torch.device

    @property
    def released_model(self) -> nn.Module:
        """The weights validated, saved as the checkpoint's model and exported: the average when there is one."""
        return self.average.model if self.average is not None else self.model

    def state(self) -> dict[str, Any]:
        """The checkpoint entries that resuming needs."""
        rng = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        averaging: dict[str, Any] = {}
        if self.average is not None:  # the checkpoint's model is the average; resuming needs the raw weights too
            averaging = {
                "trained_model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
                "ema": self.average.state_dict(),
            }
        return {
            **averaging,
            "loss": self.loss_fn.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "grad_scaler": self.scaler.state_dict(),
            "rng": rng,
        }

    def restore(self, payload: dict[str, Any]) -> None:
        """Put every part back as ``state()`` saved it in ``payload`` (a loaded checkpoint)."""
        if self.average is not None:
            self.model.load_state_dict(payload["trained_model"])
            self.average.load_state_dict(payload["ema"], payload["model"])
        else:
            self.model.load_state_dict(payload["model"])
        self.loss_fn.load_state_dict(payload["loss"])
        self.optimizer.load_state_dict(payload["optimizer"])
        restore_scaler(self.scaler, payload["grad_scaler"])
        torch.set_rng_state(payload["rng"]["torch"])
        if self.device.type == "cuda" and "cuda" in payload["rng"]:
            torch.cuda.set_rng_state(payload["rng"]["cuda"], self.device)


def restore_scaler(scaler: torch.amp.GradScaler, saved: dict[str, Any]) -> None:
    """Put back a gradient scaler's state; a run without fp16 (CPU, bf16) saved an empty one, which a
    scaler in use cannot load, and which leaves nothing to restore (an fp16 run resumed from it starts
    its loss scale afresh)."""
    if saved:
        scaler.load_state_dict(saved)
