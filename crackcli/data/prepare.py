"""`crack prepare`: cut photos into patches, label them (by folder or mask) and split by photo.

Splits are assigned per source photo, so patches of one photo never land in two splits (no leakage
between train and test).  Outputs are written atomically and a re-run skips patches that exist.
"""

from __future__ import annotations

import csv
import glob
import io
import math
import random
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crackcli.data.tiling import EDGE_RULES, MAX_WINDOW, Window, crop, grid
from crackcli.errors import CrackError, OptionError
from crackcli.io.atomic import OutputError, atomic_writer, make_folder
from crackcli.io.images import (
    DEFAULT_MAX_PIXELS,
    is_image_path,
    read_mask,
    read_rgb,
    write_image,
)
from crackcli.io.inputs import collect_inputs, safe_name, safe_stems
from crackcli.io.interrupts import DeferredInterrupt
from crackcli.io.progress import JobEvents
from crackcli.io.system import usable_cpus

LABEL_MODES = ("folder", "mask", "none")
SPLIT_NAMES = ("train", "val", "test")
CRACK, NO_CRACK = "crack", "no_crack"
MANIFEST_FIELDS = ("patch", "source", "x", "y", "size", "label", "split", "mask_fraction")


@dataclass(frozen=True)
class PrepareOptions:
    out: Path
    size: int = 224
    stride: int | None = None
    edge: str = "shift"
    labels: str = "folder"
    masks: Path | None = None
    class_masks: tuple[tuple[str, Path], ...] = ()  # (class, folder): confusable classes such as scratches
    crack_min: float = 0.005
    split: tuple[float, ...] | None = None
    seed: int = 0
    image_format: str = "png"
    quality: int = 95
    workers: int = 0  # 0: one per usable CPU
    overwrite: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        if not 8 <= self.size <= MAX_WINDOW:
            raise OptionError("size", f"patches must be 8 to {MAX_WINDOW} pixels", self.size)
        if self.stride is not None and self.stride < 1:
            raise OptionError("stride", "must be at least 1 pixel", self.stride)
        if self.max_pixels < 1:
            raise OptionError("max_pixels", "give a positive number of pixels", self.max_pixels)
        if self.workers < 0:
            raise OptionError("workers", "give a number of threads, or 0 for one per CPU", self.workers)
        if self.edge not in EDGE_RULES:
            raise OptionError("edge", f"choose one of {', '.join(EDGE_RULES)}", self.edge)
        if self.labels not in LABEL_MODES:
            raise OptionError("labels", f"choose one of {', '.join(LABEL_MODES)}", self.labels)
        if self.labels == "mask" and (self.masks is None or not self.masks.is_dir()):
            raise OptionError("labels", "needs `masks` DIR, an existing folder of same-stem mask files", "mask")
        if self.class_masks and self.labels != "mask":
            raise OptionError("class_masks", "needs `labels=mask` (and `masks` for the cracks)")
        names = [name for name, _ in self.class_masks]
        for name, folder in self.class_masks:
            if names.count(name) > 1:
                raise OptionError("class_masks", "given twice; name each class once", name)
            if not folder.is_dir():
                raise OptionError(
                    "class_masks", "not a folder; give a folder of same-stem mask files", f"{name}={folder}"
                )
        if not 0.0 < self.crack_min <= 1.0:  # also refuses NaN
            raise OptionError(
                "crack_min",
                "give the share of crack pixels that makes a patch crack, above 0 and at most 1, e.g. 0.005",
                self.crack_min,
            )
        if self.split is not None:
            check_split(self.split)
        if self.image_format not in ("png", "jpg"):
            raise OptionError("image_format", "choose png or jpg", self.image_format)


@dataclass
class Photo:
    path: Path
    stem: str  # unique, filesystem-safe name used in patch names
    label: str | None = None  # folder label
    split: str | None = None


@dataclass
class PrepareSummary:
    out: Path
    photos: int = 0
    patches: Counter = field(default_factory=Counter)  # (split or "", label or "") -> count
    written: int = 0
    existing: int = 0
    ambiguous: int = 0  # mask fraction between 0 and --crack-min
    failures: list[tuple[str, str]] = field(default_factory=list)  # (input, message)

    def as_dict(self) -> dict[str, Any]:
        per_split: dict[str, dict[str, int]] = {}
        for (split, label), count in sorted(self.patches.items()):
            per_split.setdefault(split or "all", {})[label or "unlabelled"] = count
        return {
            "out": str(self.out),
            "photos": self.photos,
            "patches": sum(self.patches.values()),
            "per_split": per_split,
            "written": self.written,
            "skipped_existing": self.existing,
            "skipped_ambiguous": self.ambiguous,
            "failed": [{"input": name, "error": message} for name, message in self.failures],
        }


