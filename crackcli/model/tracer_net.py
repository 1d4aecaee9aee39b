"""The learned crack tracer's network, and writing it as a tracer file (``tracer_files``).

A three-level U-Net on grey pixels: two 3×3 convolutions per level, max-pooling down, bilinear
upsampling and skip connections up, one logit per pixel.  Small on purpose (8/16/32 channels: 30k
weights), as it runs on the full-resolution pixels of every crack window.  With ``fold`` 2 the pixels
are first folded into channels (each 2×2 block one position of 4 channels, nothing lost) and the
logits unfolded at the end, so every convolution runs on a quarter of the positions.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from crackcli.io.atomic import atomic_write_bytes
from crackcli.model.tracer_files import TRACER_INPUT, TRACER_OUTPUT, TRACER_STATISTICS, tracer_properties

POOLINGS = 2
CONTEXT_PX = 24  # about the receptive field's radius at fold 1: what a pixel's probability depends on


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class TinyUNet(nn.Module):
    """Crack logits per pixel of a standardised grey image (N, 1, H, W), H and W multiples of
    ``size_multiple``."""

    def __init__(self, widths: tuple[int, int, int] = (8, 16, 32), fold: int = 1) -> None:
        super().__init__()
        a, b, c = widths
        self.widths, self.fold = widths, fold
        self.down1, self.down2, self.down3 = _block(fold * fold, a), _block(a, b), _block(b, c)
        self.up2, self.up1 = _block(c + b, b), _block(b + a, a)
        self.head = nn.Conv2d(a, fold * fold, 1)

    @property
    def size_multiple(self) -> int:
        return self.fold * 2**POOLINGS

    @property
    def context_px(self) -> int:
        return self.fold * CONTEXT_PX

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fold > 1:
            x = F.pixel_unshuffle(x, self.fold)
        e1 = self.down1(x)
        e2 = self.down2(F.max_pool2d(e1, 2))
        e3 = self.down3(F.max_pool2d(e2, 2))
        d2 = self.up2(torch.cat([F.interpolate(e3, scale_factor=2.0, mode="bilinear"), e2], 1))
        d1 = self.up1(torch.cat([F.interpolate(d2, scale_factor=2.0, mode="bilinear"), e1], 1))
        logits = self.head(d1)
        return F.pixel_shuffle(logits, self.fold) if self.fold > 1 else logits


def standardise(gray: torch.Tensor) -> torch.Tensor:
    """A grey picture (N, 1, H, W), any dtype, less its mean over its spread (``tracer_files.crop_statistics``):
    brightness and contrast removed, as the tracer file does it."""
    values = gray.float()
    return (values - values.mean()) / torch.clamp(values.std(correction=0), min=1.0)


class TracerGraph(nn.Module):
    """What a tracer file runs: uint8 grey and the crop's (mean, spread) in, crack probability per pixel
    out.  The statistics come from outside so that the tiles of one crop are standardised alike."""

    def __init__(self, net: TinyUNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, gray: torch.Tensor, statistics: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net((gray.float() - statistics[0]) / statistics[1]))


def export_tracer(
    net: TinyUNet,
    path: Path,
    threshold: float,
    min_length_px: int,
    training: dict[str, Any],
    opset: int = 17,
    width_threshold: float | None = None,
) -> None:
    """Write ``net`` as a tracer file at ``path`` (atomically), with its thresholds (widths: ``threshold``
    unless given) and training summary."""
    import onnx

    from crackcli.model.onnx_files import set_properties

    graph = TracerGraph(net).eval()
    example = (torch.zeros(1, 1, 64, 64, dtype=torch.uint8), torch.tensor([128.0, 1.0]))
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation on every call
        torch.onnx.export(
            graph,
            example,
            buffer,  # type: ignore[arg-type]  # the TorchScript exporter writes to any binary file object
            dynamo=False,
            opset_version=opset,
            input_names=[TRACER_INPUT, TRACER_STATISTICS],
            output_names=[TRACER_OUTPUT],
            dynamic_axes={TRACER_INPUT: {2: "height", 3: "width"}, TRACER_OUTPUT: {2: "height", 3: "width"}},
            do_constant_folding=True,
        )
    model = onnx.load_from_string(buffer.getvalue())
    fold = f", fold {net.fold}" if net.fold > 1 else ""
    summary = {"architecture": f"TinyUNet {'/'.join(str(w) for w in net.widths)}{fold}", **training}
    properties = tracer_properties(
        threshold, min_length_px, net.size_multiple, net.context_px, summary, width_threshold
    )
    set_properties(model, properties)
    atomic_write_bytes(path, model.SerializeToString())
