"""Devices and multi-process training: one place that knows about torchrun's environment.

``torchrun --nproc_per_node N -m crackcli train ...`` sets RANK, LOCAL_RANK and WORLD_SIZE; each process
then trains on its shard of every batch, and only rank 0 writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import distributed as dist

from crackcli.model.devices import resolve_device


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


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
    """Give every rank rank 0's buffers (batch-norm statistics), which each rank's last step updated on its
    own shard."""
    if context.world > 1:
        for buffer in module.buffers():
            dist.broadcast(buffer, src=0)
