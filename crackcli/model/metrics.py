"""Classification metrics: confusion matrix, precision / recall / F-score per class and macro-averaged.

Macro averages run over the classes that occur in the data or in the predictions (as scikit-learn does),
so evaluating on a folder without, say, scratches does not drag the macro F-score towards zero.
A ratio with an empty denominator counts as 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def confusion_matrix(targets: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C) counts; rows are true classes, columns predicted classes."""
    flat = np.asarray(targets, dtype=np.int64) * num_classes + np.asarray(predictions, dtype=np.int64)
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    return np.divide(numerator, denominator, out=np.zeros(len(numerator)), where=denominator > 0)


def classification_report(matrix: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro precision / recall / F1, per-class figures with support, and the matrix itself."""
    matrix = np.asarray(matrix, dtype=np.int64)
    true_positive = np.diag(matrix).astype(np.float64)
    support = matrix.sum(1)
    predicted = matrix.sum(0)
    precision = _ratio(true_positive, predicted.astype(np.float64))
    recall = _ratio(true_positive, support.astype(np.float64))
    f1 = _ratio(2 * precision * recall, precision + recall)
    seen = (support + predicted) > 0
    total = matrix.sum()

    def macro(values: np.ndarray) -> float:
        return float(values[seen].mean()) if seen.any() else 0.0

    return {
        "accuracy": float(true_positive.sum() / total) if total else 0.0,
        "precision": macro(precision),
        "recall": macro(recall),
        "f1": macro(f1),
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(classes, precision, recall, f1, support)
        },
        "confusion_matrix": matrix.tolist(),
        "classes": list(classes),
    }


def ranking_curves(is_positive: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
    """Precision-recall and ROC curves of ``scores`` ranking the positives first, with their summaries.

    One point per distinct score, from the highest down.  AP is the precision at each recall step
    weighted by the step (no interpolation); AUROC the trapezoid area under the ROC curve, which equals
    the probability that a random positive outscores a random negative (ties counting half).  Both are
    None when the data hold only one of the two kinds.
    """
    truth = np.asarray(is_positive, bool)
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    ranked, truth = np.asarray(scores, np.float64)[order], truth[order]
    last_of_score = np.flatnonzero(np.r_[ranked[1:] != ranked[:-1], True])
    true_pos = np.cumsum(truth)[last_of_score].astype(np.float64)
    false_pos = (last_of_score + 1) - true_pos
    positives, negatives = truth.sum(), (~truth).sum()
    thresholds = ranked[last_of_score]
    precision = true_pos / (true_pos + false_pos)
    recall = true_pos / positives if positives else np.zeros_like(true_pos)
    fpr = false_pos / negatives if negatives else np.zeros_like(false_pos)
    both = positives > 0 and negatives > 0
    steps = np.diff(np.r_[0.0, recall])
    return {
        "thresholds": thresholds,
        "precision": precision,
        "recall": recall,
        "fpr": fpr,
        "tpr": recall,
        "ap": float((steps * precision).sum()) if both else None,
        "auroc": _trapezoid(np.r_[0.0, fpr], np.r_[0.0, recall]) if both else None,
        "positives": int(positives),
        "negatives": int(negatives),
    }


def _trapezoid(x: np.ndarray, y: np.ndarray) -> float:
    return float((np.diff(x) * (y[1:] + y[:-1]) / 2).sum())
