"""Devices and multi-process training: one place that knows about torchrun's environment.

``torchrun --nproc_per_node N -m crackcli train ...`` sets RANK, LOCAL_RANK and WORLD_SIZE; each process
then trains on its shard of every batch, and only rank 0 writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import distributed as dist

from crackcli.errors import UsageError

DEVICES = ("auto", "cpu", "cuda", "mps")


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` is CUDA, then Apple's MPS, then the CPU; an unavailable device asked for is a usage error."""
    if name not in DEVICES:
        raise UsageError(f"unknown device '{name}': choose one of {', '.join(DEVICES)}")
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "mps" if mps else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise UsageError("--device cuda: no CUDA GPU is visible to torch; use --device cpu or check the driver")
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    if name == "mps" and not mps:
        raise UsageError("--device mps: Apple's Metal backend is not available here; use --device cpu")
    return torch.device(name)


def start(device_name: str) -> tuple[Context, torch.device]:
    """Join the process group that torchrun describes (if any) and pick this process's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Context(), resolve_device(device_name)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name, local_rank)
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Context(rank, world, local_rank), device


def stop(context: Context) -> None:
    if context.world > 1 and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(tensor: torch.Tensor, context: Context) -> torch.Tensor:
    """The sum of ``tensor`` over all processes (the tensor itself when alone)."""
    if context.world > 1:
        dist.all_reduce(tensor)
    return tensor


def broadcast_buffers(module: torch.nn.Module, context: Context) -> None:
    """Give every rank rank 0's buffers (batch-norm statistics), which each rank's last step updated on its own shard."""
    if context.world > 1:
        for buffer in module.buffers():
            dist.broadcast(buffer, src=0)