def check_split(ratios: tuple[float, ...], shown: object = None) -> None:
    """Two or three ratios (train, val, test), none negative, train above zero."""
    if not 2 <= len(ratios) <= 3 or not all(0 <= r < math.inf for r in ratios) or not ratios[0] > 0:
        raise OptionError("split", "give train:val[:test] ratios such as 3:1:1", shown or ":".join(map(str, ratios)))


def parse_split(text: str) -> tuple[float, ...]:
    """``"3:1:1"`` -> (0.6, 0.2, 0.2); two parts mean train:val."""
    try:
        parts = tuple(float(p) for p in text.split(":"))
    except ValueError:
        parts = ()
    check_split(parts, f"'{text}'")
    total = sum(parts)
    return tuple(p / total for p in parts)


def assign_splits(photos: list[Photo], ratios: tuple[float, ...], seed: int) -> None:
    """Shuffle photos (per folder class when there is one) and cut them by ``ratios``."""
    groups: dict[str | None, list[Photo]] = {}
    for photo in sorted(photos, key=lambda p: str(p.path)):
        groups.setdefault(photo.label, []).append(photo)
    rng = random.Random(seed)
    for members in groups.values():
        rng.shuffle(members)
        counts = _apportion(len(members), ratios)
        start = 0
        for name, count in zip(SPLIT_NAMES, counts):
            for photo in members[start : start + count]:
                photo.split = name
            start += count


def _apportion(total: int, ratios: tuple[float, ...]) -> list[int]:
    """Largest-remainder rounding; train always gets at least one photo."""
    exact = [total * r for r in ratios]
    counts = [int(e) for e in exact]
    by_remainder = sorted(range(len(ratios)), key=lambda i: exact[i] - counts[i], reverse=True)
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    if total and counts[0] == 0:
        donor = max(range(len(counts)), key=lambda i: counts[i])
        counts[donor] -= 1
        counts[0] += 1
    return counts


def find_mask(masks_dir: Path, stem: str) -> Path | None:
    for candidate in sorted(masks_dir.glob(f"{glob.escape(stem)}.*")):
        if is_image_path(candidate):
            return candidate
    return None


def read_manifest(path: Path) -> dict[str, dict[str, str]]:
    """The rows of an earlier ``manifest.csv`` by patch path (none when there is no such file)."""
    try:
        with open(path, newline="", encoding="utf-8", errors="surrogateescape") as handle:
            return {row["patch"]: row for row in csv.DictReader(handle) if row.get("patch")}
    except FileNotFoundError:
        return {}
    except (OSError, csv.Error, KeyError) as exc:
        raise CrackError(
            f"{path}: the manifest of earlier jobs cannot be read ({exc.__class__.__name__}); "
            "move it away or choose another `out`"
        ) from None


def manifest_patch_size(folder: Path) -> int | None:
    """The photo-pixel side of the patches `crack prepare` cut into ``folder`` (from its ``manifest.csv``),
    or None where there is no manifest or its patches are of several sizes."""
    try:
        sizes = {row.get("size") for row in read_manifest(folder / "manifest.csv").values()}
    except CrackError:
        return None
    if len(sizes) != 1:
        return None
    try:
        return int(sizes.pop() or "")
    except ValueError:
        return None


def _same_file(recorded: str, path: Path) -> bool:
    if recorded == str(path):
        return True
    try:
        return Path(recorded).resolve() == path.resolve()
    except OSError:
        return False


def parse_class_mask(text: str) -> tuple[str, Path]:
    """``"scratch=masks/scratches"`` -> ("scratch", Path("masks/scratches"))."""
    name, sep, folder = text.partition("=")
    name = name.strip()
    if not sep or not name or not folder or safe_name(name) != name or name in (CRACK, NO_CRACK):
        raise OptionError(
            "class_masks",
            "give CLASS=FOLDER with a plain class name other than crack or no_crack, e.g. scratch=masks/scratches",
            f"'{text}'",
        )
    return name, Path(folder)


@dataclass
class _Patch:
    window: Window
    label: str | None
    fraction: float | None


