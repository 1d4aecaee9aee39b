"""The images of a training run: the training and validation samples of DATA, and their loaders."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from crackcli.data.augment import build_augment
from crackcli.data.batches import EpochBatches, PatchDataset, collate
from crackcli.data.folders import (
    LabelledFolder,
    holdout_split,
    index_folder,
    is_split_layout,
    limit_per_class,
    photo_groups,
    require_classes,
    unreadable_note,
)
from crackcli.data.painting import SyntheticCracks
from crackcli.errors import UsageError
from crackcli.io.system import usable_cpus
from crackcli.train.config import TrainConfig
from crackcli.train.distributed import Context


@dataclass
class TrainData:
    classes: tuple[str, ...]
    train: list[tuple[Path, int]]
    val: list[tuple[Path, int]]
    unreadable: list[tuple[Path, str]]
    layout: str  # "split folders" or "held out X%"


def load_train_data(config: TrainConfig) -> TrainData:
    """Index DATA: ``train/`` + ``val/`` folders, or one folder of classes with ``val_fraction`` held out by photo."""
    root = Path(config.data)
    if not root.is_dir():
        raise UsageError(f"{root}: not a folder; pass the output of crack prepare --split or a folder of class folders")
    if is_split_layout(root):
        train = index_folder(root / "train")
        require_classes(train, "training")
        try:
            val = index_folder(root / "val", classes=train.classes)
        except UsageError as exc:
            raise UsageError(f"class mismatch between train and val: {exc}") from None
        missing = [name for name, n in val.counts().items() if n == 0]
        if missing:
            raise UsageError(
                f"class mismatch between train and val: {root / 'val'} has no '{missing[0]}' images; "
                "add some or re-run crack prepare --split"
            )
        train_samples, val_samples = train.samples, val.samples
        unreadable, layout = train.unreadable + val.unreadable, "split folders"
        classes = train.classes
    else:
        folder = index_folder(root)
        require_classes(folder, "training")
        groups = photo_groups(root, folder.samples)
        train_samples, val_samples = holdout_split(folder.samples, groups, config.val_fraction, config.seed)
        unreadable, layout, classes = folder.unreadable, f"{config.val_fraction:.0%} held out by photo", folder.classes
    if config.limit_per_class is not None:
        train_samples = limit_per_class(train_samples, config.limit_per_class, config.seed)
    require_classes(LabelledFolder(root, classes, train_samples, []), "training")
    if config.strict and unreadable:
        raise unreadable_note(unreadable)
    return TrainData(classes, train_samples, val_samples, unreadable, layout)


# Fewer validation images of a class than this, and which epoch is kept and the temperature fitted there
# are chance: fine-tunes on ten drone photos validated on a dozen patches kept epochs at a macro F of 0.2.
MIN_VAL_PER_CLASS = 20


def small_validation_note(data: TrainData, root: Path) -> str | None:
    """A warning naming the classes with fewer than MIN_VAL_PER_CLASS validation images of DATA ``root``, if any."""
    counts = LabelledFolder(root, data.classes, data.val, []).counts()
    few = [f"{count} '{name}'" for name, count in counts.items() if count < MIN_VAL_PER_CLASS]
    if not few:
        return None
    return (
        f"validation holds only {', '.join(few)} image(s): the epoch kept and the temperature fitted rest on "
        "them; hold out more photos (--val-fraction, or more in val/) or label more"
    )


def loader_workers(config: TrainConfig, device: torch.device, context: Context) -> int:
    """Image decoding processes: ``config.workers``, else by device and CPUs."""
    if config.workers is not None:
        return config.workers
    cpus = max(1, usable_cpus() // context.world)
    # On a GPU, decoding must keep up with it, but the main process (and its CUDA launches) keeps two
    # cores; on the CPU the model competes with the loaders for cores.
    return min(16, max(1, cpus - 2)) if device.type == "cuda" else min(4, max(1, cpus // 2))


PREFETCH_BATCHES = 4  # per loader process


def shared_memory_note(workers: int, batch: int, image_size: int, shm: Path = Path("/dev/shm")) -> str | None:
    """A warning when the batches loader processes keep in flight would not fit in shared memory (the
    64 MB a container gets by default), where they would stop training with a bus error; else None."""
    if workers <= 0 or not shm.is_dir():
        return None
    in_flight = workers * PREFETCH_BATCHES * batch * 3 * image_size * image_size
    stats = os.statvfs(shm)
    free = stats.f_bavail * stats.f_frsize
    if in_flight <= free:
        return None
    return (
        f"the {workers} loader processes keep about {in_flight / 2**20:,.0f} MiB of batches in shared memory, "
        f"but {shm} has {free / 2**20:,.0f} MiB free: give it more (docker run --shm-size={_gib(in_flight)}g) "
        "or pass fewer --workers (0: decode in the main process)"
    )


def _gib(size: int) -> int:
    return max(1, -(-2 * size // 2**30))  # twice what is in flight, rounded up to whole GiB


def make_loader(
    samples: list[tuple[Path, int]],
    config: TrainConfig,
    ctx: Context,
    device: torch.device,
    synthetic_cracks: SyntheticCracks | None,
    train: bool,
    min_filter_px: int = 1,
    clean_label: int | None = None,
) -> tuple[EpochBatches, DataLoader]:
    """The batches of one rank and their loader: augmented and painted for ``train`` (``clean_label``: the
    class ``finer_clean`` reads finer), in order for validation."""
    per_rank = max(1, config.batch // ctx.world)
    augment = build_augment(config.augment) if train else None
    relabel = synthetic_cracks if train else None
    finer = (config.finer_clean, clean_label) if train and config.finer_clean > 0 and clean_label is not None else None
    dataset = PatchDataset(samples, config.image_size, augment, config.seed, relabel, min_filter_px, finer)
    batches = EpochBatches(
        len(dataset), per_rank, shuffle=train, seed=config.seed, rank=ctx.rank, world=ctx.world, even=train
    )
    workers = loader_workers(config, device, ctx)
    spawned = workers > 0 and needs_spawned_workers(device, ctx)
    loader = DataLoader(
        dataset,
        batch_sampler=batches,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=device.type == "cuda",
        # Forked workers restart each epoch (cheap): persistent ones took 5 s each to shut down here, as
        # in pytorch/pytorch#81794.  Workers started from a clean server are dear to start, so they stay.
        prefetch_factor=PREFETCH_BATCHES if workers > 0 else None,
        multiprocessing_context="forkserver" if spawned else None,
        persistent_workers=spawned,
        generator=torch.Generator(),  # keeps the loader off the global RNG, which resume restores
    )
    return batches, loader


def needs_spawned_workers(device: torch.device, ctx: Context) -> bool:
    """Whether loader processes must not be forked: several GPU processes have started NCCL, which is
    not safe to fork (as the DDP documentation warns), so they start from a fork server instead."""
    return device.type == "cuda" and ctx.world > 1
