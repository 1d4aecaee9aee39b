"""An exponential moving average of a network's weights, validated and saved in place of the raw weights.

Small networks trained from scratch swing from epoch to epoch at a high learning rate; the average over
the last few hundred steps is steadier and usually generalises better (Polyak averaging).  The decay
ramps up as ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates, so the first, random weights fade
out quickly instead of dominating the average for thousands of steps.
"""

from __future__ import annotations

import copy
from typing import Any

import torch


class WeightAverage:
    """``model`` holds the averaged weights (and batch-norm statistics) in eval mode; ``update`` folds in one step."""

    def __init__(self, source: torch.nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must lie between 0 and 1, got {decay}")
        self.decay = decay
        self.updates = 0
        self.model = copy.deepcopy(source).eval()
        self.model.requires_grad_(False)

    def current_decay(self) -> float:
        """The share of the average the next update keeps."""
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, source: torch.nn.Module) -> None:
        keep = self.current_decay()
        self.updates += 1
        averaged = self.model.state_dict()
        for name, value in source.state_dict().items():
            target = averaged[name]
            if target.dtype.is_floating_point:
                target.lerp_(value.detach(), 1.0 - keep)
            else:
                target.copy_(value)  # counters such as batch norm's num_batches_tracked

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any], weights: dict[str, torch.Tensor]) -> None:
        self.decay = float(state["decay"])
        self.updates = int(state["updates"])
        self.model.load_state_dict(weights)
