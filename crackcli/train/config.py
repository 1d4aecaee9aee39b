"""Every option of a training run, checked where it is defined; the paper's recipe by default.

The defaults are the paper's recipe: SGD with momentum, batch 64, lr 0.01 divided by 10 at epochs
65, 95 and 125 of 150, random horizontal flips, 224×224 inputs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from crackcli.errors import OptionError

PAPER_EPOCHS = 150
PAPER_MILESTONES = (65, 95, 125)
# A minimum filter wider than this would merge neighbouring cracks and texture into dark blotches.
MAX_MIN_FILTER_PX = 15


@dataclass
class TrainConfig:
    """Every option of a run; saved in ``args.json`` and in checkpoints, so ``--resume`` needs nothing else."""

    data: str
    backbone: str = "resnet50"
    weights: str = "imagenet"
    loss: str = "igmsda"
    alpha0: float = 2.5
    lambda0: float = 0.5
    gm_samples: int = 8
    epochs: int = PAPER_EPOCHS
    batch: int = 64
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    milestones: tuple[int, ...] | None = None  # None: the paper's, scaled to `epochs`
    image_size: int = 224
    min_filter_px: int | None = None  # None: that of the --weights checkpoint, else 1 (none)
    augment: str = "paper"
    synthetic_cracks: float = 0.0  # share of clean training patches given a painted hairline
    synthetic_stains: float = 0.0  # share of clean training patches given dark blots (staying clean)
    synthetic_confusers: float = 0.0  # share given a joint, marking, grid, edge, tyre mark or streaks (clean)
    synthetic_surfaces: float = 0.0  # share replaced by procedural asphalt, half of it with a road crack
    finer_clean: float = 0.0  # share of clean training patches read at twice the resolution (half-side crop)
    ema: float = 0.0  # decay of the weight average validated and saved; 0: the raw weights
    val_fraction: float = 0.2
    limit_per_class: int | None = None
    device: str = "auto"
    amp: bool | None = None  # None: on for CUDA
    sync_bn: bool = True  # with several GPUs, batch-norm statistics over the global batch
    workers: int | None = None
    seed: int = 0
    strict: bool = False
    crack_class: str | None = None
    project: str = "runs/train"
    name: str = "exp"

    def __post_init__(self) -> None:
        for name, least in (("epochs", 1), ("batch", 2), ("image_size", 16)):
            if getattr(self, name) < least:
                raise OptionError(name, f"must be at least {least}", getattr(self, name))
        if self.min_filter_px is not None and not 1 <= self.min_filter_px <= MAX_MIN_FILTER_PX:
            why = f"give a side from 1 (none) to {MAX_MIN_FILTER_PX} photo pixels, e.g. 3"
            raise OptionError("min_filter", why, self.min_filter_px)
        if not 0 < self.lr < math.inf:
            raise OptionError("lr", "give a learning rate above 0, e.g. 0.01", self.lr)
        if self.workers is not None and self.workers < 0:
            raise OptionError("workers", "give a number of loader processes (0: none)", self.workers)
        if self.limit_per_class is not None and self.limit_per_class < 1:
            raise OptionError("limit_per_class", "must be at least 1", self.limit_per_class)
        if not 0.0 <= self.ema < 1.0:
            raise OptionError("ema", "give a decay per step between 0 (off) and 1, e.g. 0.998", self.ema)
        if not 0.0 < self.val_fraction < 1.0:
            raise OptionError("val_fraction", "must be between 0 and 1", self.val_fraction)
        if not 0.0 <= self.finer_clean <= 1.0:
            raise OptionError("finer_clean", "must be a share between 0 and 1", self.finer_clean)
        painted = ("synthetic_cracks", "synthetic_stains", "synthetic_confusers", "synthetic_surfaces")
        for name in painted:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise OptionError(name, "must be a share between 0 and 1", getattr(self, name))
        if sum(getattr(self, name) for name in painted) > 1:
            others = ", ".join(f"`{name}` {getattr(self, name)}" for name in painted[1:])
            raise OptionError(
                "synthetic_cracks", f"and {others} add up to more than all clean patches", self.synthetic_cracks
            )

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["milestones"] = list(self.milestones) if self.milestones is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if values.get("milestones") is not None:
            values["milestones"] = tuple(int(m) for m in values["milestones"])
        return cls(**values)

    def resolved_milestones(self) -> tuple[int, ...]:
        if self.milestones is not None:
            return tuple(sorted(self.milestones))
        return tuple(max(1, round(m * self.epochs / PAPER_EPOCHS)) for m in PAPER_MILESTONES)

    def lr_at(self, epoch: int) -> float:
        """Step schedule: the learning rate divided by 10 at each milestone reached (epochs count from 0)."""
        return self.lr * 0.1 ** sum(epoch >= m for m in self.resolved_milestones())


def parse_milestones(text: str | None) -> tuple[int, ...] | None:
    """``65,95,125`` -> (65, 95, 125); empty text for a constant learning rate."""
    if text is None:
        return None
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise OptionError("milestones", "give epoch numbers separated by commas, e.g. 65,95,125", f"'{text}'") from None
