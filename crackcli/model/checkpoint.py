"""`crack train` checkpoints: tensors and plain data only, read without running code, written atomically.

A checkpoint holds what a scanner needs to use the model (``ModelMeta``) and what training needs to
continue exactly where it stopped (optimizer, loss estimator, epoch, random state, history).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from torch import nn

from crackcli import __version__
from crackcli.errors import CrackError, DivergedWeights
from crackcli.io.atomic import atomic_writer
from crackcli.model.backbones import CrackNet, build_model
from crackcli.model.calibration import fold_temperature
from crackcli.model.meta import ModelMeta
from crackcli.model.torch_files import load_plain, nonfinite_weights

FORMAT = "crack-checkpoint"
FORMAT_VERSION = 2  # the newest this crack reads (files: ModelMeta.format_version)


def save_checkpoint(path: Path, meta: ModelMeta, model: nn.Module, **state: Any) -> None:
    """Write ``path`` atomically and durably: a crash leaves the previous checkpoint intact; weights that
    are not finite are refused, so a diverged run never leaves a model behind."""
    broken = nonfinite_weights(model.state_dict())
    if broken:
        raise DivergedWeights(str(path), broken)
    payload = {
        "format": FORMAT,
        "format_version": meta.format_version(),
        "crackcli_version": __version__,
        "meta": meta.as_dict(),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **state,
    }
    _write(path, payload)


def _write(path: Path, payload: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with atomic_writer(path, durable=True) as handle:
        handle.write(buffer.getbuffer())


# What a checkpoint needs to be scanned, exported, described and fine-tuned from; the rest (optimizer,
# covariance estimator, random state) only serves --resume.
RELEASE_KEYS = (
    "format",
    "format_version",
    "crackcli_version",
    "meta",
    "model",
    "epoch",
    "config",
    "best",
    "summary",
    "history",
)


def save_release(source: Path, target: Path, temperature: float | None = None) -> None:
    """Write ``source`` without its training state: the file to ship or to fine-tune from; with
    ``temperature``, that one instead of the fitted one (as `crack export --temperature`)."""
    payload = load_checkpoint(source)
    _write(target, with_temperature({k: payload[k] for k in RELEASE_KEYS if k in payload}, temperature))


def with_temperature(payload: dict[str, Any], temperature: float | None) -> dict[str, Any]:
    """A loaded checkpoint whose model description names ``temperature`` instead of its own (None: as it is)."""
    if temperature is None:
        return payload
    return {**payload, "meta": {**payload["meta"], "temperature": temperature}}


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``: a file carrying code is refused, never run."""
    payload = load_plain(path, "a crack checkpoint")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CrackError(
            f"{path}: not a crack train checkpoint (no '{FORMAT}' header); for plain weights use `weights`"
        )
    if int(payload.get("format_version", 0)) > FORMAT_VERSION:
        raise CrackError(f"{path}: written by a newer crack ({payload.get('crackcli_version')}); upgrade crackcli")
    weights = payload.get("model")
    broken = nonfinite_weights(weights) if isinstance(weights, dict) else []
    if broken:
        raise DivergedWeights(str(path), broken)
    return payload


def weights_min_filter(weights: str) -> int:
    """The minimum filter (``ModelMeta.min_filter_px``) of a crack checkpoint given as starting weights, so
    that a fine-tune sees photos as its starting model did; 1 for plain weights, ImageNet's or none."""
    path = Path(weights)
    if weights in ("none", "imagenet") or not path.is_file():
        return 1
    payload = load_plain(path, "a weights file")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        return 1
    try:
        return ModelMeta.from_dict(payload["meta"]).min_filter_px
    except (KeyError, ValueError, TypeError) as exc:
        raise CrackError(f"{path}: damaged model description in the checkpoint ({exc}); train it again") from None


def model_from_checkpoint(payload: dict[str, Any]) -> tuple[CrackNet, ModelMeta]:
    """The network of a loaded checkpoint, in eval mode on the CPU, its temperature folded into the head
    (what scanning, evaluating and exporting use; fine-tuning starts from the raw ``payload["model"]``)."""
    try:
        meta = ModelMeta.from_dict(payload["meta"])
    except (KeyError, ValueError, TypeError) as exc:
        raise CrackError(f"damaged model description in the checkpoint ({exc}); train or export it again") from None
    model = build_model(meta.backbone, len(meta.classes), mean=meta.mean, std=meta.std)
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as exc:
        raise CrackError(f"checkpoint weights do not fit {meta.backbone}: {str(exc).splitlines()[0][:160]}") from None
    if meta.temperature != 1.0:
        fold_temperature(model.classifier, meta.temperature)
    return model.eval(), meta
