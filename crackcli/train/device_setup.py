"""How training sets up a device: kernels, memory layout and mixed precision, shared by the trainer
and the benchmarks that must measure what it runs."""

from __future__ import annotations

from typing import TypeVar

import torch
from torch import nn

ModuleT = TypeVar("ModuleT", bound=nn.Module)


def configure_backends(device: torch.device) -> None:
    """Process-wide settings for training on ``device``: on CUDA, cuDNN times its kernels once per input
    shape and keeps the fastest (training batches have one shape but for the last)."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def model_layout(model: ModuleT, device: torch.device) -> ModuleT:
    """``model`` in the memory layout its device runs fastest: channels-last on CUDA (tensor cores)."""
    return model.to(memory_format=torch.channels_last) if device.type == "cuda" else model


def batch_layout(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A batch of images in the layout ``model_layout`` gave the model."""
    return images.contiguous(memory_format=torch.channels_last) if device.type == "cuda" else images


def amp_dtype_for(device: torch.device, amp: bool | None) -> torch.dtype | None:
    """The autocast dtype of training on ``device`` (``amp`` None: on for CUDA only), or None for float32.

    bf16 only where the GPU computes it natively (Ampere and later): ``is_bf16_supported()`` alone also
    counts emulation, which gives T4 and V100 bf16 autocast without bf16 convolution engines.  Elsewhere
    fp16, which the trainer pairs with a gradient scaler.
    """
    enabled = amp if amp is not None else device.type == "cuda"
    if not enabled:
        return None
    if device.type == "cuda" and not torch.cuda.is_bf16_supported(including_emulation=False):
        return torch.float16
    return torch.bfloat16
