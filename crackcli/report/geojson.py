"""``findings.geojson``: a scan job on a map (RFC 7946), one point per photo at its EXIF GPS position.

Coordinates are WGS 84 longitude, latitude (and altitude in metres where the photo has one), as QGIS,
geojson.io and web maps expect.  Photos without a position are still listed, with a null geometry, so
the file accounts for every photo; failed photos are left out (they have no findings).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from crackcli.io.atomic import atomic_write_bytes
from crackcli.report.pages import relative_path

GEOJSON_NAME = "findings.geojson"


def _feature(row: dict[str, Any], folder: Path) -> dict[str, Any]:
    lat, lon, alt = row.get("latitude"), row.get("longitude"), row.get("altitude")
    geometry = None
    if lat is not None and lon is not None:
        position = [lon, lat] if alt is None else [lon, lat, alt]
        geometry = {"type": "Point", "coordinates": position}
    return {
        "type": "Feature",
        "geometry": geometry,
        "properties": {
            "file": row.get("image"),
            "time": row.get("taken"),
            "camera": row.get("camera"),
            "crack_fraction": row.get("crack_fraction"),
            "crack_windows": row.get("crack_windows"),
            "max_crack_prob": row.get("max_crack_prob"),
            "regions": row.get("regions"),
            "overlay": relative_path(row.get("overlay"), folder),  # relative to the file, like its links
            "report": relative_path(row.get("report"), folder),
        },
    }


def findings(folder: Path, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The feature collection of a job's summary rows (paths relative to ``folder``)."""
    features = [_feature(row, folder) for row in rows if row.get("status") != "failed"]
    return {"type": "FeatureCollection", "features": features}


def write_findings(folder: Path, rows: Sequence[dict[str, Any]]) -> Path:
    path = folder / GEOJSON_NAME
    atomic_write_bytes(path, json.dumps(findings(folder, rows)).encode())
    return path
