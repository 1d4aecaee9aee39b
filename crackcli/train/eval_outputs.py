"""What `crack eval` tells and leaves: the JSON report (figures, curves, misclassified images) and, with
``--out``, a folder a person reads: curve and confusion-matrix PNGs, ``misclassified.csv``, small copies
of the misclassified images and an ``index.html`` showing all of it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from crackcli.data.preprocess import fit_patch
from crackcli.errors import CrackError, UsageError
from crackcli.io.atomic import atomic_write_bytes, atomic_write_csv, make_folder
from crackcli.io.images import read_rgb, write_image
from crackcli.model.metrics import ranking_curves
from crackcli.model.predictors import Predictor
from crackcli.report.eval_page import write_eval_page
from crackcli.train.evaluate import Evaluation
from crackcli.train.plots import plot_confusion, plot_ranking

CURVE_POINTS = 200  # points of each curve in the JSON report: enough to draw it again
SHOWN_MISTAKES = 200  # misclassified images shown on the page (all are in misclassified.csv)
THUMBNAIL_SIDE = 160
MISTAKE_FIELDS = ("path", "true", "predicted", "predicted_prob", "crack_prob")
FIGURES = ("pr_curve.png", "roc_curve.png", "confusion_matrix.png")


def _thin(values: np.ndarray, keep: np.ndarray) -> list[float]:
    return [round(float(v), 6) for v in values[keep]]


def crack_curves(evaluation: Evaluation) -> dict[str, Any] | None:
    """The precision-recall and ROC curves of the crack class against the rest (None without one)."""
    if evaluation.crack is None:
        return None
    return ranking_curves(evaluation.targets == evaluation.crack, evaluation.probs[:, evaluation.crack])


def eval_report(
    evaluation: Evaluation, curves: dict[str, Any] | None, predictor: Predictor, model: Path, data: Path
) -> dict[str, Any]:
    """The report `crack eval --json` prints: figures per class and macro, the decision threshold, AP and
    AUROC of the crack class with its ``curves`` (see ``crack_curves``), and every misclassified image,
    most confident first."""
    report: dict[str, Any] = {
        **evaluation.report,
        "model": str(model),
        "data": str(data),
        "runtime": predictor.describe(),
        "crack_class": predictor.meta.crack_class,
        "images": len(evaluation.targets),
        "unreadable": len(evaluation.unreadable),
        "ranking": None,
    }
    if curves is not None:
        count = len(curves["thresholds"])
        keep = np.unique(np.linspace(0, count - 1, min(count, CURVE_POINTS)).round().astype(int))
        report["ranking"] = {
            "ap": curves["ap"],
            "auroc": curves["auroc"],
            "positives": curves["positives"],
            "negatives": curves["negatives"],
            "curve": {key: _thin(curves[key], keep) for key in ("thresholds", "precision", "recall", "fpr")},
        }
    report["misclassified"] = mistakes(evaluation, predictor.meta.classes)
    return report


def mistakes(evaluation: Evaluation, classes: tuple[str, ...]) -> list[dict[str, Any]]:
    """The images given another class than their folder's, the most confident mistakes first."""
    wrong = np.flatnonzero(evaluation.predictions != evaluation.targets)
    crack = evaluation.crack
    rows = [
        {
            "path": str(evaluation.paths[i]),
            "true": classes[evaluation.targets[i]],
            "predicted": classes[evaluation.predictions[i]],
            "predicted_prob": round(float(evaluation.probs[i, evaluation.predictions[i]]), 4),
            "crack_prob": round(float(evaluation.probs[i, crack]), 4) if crack is not None else None,
        }
        for i in wrong
    ]
    return sorted(rows, key=lambda row: -row["predicted_prob"])


def check_out_folder(out: Path, force: bool) -> None:
    """Refuse a folder that holds files unless ``force``: an earlier evaluation's figures are not replaced
    without being asked."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: is a file; pass a folder as `out`")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UsageError(f"{out}: holds files already; pass `force` to replace them, or another `out`")


def write_eval_folder(out: Path, report: dict[str, Any], curves: dict[str, Any] | None) -> list[Path]:
    """The figures, tables, thumbnails and page of ``report`` and its ``curves`` in ``out`` (checked by
    ``check_out_folder``)."""
    make_folder(out)
    plot_confusion(report["confusion_matrix"], report["classes"], out / "confusion_matrix.png", "confusion matrix")
    figures = ["confusion_matrix.png"]
    if curves is not None and curves["ap"] is not None:
        for kind in ("pr", "roc"):
            plot_ranking(curves, out / f"{kind}_curve.png", kind, report["crack_class"], report["threshold"])
        figures = ["pr_curve.png", "roc_curve.png", *figures]
    rows = report["misclassified"]
    atomic_write_csv(out / "misclassified.csv", MISTAKE_FIELDS, rows)
    shown = _write_thumbnails(out / "misclassified", rows)
    atomic_write_bytes(out / "eval.json", json.dumps(report, indent=1).encode())
    page = write_eval_page(out, report, figures, shown)
    return [out / name for name in figures] + [out / "misclassified.csv", out / "eval.json", page]


def _write_thumbnails(folder: Path, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Small copies of the first ``SHOWN_MISTAKES`` misclassified images (the folder is crack's own:
    emptied first, so no copy from an earlier evaluation stays); the rows shown, ``thumb`` set."""
    if folder.is_dir():
        shutil.rmtree(folder)
    make_folder(folder)
    shown = []
    for rank, row in enumerate(rows[:SHOWN_MISTAKES]):
        thumb = folder / f"{rank:04d}.jpg"
        try:
            write_image(thumb, fit_patch(read_rgb(Path(row["path"])), THUMBNAIL_SIDE), jpeg_quality=85)
        except CrackError:  # changed since it was scored: listed without a picture
            shown.append({**row, "thumb": None})
        else:
            shown.append({**row, "thumb": str(thumb)})
    return shown
