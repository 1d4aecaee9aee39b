"""What a model file says about the model inside, shared by checkpoints and ONNX files (imports no torch,
so scanning with an ONNX model starts fast)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class ModelMeta:
    """What a model needs around it: its architecture, classes and input convention."""

    backbone: str
    classes: tuple[str, ...]
    crack_class: str | None
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    # Side in photo pixels of the window that becomes one model input (`crack prepare`'s patch size);
    # the window is resized to ``image_size``.
    patch_size: int = 224
    # Logits are divided by it before the softmax (fitted on validation data by `crack train`).
    # Checkpoints keep the raw weights and fold it into the head when loaded; ONNX graphs have it folded in.
    temperature: float = 1.0
    # Side in photo pixels of the grey-level minimum filter run before a photo or patch shrinks to the
    # model's input (``data.preprocess``): a crack thinner than the shrink stays dark instead of being
    # averaged into the surface.  1: none.
    min_filter_px: int = 1

    def __post_init__(self) -> None:
        if not 0.0 < self.temperature < math.inf:
            raise ValueError(f"temperature {self.temperature} is not a positive number")
        if self.min_filter_px < 1:
            raise ValueError(f"min_filter_px {self.min_filter_px} is below 1")

    def format_version(self) -> int:
        """The format version a file holding this model is written with: 2 where it has a minimum filter, so
        that a crack of before version 2, which would skip the filter, refuses the file instead."""
        return 2 if self.min_filter_px > 1 else 1

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {**data, "classes": list(self.classes), "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelMeta:
        return cls(
            backbone=str(data["backbone"]),
            classes=tuple(str(c) for c in data["classes"]),
            crack_class=None if data.get("crack_class") is None else str(data["crack_class"]),
            image_size=int(data["image_size"]),
            mean=tuple(float(v) for v in data["mean"]),
            std=tuple(float(v) for v in data["std"]),
            patch_size=int(data.get("patch_size", 224)),
            temperature=float(data.get("temperature", 1.0)),
            min_filter_px=int(data.get("min_filter_px", 1)),
        )


def default_crack_class(classes: tuple[str, ...]) -> str | None:
    """The class a scanner reports as crack: the one named "crack", if any."""
    return "crack" if "crack" in classes else None
