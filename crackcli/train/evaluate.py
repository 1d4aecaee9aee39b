"""`crack eval`: a model's accuracy, precision, recall and F-score on a labelled folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import DataLoader

from crackcli.data.batches import EpochBatches, PatchDataset, collate
from crackcli.data.folders import LabelledFolder, index_folder, is_split_layout
from crackcli.errors import OptionError, UsageError
from crackcli.io.progress import JobEvents
from crackcli.io.system import usable_cpus
from crackcli.model.metrics import classification_report, confusion_matrix
from crackcli.model.predictors import Predictor


@dataclass
class Evaluation:
    report: dict[str, Any]
    unreadable: list[str]  # one message per file found unreadable by header checks or while decoding
    probs: np.ndarray  # (images, classes) class probabilities of the images read, in folder order
    targets: np.ndarray  # their class indices
    predictions: np.ndarray  # the class each was given (see ``decide``)
    paths: list[Path] = field(default_factory=list)  # the images read, in the same order
    crack: int | None = None  # the index of the model's crack class, when the model has one


def index_eval_folder(root: Path, classes: tuple[str, ...]) -> LabelledFolder:
    """The labelled images of ``root``, class folders matched by name to the model's ``classes``."""
    if is_split_layout(root):
        raise UsageError(
            f"{root}: holds train/ and val/ folders; evaluate one split, e.g. {root / 'test'} or {root / 'val'}"
        )
    return index_folder(root, classes=classes)


def evaluate_folder(
    predictor: Predictor,
    folder: LabelledFolder,
    batch: int = 64,
    workers: int | None = None,
    events: JobEvents | None = None,
    threshold: float | None = None,
) -> Evaluation:
    """Classify every image of ``folder`` (from ``index_eval_folder``) and compare with its class folder;
    with ``threshold``, an image is the crack class when its crack probability reaches it (see ``decide``)."""
    if threshold is not None and not 0 <= threshold <= 1:
        raise OptionError("threshold", "must be a probability from 0 to 1", threshold)
    if batch < 1:
        raise OptionError("batch", "must be at least 1", batch)
    if workers is not None and workers < 0:
        raise OptionError("workers", "give a number of loader processes (0: none)", workers)
    events = events or JobEvents()
    events.started(len(folder.samples))
    classes = predictor.meta.classes
    unreadable = [message for _, message in folder.unreadable]
    # Each sample is labelled with its own index, so the images that were read can be named afterwards.
    meta = predictor.meta
    samples = [(path, index) for index, (path, _) in enumerate(folder.samples)]
    dataset = PatchDataset(samples, meta.image_size, min_filter_px=meta.min_filter_px)
    workers = min(4, usable_cpus()) if workers is None else workers
    loader = DataLoader(
        dataset,
        batch_sampler=EpochBatches(len(dataset), batch, shuffle=False, even=False),
        num_workers=workers,
        collate_fn=collate,
    )
    read: list[np.ndarray] = []
    probs: list[np.ndarray] = []
    for images, indices, failures in loader:
        unreadable.extend(failures)
        if len(indices):
            probs.append(predictor.predict(images.numpy()))
            read.append(indices.numpy())
        events.advanced(len(indices) + len(failures))
    if not read:
        raise UsageError(f"{folder.root}: none of the images could be read")
    all_probs, order = np.concatenate(probs), np.concatenate(read)
    targets = np.array([folder.samples[i][1] for i in order], np.int64)
    crack = classes.index(predictor.meta.crack_class) if predictor.meta.crack_class in classes else None
    predictions = decide(all_probs, crack, threshold)
    report = classification_report(confusion_matrix(targets, predictions, len(classes)), classes)
    report["threshold"] = threshold
    paths = [folder.samples[i][0] for i in order]
    return Evaluation(report, unreadable, all_probs, targets, predictions, paths, crack)


def decide(probs: np.ndarray, crack: int | None, threshold: float | None) -> np.ndarray:
    """The class of each row of ``probs``: the most probable one, or with ``threshold`` the crack class
    (index ``crack``) wherever its probability reaches the threshold and the most probable other class
    elsewhere."""
    if threshold is None or crack is None:
        return probs.argmax(1)
    others = probs.copy()
    others[:, crack] = -np.inf
    return np.where(probs[:, crack] >= threshold, crack, others.argmax(1))
