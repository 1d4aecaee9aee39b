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
        self._cached: tuple[torch.nn.Module, tuple[list, list], tuple[list, list]] | None = None

    def current_decay(self) -> float:
        """The share of the average the next update keeps."""
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, source: torch.nn.Module) -> None:
        keep = self.current_decay()
        self.updates += 1
        floats, counters = self._pairs(source)
        # One fused launch for all float tensors (a per-tensor loop made 320 launches a step on ResNet50).
        torch._foreach_lerp_(floats[0], floats[1], 1.0 - keep)
        if counters[0]:
            torch._foreach_copy_(counters[0], counters[1])  # e.g. batch norm's num_batches_tracked

    def _pairs(self, source: torch.nn.Module) -> tuple[tuple[list, list], tuple[list, list]]:
        """(averaged, source) tensor lists, floats and counters, taken once per source: parameters and
        buffers stay the same tensors for the whole run (the trainer moves the model before averaging)."""
        if self._cached is None or self._cached[0] is not source:
            mine = dict(self.model.named_parameters()) | dict(self.model.named_buffers())
            theirs = dict(source.named_parameters()) | dict(source.named_buffers())
            names = list(mine)
            floating = [n for n in names if mine[n].dtype.is_floating_point]
            counting = [n for n in names if not mine[n].dtype.is_floating_point]
            self._cached = (
                source,
                ([mine[n] for n in floating], [theirs[n].detach() for n in floating]),
                ([mine[n] for n in counting], [theirs[n] for n in counting]),
            )
        return self._cached[1], self._cached[2]

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any], weights: dict[str, torch.Tensor]) -> None:
        self.decay = float(state["decay"])
        self.updates = int(state["updates"])
        self.model.load_state_dict(weights)
