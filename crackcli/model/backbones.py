"""Backbone factory: torchvision networks split into a feature extractor and a linear classifier.

Every model built here exposes ``features(x) -> (N, F)`` and ``classifier: nn.Linear(F, C)``, which is
what the ISDA family of losses needs: they augment the features ``a`` and read ``W`` and ``b`` off
the classifier.  ``forward(x) == classifier(features(x))``.

Inputs are RGB batches with values 0..255 (uint8 or float); the ImageNet-style normalisation is the
first operation of the network, so a checkpoint, its ONNX export and the scanner cannot disagree on it.
"""

from __future__ import annotations

import urllib.error
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
import torchvision
from torch import nn

from crackcli.errors import CrackError, DivergedWeights, UsageError
from crackcli.model.torch_files import load_plain, nonfinite_weights

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class BackboneSpec:
    """How to cut one torchvision architecture into body and head."""

    head: str  # dotted path of the final nn.Linear that becomes ``classifier``
    global_ops: bool  # squeeze-excitation or similar: per-location (dense) scanning does not apply
    # Dense scanning needs "trunk → global average pool → linear head": the head then commutes with the
    # pool and can run at every location.  Names the first child of the torchvision net after the trunk
    # (its pool module, or the head's container where the net pools in forward()), if it has that form.
    trunk_end: str | None = None


BACKBONES: dict[str, BackboneSpec] = {
    "resnet18": BackboneSpec("fc", global_ops=False, trunk_end="avgpool"),
    "resnet34": BackboneSpec("fc", global_ops=False, trunk_end="avgpool"),
    "resnet50": BackboneSpec("fc", global_ops=False, trunk_end="avgpool"),
    "resnet101": BackboneSpec("fc", global_ops=False, trunk_end="avgpool"),
    "vgg16": BackboneSpec("classifier.6", global_ops=False),
    "vgg16_bn": BackboneSpec("classifier.6", global_ops=False),
    # Small nets without squeeze-excitation: fast on a laptop CPU and dense-capable.
    "mobilenet_v2": BackboneSpec("classifier.1", global_ops=False, trunk_end="classifier"),
    "shufflenet_v2_x0_5": BackboneSpec("fc", global_ops=False, trunk_end="fc"),
    "shufflenet_v2_x1_0": BackboneSpec("fc", global_ops=False, trunk_end="fc"),
    "mobilenet_v3_small": BackboneSpec("classifier.3", global_ops=True),
    "mobilenet_v3_large": BackboneSpec("classifier.3", global_ops=True),
    "efficientnet_b0": BackboneSpec("classifier.1", global_ops=True),
}