def label_windows(
    windows: list[Window], photo: Photo, masks: list[tuple[str, np.ndarray]] | None, min_fraction: float
) -> tuple[list[_Patch], int]:
    """Labels per window, and how many were ambiguous and skipped.

    ``masks`` are (class, mask) pairs in order of precedence, crack first: a window takes the first class
    covering at least ``min_fraction`` of it, is skipped as ambiguous if a class covers less than that but
    not nothing, and is ``no_crack`` when every mask is empty there.
    """
    if masks is None:
        return [_Patch(w, photo.label, None) for w in windows], 0
    patches, ambiguous = [], 0
    for window in windows:
        area = window.size * window.size
        for label, mask in masks:
            fraction = float(np.count_nonzero(crop(mask, window))) / area
            if fraction >= min_fraction:
                patches.append(_Patch(window, label, fraction))
                break
            if fraction > 0:
                ambiguous += 1
                break
        else:
            patches.append(_Patch(window, NO_CRACK, 0.0))
    return patches, ambiguous


class Preparer:
    """Runs one `crack prepare` job; ``events`` hears of each photo finished and of each failure."""

    def __init__(self, options: PrepareOptions, events: JobEvents | None = None) -> None:
        self.options = options
        self.events = events or JobEvents()
        self.suffix = f".{options.image_format}"
        self.earlier: dict[str, dict[str, str]] = {}  # manifest rows of earlier jobs, by patch
        self.cut: set[str] = set()  # patches of this job

    def plan(self, sources: Iterable[str]) -> tuple[list[Photo], PrepareSummary]:
        paths, failures = collect_inputs(sources, self.options.out)
        summary = PrepareSummary(out=self.options.out, failures=failures)
        photos = [Photo(p, s) for p, s in zip(paths, safe_stems(paths))]
        if self.options.labels == "folder":
            for photo in photos:
                photo.label = safe_name(photo.path.parent.name) or "unlabelled"
        if self.options.split:
            assign_splits(photos, self.options.split, self.options.seed)
        return photos, summary

    def run(self, sources: Iterable[str]) -> PrepareSummary:
        return self.execute(*self.plan(sources))

    def execute(self, photos: list[Photo], summary: PrepareSummary) -> PrepareSummary:
        """Slice the planned ``photos``; failures are collected in ``summary``, the batch goes on.

        ``manifest.csv`` ends up listing every patch in ``out``: rows of earlier jobs into the same
        folder are kept, those of patches cut again are replaced.
        """
        self.events.started(len(photos))
        if photos:
            make_folder(self.options.out)  # a file in its way, or no permission: one line, before any work
        self.earlier = read_manifest(self.options.out / "manifest.csv")
        if not photos and not summary.failures:
            summary.failures.append(("", "no images found in the inputs; pass photo files, folders or globs"))
        # Manifest rows go to an unnamed temporary file as photos are done, not to a list: memory stays
        # flat however many patches a job makes.
        with tempfile.TemporaryFile() as rows_file:
            text = io.TextIOWrapper(rows_file, encoding="utf-8", errors="surrogateescape", newline="")
            manifest = csv.DictWriter(text, fieldnames=MANIFEST_FIELDS, lineterminator="\n")
            manifest.writeheader()
            self._slice_all(photos, summary, manifest)
            if summary.photos:
                text.flush()
                self._write_manifest(rows_file)
            text.detach()
        return summary

    def _write_manifest(self, rows_file: Any) -> None:
        """Earlier rows of patches not cut again, then this job's rows (``rows_file``, with its header)."""
        rows_file.seek(0)
        with atomic_writer(self.options.out / "manifest.csv") as handle:
            kept = [row for patch, row in self.earlier.items() if patch not in self.cut]
            if kept:
                text = io.TextIOWrapper(handle, encoding="utf-8", errors="surrogateescape", newline="")
                text.write(rows_file.readline().decode("utf-8", "surrogateescape"))  # the header
                csv.DictWriter(text, fieldnames=MANIFEST_FIELDS, lineterminator="\n").writerows(kept)
                text.flush()
                text.detach()
            shutil.copyfileobj(rows_file, handle)

    def _slice_all(self, photos: list[Photo], summary: PrepareSummary, manifest: csv.DictWriter) -> None:
        pool = ThreadPoolExecutor(max_workers=self.options.workers or usable_cpus())
        # Ctrl-C is taken between submissions only: inside submit() it would leave the pool's locks held.
        with DeferredInterrupt() as interrupt:
            try:
                # Decode the next photo while the current one's patches are being encoded and written.
                pending = pool.submit(self._load, photos[0]) if photos else None
                for index, photo in enumerate(photos):
                    loaded = pending
                    assert loaded is not None  # every photo's load is submitted before its turn
                    pending = pool.submit(self._load, photos[index + 1]) if index + 1 < len(photos) else None
                    try:
                        image, masks = loaded.result()
                        manifest.writerows(self._slice(pool, interrupt, photo, image, masks, summary))
                        summary.photos += 1
                    except OutputError:
                        raise  # the next photo's patches would fail the same way: stop with one line
                    except CrackError as exc:
                        summary.failures.append((str(photo.path), str(exc)))
                    del loaded
                    self.events.advanced(1)
                    interrupt.check()
            finally:
                # On Ctrl-C, queued patches are dropped; those being written finish whole (atomic writes).
                pool.shutdown(wait=True, cancel_futures=True)

    def _load(self, photo: Photo) -> tuple[np.ndarray, list[tuple[str, np.ndarray]] | None]:
        image = read_rgb(photo.path, self.options.max_pixels)
        if self.options.labels != "mask":
            return image, None
        assert self.options.masks is not None
        folders = [(CRACK, self.options.masks), *self.options.class_masks]
        return image, [(label, self._read_mask(photo, folder, image.shape[:2])) for label, folder in folders]

    def _read_mask(self, photo: Photo, folder: Path, shape: tuple[int, ...]) -> np.ndarray:
        mask_path = find_mask(folder, photo.path.stem)
        if mask_path is None:
            raise CrackError(
                f"{photo.path}: no mask named {photo.path.stem}.* in {folder}; add it or leave the photo out"
            )
        mask = read_mask(mask_path, self.options.max_pixels)
        if mask.shape != shape:
            raise CrackError(
                f"{mask_path}: mask is {mask.shape[1]}×{mask.shape[0]} but the photo {photo.path} is "
                f"{shape[1]}×{shape[0]}; masks must match their photo pixel for pixel"
            )
        return mask.view(np.uint8)

    def _slice(
        self,
        pool: ThreadPoolExecutor,
        interrupt: DeferredInterrupt,
        photo: Photo,
        image: np.ndarray,
        masks: list[tuple[str, np.ndarray]] | None,
        summary: PrepareSummary,
    ) -> list[dict[str, object]]:
        opts = self.options
        height, width = image.shape[:2]
        windows = grid(width, height, opts.size, opts.stride or opts.size, opts.edge)
        if not windows:
            raise CrackError(
                f"{photo.path}: {width}×{height} is smaller than a {opts.size}-pixel patch; "
                "use `edge=pad` or a smaller `size`"
            )
        patches, ambiguous = label_windows(windows, photo, masks, opts.crack_min)
        if not opts.overwrite:
            self._check_same_source(photo, patches)
        summary.ambiguous += ambiguous
        rows, jobs = [], []
        for patch in patches:
            interrupt.check()
            relative = self._patch_path(photo, patch)
            target = opts.out / relative
            if target.exists() and not opts.overwrite:
                summary.existing += 1
            else:
                jobs.append(pool.submit(write_image, target, crop(image, patch.window), jpeg_quality=opts.quality))
            summary.patches[(photo.split or "", patch.label or "")] += 1
            self.cut.add(relative.as_posix())
            rows.append(
                {
                    "patch": relative.as_posix(),
                    "source": str(photo.path),
                    "x": patch.window.x,
                    "y": patch.window.y,
                    "size": patch.window.size,
                    "label": patch.label or "",
                    "split": photo.split or "",
                    "mask_fraction": "" if patch.fraction is None else f"{patch.fraction:.6f}",
                }
            )
        for job in jobs:
            job.result()
        summary.written += len(jobs)
        return rows

    def _check_same_source(self, photo: Photo, patches: list[_Patch]) -> None:
        """Refuse to count as "already there" patches that an earlier job cut from another photo."""
        for patch in patches:
            relative = self._patch_path(photo, patch).as_posix()
            earlier = self.earlier.get(relative)
            if (
                earlier is not None
                and (self.options.out / relative).exists()
                and not _same_file(earlier.get("source", ""), photo.path)
            ):
                raise CrackError(
                    f"{photo.path}: its patches' names are taken in {self.options.out} by patches of "
                    f"{earlier.get('source')}; rename the photo, choose another `out`, or pass `overwrite`"
                )

    def _patch_path(self, photo: Photo, patch: _Patch) -> Path:
        folder = Path(*(part for part in (photo.split, patch.label) if part))
        return folder / f"{photo.stem}_x{patch.window.x}_y{patch.window.y}{self.suffix}"
