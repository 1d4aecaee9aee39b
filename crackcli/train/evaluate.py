"""`crack eval`: a model's accuracy, precision, recall and F-score on a labelled folder."""

from __future__ import annotations

from dataclasses import dataclass
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
) -> Evaluation:
    """Classify every image of ``folder`` (from ``index_eval_folder``) and compare with its class folder."""
    if batch < 1:
        raise OptionError("batch", "must be at least 1", batch)
    if workers is not None and workers < 0:
        raise OptionError("workers", "give a number of loader processes (0: none)", workers)
    events = events or JobEvents()
    events.started(len(folder.samples))
    classes = predictor.meta.classes
    unreadable = [message for _, message in folder.unreadable]
    dataset = PatchDataset(folder.samples, predictor.meta.image_size)
    workers = min(4, usable_cpus()) if workers is None else workers
    loader = DataLoader(
        dataset,
        batch_sampler=EpochBatches(len(dataset), batch, shuffle=False, even=False),
        num_workers=workers,
        collate_fn=collate,
    )
    targets: list[np.ndarray] = []
    probs: list[np.ndarray] = []
    for images, labels, failures in loader:
        unreadable.extend(failures)
        if len(labels):
            probs.append(predictor.predict(images.numpy()))
            targets.append(labels.numpy())
        events.advanced(len(labels) + len(failures))
    if not targets:
        raise UsageError(f"{folder.root}: none of the images could be read")
    all_probs, all_targets = np.concatenate(probs), np.concatenate(targets)
    matrix = confusion_matrix(all_targets, all_probs.argmax(1), len(classes))
    return Evaluation(classification_report(matrix, classes), unreadable, all_probs, all_targets)
