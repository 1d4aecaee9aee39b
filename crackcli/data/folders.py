"""Labelled folders of patches for training and evaluation.

A labelled folder holds one sub-folder per class (``crack/``, ``no_crack/``, ``scratch/`` ...), images
anywhere below it.  ``crack prepare --split`` writes one such folder per split (``train/``, ``val/``,
``test/``).  ``crackcli.data.batches`` turns their samples into model batches.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crackcli.errors import CrackError, UsageError
from crackcli.io.images import ImageReadError, image_size, is_image_path, walk_files


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
        raise UsageError(
            f"{root}: no images in class folders; expected e.g. {root}/crack/*.jpg and {root}/no_crack/*.jpg"
        )
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
        raise ValueError(f"fraction must lie between 0 and 1, not {fraction}")
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
    return CrackError(
        f"{len(unreadable)} unreadable image(s), first: {unreadable[0][1]} (remove them or drop `strict`)"
    )
