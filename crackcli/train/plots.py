"""Training figures: learning curves and the confusion matrix, written as PNG files."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import numpy as np

from crackcli.io.atomic import atomic_write_bytes


def _save(figure: plt.Figure, path: Path) -> None:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    atomic_write_bytes(path, buffer.getvalue())


def plot_curves(history: Sequence[dict[str, float]], path: Path) -> None:
    """Training loss, validation F-score / accuracy and learning rate per epoch."""
    epochs = [row["epoch"] for row in history]
    figure, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    axes[0].plot(epochs, [row["train_loss"] for row in history], marker=".")
    axes[0].set_title("train loss")
    axes[1].plot(epochs, [row["val_f1"] for row in history], marker=".", label="macro F")
    axes[1].plot(epochs, [row["val_accuracy"] for row in history], marker=".", label="accuracy")
    axes[1].set_title("validation")
    axes[1].legend()
    axes[2].plot(epochs, [row["lr"] for row in history], marker=".")
    axes[2].set_yscale("log")
    axes[2].set_title("learning rate")
    for axis in axes:
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
    figure.tight_layout()
    _save(figure, path)


def plot_confusion(matrix: Sequence[Sequence[int]], classes: Sequence[str], path: Path, title: str) -> None:
    """Counts with rows = true class and columns = predicted class, shaded by row share."""
    counts = np.asarray(matrix)
    shares = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    size = 1.2 + 0.9 * len(classes)
    figure, axis = plt.subplots(figsize=(size + 1, size))
    image = axis.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (row, col), count in np.ndenumerate(counts):
        axis.text(col, row, str(count), ha="center", va="center", color="white" if shares[row, col] > 0.5 else "black")
    axis.set_xticks(range(len(classes)), classes, rotation=30, ha="right")
    axis.set_yticks(range(len(classes)), classes)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(title)
    figure.colorbar(image, ax=axis, fraction=0.046)
    figure.tight_layout()
    _save(figure, path)


def plot_ranking(curves: dict, path: Path, kind: str, positive: str, threshold: float | None) -> None:
    """The precision-recall (``kind="pr"``) or ROC (``"roc"``) curve of ``ranking_curves``, with the
    operating point at ``threshold`` (0.5 when None) marked."""
    x, y = (curves["recall"], curves["precision"]) if kind == "pr" else (curves["fpr"], curves["tpr"])
    figure, axis = plt.subplots(figsize=(4.6, 4.2))
    axis.plot(np.r_[0.0, x], np.r_[y[0] if kind == "pr" else 0.0, y], drawstyle="steps-post", lw=1.6)
    at = threshold if threshold is not None else 0.5
    reached = np.flatnonzero(curves["thresholds"] >= at)
    if len(reached):
        k = reached[-1]
        axis.plot(x[k], y[k], "o", color="#c62828", label=f"threshold {at:g}")
        axis.legend(loc="lower left" if kind == "pr" else "lower right")
    if kind == "pr":
        axis.set_xlabel(f"recall of {positive}")
        axis.set_ylabel("precision")
        summary = f"AP {curves['ap']:.4f}" if curves["ap"] is not None else "AP undefined"
    else:
        axis.plot([0, 1], [0, 1], ls=":", color="grey", lw=1)
        axis.set_xlabel("false positive rate")
        axis.set_ylabel(f"true positive rate ({positive})")
        summary = f"AUROC {curves['auroc']:.4f}" if curves["auroc"] is not None else "AUROC undefined"
    axis.set_xlim(-0.02, 1.02)
    axis.set_ylim(-0.02, 1.02)
    axis.set_title(f"{'precision-recall' if kind == 'pr' else 'ROC'}: {summary}")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    _save(figure, path)
