"""``index.html``: the page a person reads for a whole scan job, written into its output folder.

One self-contained file (styles and script inline, no network: its content security policy forbids any
request but the folder's own images) that opens from disk on a laptop or a phone.  The photos travel as
one JSON island that the page's script pages, sorts and filters, so 10,000 photos stay light; pictures
are the thumbnails beside it, loaded only for the rows on screen.  Every link is relative: the folder can
be moved, zipped or served as it is.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from crackcli import __version__
from crackcli.io.atomic import atomic_write_bytes
from crackcli.report.geojson import GEOJSON_NAME
from crackcli.report.pages import PAGE_NAME, link, relative_path, templates
from crackcli.report.summary import region_boxes

THUMBNAIL_SUFFIX = "_thumb.jpg"
OVERLAY_SUFFIX = "_overlay.jpg"


def _thumbnail(overlay: str | None, folder: Path) -> str | None:
    if not overlay or not overlay.endswith(OVERLAY_SUFFIX):
        return None
    thumb = overlay[: -len(OVERLAY_SUFFIX)] + THUMBNAIL_SUFFIX
    found = (folder / str(relative_path(thumb, folder))).is_file()
    return thumb if found else overlay  # folders scanned before thumbnails existed


def _measured(row: dict[str, Any], name: str, decimals: int) -> str | None:
    """A traced measurement as text, in mm where the scan had a scale, else in pixels; None untraced."""
    for unit in ("mm", "px"):
        value = row.get(f"{name}_{unit}")
        if value not in (None, ""):
            return f"{float(value):.{decimals}f} {unit}"
    return None


def _photo(row: dict[str, Any], folder: Path) -> dict[str, Any]:
    """What the page shows of one summary row (short keys: the island is the page's bulk)."""
    image = row.get("image") or ""
    return {
        "name": image,
        "status": row.get("status"),
        "w": row.get("width"),
        "h": row.get("height"),
        "windows": row.get("windows"),
        "crack": row.get("crack_windows"),
        "fraction": row.get("crack_fraction"),
        "max": row.get("max_crack_prob"),
        "cleared": row.get("line_check_cleared"),
        "regions": region_boxes(row),
        "length": _measured(row, "crack_length", 1),
        "width": _measured(row, "max_width", 2),
        "taken": row.get("taken"),
        "camera": row.get("camera"),
        "lat": row.get("latitude"),
        "lon": row.get("longitude"),
        "alt": row.get("altitude"),
        "report": link(row.get("report"), folder),
        "overlay": link(row.get("overlay"), folder),
        "thumb": link(_thumbnail(row.get("overlay"), folder), folder),
        "error": row.get("error") or None,
    }


def load_template() -> None:
    """Import the template engine and compile the job page (about 60 ms), ahead of the first write."""
    templates().get_template("job.html.j2")


def page_html(folder: Path, rows: Sequence[dict[str, Any]], job: dict[str, Any], tables: Sequence[Path]) -> str:
    """The page of a job whose summary rows are ``rows`` and whose settings are ``job`` (see ``job_facts``)."""
    photos = [_photo(row, folder) for row in rows]
    counts = {
        "photos": len(photos),
        "with_cracks": sum(bool(p["crack"]) for p in photos),
        "failed": sum(p["status"] == "failed" for p in photos),
        "located": sum(p["lat"] is not None for p in photos),
    }
    return (
        templates()
        .get_template("job.html.j2")
        .render(
            title=f"crack scan: {folder.resolve().name}",
            folder=str(folder.resolve()),
            counts=counts,
            job=job,
            photos=photos,
            tables=[link(str(t), folder) for t in tables],
            geojson=link(str(folder / GEOJSON_NAME), folder) if (folder / GEOJSON_NAME).exists() else None,
            version=__version__,
            made=time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        )
    )


def job_facts(report: dict[str, Any] | None) -> dict[str, Any]:
    """The model and settings of a job, from one of its reports (all reports in a folder share them)."""
    if not report:
        return {}
    provenance = report.get("provenance") or {}
    return {
        "model": report.get("model"),
        "runtime": report.get("runtime"),
        "model_sha256": provenance.get("model_sha256"),
        "patch": report.get("patch"),
        "stride": report.get("stride"),
        "mode": report.get("mode"),
        "threshold": report.get("threshold"),
        "crack_class": report.get("crack_class"),
        "tracer": ((provenance.get("settings") or {}).get("trace") or None),
    }


def write_page(folder: Path, rows: Sequence[dict[str, Any]], job: dict[str, Any], tables: Sequence[Path]) -> Path:
    path = folder / PAGE_NAME
    atomic_write_bytes(path, page_html(folder, rows, job, tables).encode("utf-8", "surrogateescape"))
    return path
