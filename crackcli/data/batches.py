"""Samples of labelled folders as model batches: decoded, resized, augmented, shuffled per epoch, sharded.

Images reach the model as uint8 (N, 3, S, S) batches; normalisation happens inside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from crackcli.data.augment import Augment
from crackcli.data.painting import SyntheticCracks
from crackcli.data.preprocess import fit_patch
from crackcli.io.images import ImageReadError, read_rgb


class Batch(NamedTuple):
    images: torch.Tensor  # (N, 3, S, S) uint8
    labels: torch.Tensor  # (N,) int64
    failures: list[str]  # one message per image that could not be decoded


class PatchDataset(Dataset):
    """Decoded, resized and (optionally) augmented patches.  Keys are ``(index, epoch)`` pairs so that each
    sample's augmentation is seeded by (seed, epoch, index) and independent of the worker that loads it.

    ``finer`` (share, label): that share of the patches of that class is read at twice the resolution, a
    random crop of half its sides brought to the input size (after the minimum filter, as a scan reads
    windows of half the side), so a model also learns the surface at the scale of a finer reading.
    """

    def __init__(
        self,
        samples: Sequence[tuple[Path, int]],
        image_size: int,
        augment: Augment | None = None,
        seed: int = 0,
        synthetic_cracks: SyntheticCracks | None = None,
        min_filter_px: int = 1,
        finer: tuple[float, int] | None = None,
    ) -> None:
        self.samples = list(samples)
        self.image_size = image_size
        self.min_filter_px = min_filter_px
        self.finer = finer
        self.augment = augment
        self.seed = seed
        self.synthetic_cracks = synthetic_cracks

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor | None, int, str | None]:
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        path, label = self.samples[index]
        rng = np.random.default_rng((self.seed, epoch, index))
        try:
            rgb = read_rgb(path)
        except ImageReadError as exc:
            return None, label, str(exc)
        # No draw without ``finer``: the patches keep the augmentation stream they had before.
        if self.finer is not None and label == self.finer[1] and rng.random() < self.finer[0]:
            rgb = _half_crop(rgb, rng)
        rgb = fit_patch(rgb, self.image_size, self.min_filter_px)
        if self.synthetic_cracks is not None:
            rgb, label = self.synthetic_cracks(rgb, label, rng)
        if self.augment is not None:
            rgb = self.augment(rgb, rng)
        return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))), label, None


def _half_crop(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random crop of half the sides of ``rgb``."""
    height, width = rgb.shape[0] // 2, rgb.shape[1] // 2
    top, left = int(rng.integers(0, rgb.shape[0] - height + 1)), int(rng.integers(0, rgb.shape[1] - width + 1))
    return rgb[top : top + height, left : left + width]


def collate(items: list[tuple[torch.Tensor | None, int, str | None]]) -> Batch:
    """Stack the decoded samples; undecodable ones are dropped and reported in ``failures``."""
    good = [(image, label) for image, label, _ in items if image is not None]
    failures = [message for _, _, message in items if message is not None]
    if not good:
        return Batch(torch.empty(0, 3, 0, 0, dtype=torch.uint8), torch.empty(0, dtype=torch.int64), failures)
    return Batch(torch.stack([g[0] for g in good]), torch.tensor([g[1] for g in good]), failures)


class EpochBatches(Sampler[list[tuple[int, int]]]):
    """Batches of ``(index, epoch)`` keys: shuffled per epoch from the seed, and sharded over ranks.

    For training (``even=True``) every rank gets the same number of batches (DDP steps in lockstep) and a
    trailing batch of one sample is dropped (batch norm cannot train on it).  For evaluation every sample
    is visited exactly once over all ranks.
    """

    def __init__(
        self,
        size: int,
        batch_size: int,
        *,
        shuffle: bool,
        seed: int = 0,
        rank: int = 0,
        world: int = 1,
        even: bool = True,
    ) -> None:
        self.size, self.batch_size, self.shuffle, self.seed = size, batch_size, shuffle, seed
        self.rank, self.world, self.even = rank, world, even
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _indices(self) -> np.ndarray:
        order = (
            np.random.default_rng((self.seed, self.epoch)).permutation(self.size)
            if self.shuffle
            else np.arange(self.size)
        )
        if self.even:
            order = order[: self.size // self.world * self.world]
        return order[self.rank :: self.world]

    def _batches(self) -> list[np.ndarray]:
        indices = self._indices()
        batches = [indices[i : i + self.batch_size] for i in range(0, len(indices), self.batch_size)]
        if self.even and batches and len(batches[-1]) == 1 and len(batches) > 1:
            batches.pop()
        return batches

    def __iter__(self):
        for batch in self._batches():
            yield [(int(i), self.epoch) for i in batch]

    def __len__(self) -> int:
        return len(self._batches())
