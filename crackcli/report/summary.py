"""The job's table: ``summary.csv`` (``summary-<I>-of-<N>.csv`` per shard), one row per input.

Written by `crack scan` as photos finish and read back by the job page and the GeoJSON (`crack report`
rebuilds both from the tables of all shards in a folder), so every column is plain text a spreadsheet or
``csv`` reader takes as it is: UTF-8 without a byte-order mark, numbers in C notation, region boxes as a
JSON list of ``[x0, y0, x1, y1, max_prob]`` in photo pixels.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from crackcli.io.atomic import atomic_write_csv

SUMMARY_FIELDS = (
    "image",
    "status",
    "width",
    "height",
    "windows",
    "crack_windows",
    "crack_fraction",
    "max_crack_prob",
    "line_check_cleared",
    "regions",
    "region_boxes",
    "crack_length_px",
    "max_width_px",
    "crack_length_mm",
    "max_width_mm",
    "taken",
    "camera",
    "latitude",
    "longitude",
    "altitude",
    "report",
    "overlay",
    "error",
    "seconds",
)
_NUMBERS = frozenset(
    ("width", "height", "windows", "crack_windows", "crack_fraction", "max_crack_prob", "line_check_cleared", "regions")
    + ("crack_length_px", "max_width_px", "crack_length_mm", "max_width_mm")
    + ("latitude", "longitude", "altitude", "seconds")
)
SHARD_PATTERN = "summary-*-of-*.csv"


def summary_row(report: dict[str, Any], status: str) -> dict[str, Any]:
    """The row of a scanned (or kept) photo's report."""
    summary = report["summary"]
    facts = report.get("exif") or {}
    traced = summary.get("trace") or {}  # `crack scan --trace` only
    return {
        "image": report["image"],
        "status": status,
        "width": report["width"],
        "height": report["height"],
        "windows": summary["windows"],
        "crack_windows": summary["crack_windows"],
        "crack_fraction": summary["crack_fraction"],
        "max_crack_prob": summary["max_crack_prob"],
        "line_check_cleared": summary.get("line_check_cleared"),
        "regions": len(summary["regions"]),
        "region_boxes": json.dumps([[*r["bbox"], r["max_prob"]] for r in summary["regions"]]),
        "crack_length_px": traced.get("length_px"),
        "max_width_px": traced.get("max_width_px"),
        "crack_length_mm": traced.get("length_mm"),
        "max_width_mm": traced.get("max_width_mm"),
        "taken": facts.get("taken"),
        "camera": facts.get("camera"),
        "latitude": facts.get("latitude"),
        "longitude": facts.get("longitude"),
        "altitude": facts.get("altitude"),
        "report": report["outputs"]["report"],
        "overlay": report["outputs"].get("overlay"),
        "error": "",
        "seconds": round(sum(report["timing_s"].values()), 4),
    }


def failed_row(image: str, message: str) -> dict[str, Any]:
    return {"image": image, "status": "failed", "error": message}


def write_summary(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    atomic_write_csv(path, SUMMARY_FIELDS, rows)


def read_summary(path: Path) -> list[dict[str, Any]]:
    """The rows of one summary file, numbers as numbers and empty cells as None."""
    with path.open(newline="", encoding="utf-8", errors="surrogateescape") as file:
        return [_typed(row) for row in csv.DictReader(file)]


def summary_files(folder: Path) -> list[Path]:
    """The job tables in ``folder``: ``summary.csv`` and every shard's, oldest first, so that merged in
    this order (``merged_rows``) a photo's row is the one of its latest scan."""
    whole = folder / "summary.csv"
    files = [*folder.glob(SHARD_PATTERN), *([whole] if whole.is_file() else [])]
    return sorted(files, key=lambda path: (path.stat().st_mtime_ns, path.name))


def merged_rows(tables: Iterable[Sequence[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per photo over several tables (shards, or a job and its reruns): a later table's row of a
    photo replaces an earlier one's, and rows keep the order in which photos first appear."""
    rows: dict[str, dict[str, Any]] = {}
    for table in tables:
        for row in table:
            rows[row.get("image") or ""] = row
    return list(rows.values())


def region_boxes(row: dict[str, Any]) -> list[list[float]]:
    """The ``region_boxes`` column as a list (empty for failed photos and unreadable cells)."""
    try:
        boxes = json.loads(row.get("region_boxes") or "[]")
    except (TypeError, ValueError):
        return []
    return [box for box in boxes if isinstance(box, list) and len(box) == 5] if isinstance(boxes, list) else []


def _typed(row: dict[str, str | None]) -> dict[str, Any]:
    typed: dict[str, Any] = {}
    for key, value in row.items():
        if key is None:
            continue  # cells beyond the header: a hand-edited file
        if value in (None, ""):
            typed[key] = None
        elif key in _NUMBERS:
            try:
                typed[key] = float(value) if any(c in value for c in ".eEn") else int(value)
            except ValueError:
                typed[key] = None
        else:
            typed[key] = value
    return typed