class CrackNet(nn.Module):
    """A torchvision backbone whose last linear layer was lifted out as ``classifier``."""

    input_scale: torch.Tensor
    input_shift: torch.Tensor

    def __init__(
        self,
        backbone: str,
        body: nn.Module,
        feature_dim: int,
        num_classes: int,
        mean: tuple[float, ...] = IMAGENET_MEAN,
        std: tuple[float, ...] = IMAGENET_STD,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.feature_dim = feature_dim
        self.num_classes = num_classes
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        mean_t, std_t = torch.tensor(self.mean).view(1, 3, 1, 1), torch.tensor(self.std).view(1, 3, 1, 1)
        # (x/255 - mean)/std as one multiply-add; not in the state dict: mean and std travel as metadata.
        self.register_buffer("input_scale", 1.0 / (255.0 * std_t), persistent=False)
        self.register_buffer("input_shift", -mean_t / std_t, persistent=False)
        self.body = body
        self.classifier = nn.Linear(feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Deep features ``a`` of shape (N, F) of an RGB batch with values 0..255."""
        return self.body(x.to(self.input_scale.dtype) * self.input_scale + self.input_shift)

    def forward(self, x: torch.Tensor, features_only: bool = False) -> torch.Tensor:
        """Class logits (N, C), or the features (N, F) when training with a feature loss.

        ``features_only`` lets DistributedDataParallel wrap the whole network while the loss applies
        the classifier itself (it needs ``W`` and ``b``).
        """
        features = self.features(x)
        return features if features_only else self.classifier(features)

    @property
    def supports_dense(self) -> bool:
        spec = BACKBONES[self.backbone]
        return spec.trunk_end is not None and not spec.global_ops

    def logit_map(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits at every trunk location, (N, C, H/32, W/32), for an input of any size.

        Averaging them over a patch's cells gives the patch's logits exactly (the head is linear and
        the pool an average), which is what makes dense scanning one pass over a whole photo.
        """
        if not self.supports_dense:
            raise UsageError(f"{self.backbone} has no per-location form (global operations before its head)")
        trunk_end = BACKBONES[self.backbone].trunk_end
        x = x.to(self.input_scale.dtype) * self.input_scale + self.input_shift
        for name, layer in self.body.named_children():
            if name == trunk_end:
                break
            x = layer(x)
        weight = self.classifier.weight[:, :, None, None]
        return nn.functional.conv2d(x, weight, self.classifier.bias)


def _split_module(root: nn.Module, dotted: str) -> tuple[nn.Module, str]:
    parent_path, _, name = dotted.rpartition(".")
    parent = root.get_submodule(parent_path) if parent_path else root
    return parent, name


def _head_key_map(spec: BackboneSpec) -> dict[str, str]:
    """Keys of the torchvision head in a torchvision state dict -> keys in a CrackNet state dict."""
    return {f"{spec.head}.weight": "classifier.weight", f"{spec.head}.bias": "classifier.bias"}


def backbone_spec(name: str) -> BackboneSpec:
    try:
        return BACKBONES[name]
    except KeyError:
        raise UsageError(f"unknown backbone '{name}': choose one of {', '.join(BACKBONES)}") from None


def build_model(
    backbone: str,
    num_classes: int,
    weights: str | Path | None = None,
    mean: tuple[float, ...] = IMAGENET_MEAN,
    std: tuple[float, ...] = IMAGENET_STD,
    classes: Sequence[str] | None = None,
) -> CrackNet:
    """Build ``backbone`` with a ``num_classes``-way classifier.

    ``weights`` is ``None``/``"none"`` (random init), ``"imagenet"`` (torchvision's download) or the
    path of a state-dict file: torchvision layout, or a CrackNet/``crack train`` checkpoint.  Given the
    new model's ``classes`` and a checkpoint that names its own, the head's rows follow the class names
    (a 2-class model fine-tuned into crack / joint / no_crack keeps what it knew of crack and no_crack);
    otherwise a head whose shape does not match ``num_classes`` is left freshly initialised.
    """
    spec = backbone_spec(backbone)
    if num_classes < 2:
        raise UsageError(f"a classifier needs at least 2 classes, got {num_classes}")
    net = torchvision.models.get_model(backbone, weights=None)
    parent, name = _split_module(net, spec.head)
    head = getattr(parent, name)
    setattr(parent, name, nn.Identity())
    model = CrackNet(backbone, net, head.in_features, num_classes, mean, std)

    if weights is None or str(weights) == "none":
        return model
    if str(weights) == "imagenet":
        loaded = WeightsFile(_download_imagenet_state(backbone), None)
    else:
        loaded = load_state_file(Path(weights))
    load_backbone_state(model, loaded.state, classes, loaded.classes)
    return model


def _head_rows_by_name(
    state: dict[str, torch.Tensor], own: dict[str, torch.Tensor], classes: list[str], source_classes: list[str]
) -> dict[str, torch.Tensor]:
    """``state`` with its head rows moved to the rows of the same class names in ``own``; rows of classes
    the source lacks keep ``own``'s fresh initialisation.  Unchanged without a class name in common."""
    weight, bias = state.get("classifier.weight"), state.get("classifier.bias")
    shared = [name for name in classes if name in source_classes]
    if weight is None or bias is None or not shared or classes == source_classes:
        return state
    if weight.shape != (len(source_classes), own["classifier.weight"].shape[1]):
        return state  # not the head those names belong to: left to the shape check
    rows, offsets = own["classifier.weight"].clone(), own["classifier.bias"].clone()
    for name in shared:
        target, source = classes.index(name), source_classes.index(name)
        rows[target], offsets[target] = weight[source], bias[source]
    return {**state, "classifier.weight": rows, "classifier.bias": offsets}


def _download_imagenet_state(backbone: str) -> dict[str, torch.Tensor]:
    enum = torchvision.models.get_model_weights(backbone).DEFAULT
    try:
        return enum.get_state_dict(progress=False)
    except (urllib.error.URLError, OSError, RuntimeError) as exc:
        raise CrackError(
            f"could not download ImageNet weights for {backbone} ({exc.__class__.__name__}; offline?): "
            f"fetch {enum.url} on a connected machine and pass it with `weights` PATH"
        ) from None


class WeightsFile(NamedTuple):
    state: dict[str, torch.Tensor]
    classes: list[str] | None  # the head's classes, where the file names them (`crack train` checkpoints)


def load_state_file(path: Path) -> WeightsFile:
    """Read a state dict without running code (``weights_only=True``)."""
    obj = load_plain(path, "a weights file")
    classes = None
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):  # a `crack train` checkpoint
        meta = obj.get("meta")
        named = meta.get("classes") if isinstance(meta, dict) else None
        if isinstance(named, list) and all(isinstance(c, str) for c in named):
            classes = named
        obj = obj["model"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CrackError(f"{path}: no state dict of tensors inside; expected a torchvision or crack weights file")
    broken = nonfinite_weights(obj)
    if broken:
        raise DivergedWeights(str(path), broken)
    return WeightsFile(obj, classes)


def load_backbone_state(
    model: CrackNet,
    state: dict[str, torch.Tensor],
    classes: Sequence[str] | None = None,
    source_classes: Sequence[str] | None = None,
) -> None:
    """Load torchvision- or CrackNet-layout weights; the head's rows by class name where both sides name
    their classes and share one, else a head of another class count is skipped."""
    spec = BACKBONES[model.backbone]
    if not any(k.startswith("body.") for k in state):
        heads = _head_key_map(spec)
        state = {heads.get(k, f"body.{k}"): v for k, v in state.items()}
    own = model.state_dict()
    if classes is not None and source_classes is not None:
        state = _head_rows_by_name(state, own, list(classes), list(source_classes))
    mismatched = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    if any(not k.startswith("classifier.") for k in mismatched):
        raise CrackError(
            f"weights do not fit {model.backbone}: {mismatched[0]} has another shape; "
            "were they saved from a different backbone?"
        )
    state = {k: v for k, v in state.items() if k not in mismatched}
    missing, unexpected = model.load_state_dict(state, strict=False)
    body_missing = [k for k in missing if not k.startswith("classifier.")]
    if body_missing or unexpected:
        example = (body_missing or unexpected)[0]
        raise CrackError(
            f"weights do not fit {model.backbone} (e.g. '{example}' "
            f"{'missing' if body_missing else 'unexpected'}); were they saved from a different backbone?"
        )
