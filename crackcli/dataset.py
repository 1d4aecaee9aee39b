"""Labelled folders of patches for training and evaluation.

A labelled folder holds one sub-folder per class (``crack/``, ``no_crack/``, ``scratch/`` ...), images
anywhere below it.  ``crack prepare --split`` writes one such folder per split (``train/``, ``val/``,
``test/``).  Images reach the model as uint8 (N, 3, S, S) batches; normalisation happens inside it.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from crackcli.augment import Augment, SyntheticCracks
from crackcli.errors import CrackError, UsageError
from crackcli.imageio import ImageReadError, image_size, is_image_path, read_rgb, walk_files
from crackcli.preprocess import fit_patch


@dataclass
class LabelledFolder:
    """The images of a labelled folder, their class indices, and the files that are not images."""

    root: Path
    classes: tuple[str, ...]
    samples: list[tuple[Path, int]]
    unreadable: list[tuple[Path, str]]

    def counts(self) -> dict[str, int]:
        per_class = np.bincount([label for _, label in self.samples], minlength=len(self.classes))
        return {name: int(n) for name, n in zip(self.classes, per_class)}


def is_split_layout(root: Path) -> bool:
    """True when ``root`` holds ``train/`` and ``val/`` folders, as ``crack prepare --split`` writes."""
    return (root / "train").is_dir() and (root / "val").is_dir()


def class_folder_names(root: Path) -> list[str]:
    if not root.is_dir():
        raise UsageError(f"{root}: not a folder; pass a folder of class folders such as crack/ and no_crack/")
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def index_folder(root: Path, classes: Sequence[str] | None = None, verify: bool = True) -> LabelledFolder:
    """List the images of ``root/<class>/``.  ``classes`` fixes the class order (a model's classes);
    a class folder outside it is an error.  ``verify`` reads each header to find non-images early."""
    names = class_folder_names(root)
    if classes is None:
        classes = names
    else:
        unknown = [n for n in names if n not in classes]
        if unknown:
            raise UsageError(
                f"{root}: class folder '{unknown[0]}' is not one of the model's classes ({', '.join(classes)}); "
                "rename or remove it"
            )
    samples: list[tuple[Path, int]] = []
    unreadable: list[tuple[Path, str]] = []
    for label, name in enumerate(classes):
        folder = root / name
        if not folder.is_dir():
            continue
        for path in walk_files(folder, lambda where, message: unreadable.append((where, message))):
            if not is_image_path(path):
                continue
            if verify:
                try:
                    image_size(path)
                except ImageReadError as exc:
                    unreadable.append((path, str(exc)))
                    continue
            samples.append((path, label))
    if not samples:
        raise UsageError(f"{root}: no images in class folders; expected e.g. {root}/crack/*.jpg and {root}/no_crack/*.jpg")
    return LabelledFolder(root, tuple(classes), samples, unreadable)


def photo_groups(root: Path, samples: Sequence[tuple[Path, int]]) -> list[str]:
    """The source photo of each sample from ``root/manifest.csv`` (``crack prepare``), else the file itself."""
    manifest = root / "manifest.csv"
    sources: dict[str, str] = {}
    if manifest.is_file():
        with open(manifest, newline="", encoding="utf-8", errors="surrogateescape") as handle:
            sources = {row["patch"]: row["source"] for row in csv.DictReader(handle) if "patch" in row}
    return [sources.get(path.relative_to(root).as_posix(), str(path)) for path, _ in samples]


def holdout_split(
    samples: Sequence[tuple[Path, int]], groups: Sequence[str], fraction: float, seed: int
) -> tuple[list[tuple[Path, int]], list[tuple[Path, int]]]:
    """Train and validation samples, whole groups (source photos) on one side, about ``fraction`` held out per class."""
    if not 0 < fraction < 1:
        raise UsageError(f"--val-fraction must be between 0 and 1, got {fraction}")
    by_class: dict[int, list[str]] = defaultdict(list)
    for (_, label), group in zip(samples, groups):
        if group not in by_class[label]:
            by_class[label].append(group)
    rng = np.random.default_rng(seed)
    held_out: set[str] = set()
    for label in sorted(by_class):
        class_groups = sorted(by_class[label])
        rng.shuffle(class_groups)
        held_out.update(class_groups[: max(1, round(fraction * len(class_groups)))])
    train = [s for s, g in zip(samples, groups) if g not in held_out]
    val = [s for s, g in zip(samples, groups) if g in held_out]
    return train, val


def limit_per_class(samples: Sequence[tuple[Path, int]], limit: int, seed: int) -> list[tuple[Path, int]]:
    """At most ``limit`` samples of each class, drawn reproducibly (for small-data studies)."""
    rng = np.random.default_rng(seed)
    kept: list[tuple[Path, int]] = []
    for label in sorted({label for _, label in samples}):
        members = [s for s in samples if s[1] == label]
        picks = sorted(rng.permutation(len(members))[:limit])
        kept.extend(members[i] for i in picks)
    return kept


class Batch(NamedTuple):
    images: torch.Tensor  # (N, 3, S, S) uint8
    labels: torch.Tensor  # (N,) int64
    failures: list[str]  # one message per image that could not be decoded


class PatchDataset(Dataset):
    """Decoded, resized and (optionally) augmented patches.  Keys are ``(index, epoch)`` pairs so that each
    sample's augmentation is seeded by (seed, epoch, index) and independent of the worker that loads it."""

    def __init__(
        self,
        samples: Sequence[tuple[Path, int]],
        image_size: int,
        augment: Augment | None = None,
        seed: int = 0,
        synthetic_cracks: SyntheticCracks | None = None,
    ) -> None:
        self.samples = list(samples)
        self.image_size = image_size
        self.augment = augment
        self.seed = seed
        self.synthetic_cracks = synthetic_cracks

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor | None, int, str | None]:
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        path, label = self.samples[index]
        try:
            rgb = fit_patch(read_rgb(path), self.image_size)
        except ImageReadError as exc:
            return None, label, str(exc)
        rng = np.random.default_rng((self.seed, epoch, index))
        if self.synthetic_cracks is not None:
            rgb, label = self.synthetic_cracks(rgb, label, rng)
        if self.augment is not None:
            rgb = self.augment(rgb, rng)
        return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))), label, None


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
        self, size: int, batch_size: int, *, shuffle: bool, seed: int = 0, rank: int = 0, world: int = 1, even: bool = True
    ) -> None:
        self.size, self.batch_size, self.shuffle, self.seed = size, batch_size, shuffle, seed
        self.rank, self.world, self.even = rank, world, even
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _indices(self) -> np.ndarray:
        order = np.random.default_rng((self.seed, self.epoch)).permutation(self.size) if self.shuffle else np.arange(self.size)
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


def require_classes(folder: LabelledFolder, what: str) -> None:
    """At least two classes with images, or one clear line naming the folder."""
    counts = folder.counts()
    present = [name for name, n in counts.items() if n > 0]
    if len(present) < 2:
        raise UsageError(
            f"{folder.root}: {what} needs images of at least 2 classes, found {counts}; "
            "add a folder per class (e.g. crack/ and no_crack/)"
        )


def unreadable_note(unreadable: Sequence[tuple[Path, str]]) -> CrackError:
    """The error for ``--strict`` when some files are not images."""
    return CrackError(f"{len(unreadable)} unreadable image(s), first: {unreadable[0][1]} (remove them or drop --strict)")
