"""The files of a scan folder that cover the whole job: its summary tables, ``index.html`` and
``findings.geojson``, rebuilt from every table in the folder so shards that share it come out as one job."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from crackcli.report.geojson import write_findings
from crackcli.report.job_page import job_facts, write_page
from crackcli.report.pages import relative_path
from crackcli.report.summary import merged_rows, read_summary, summary_files, write_summary


def first_report(folder: Path, rows: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The report of the first photo that has one (the model and settings of the job)."""
    for row in rows:
        if row.get("status") != "failed" and row.get("report"):
            try:
                return json.loads((folder / str(relative_path(row["report"], folder))).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
    return None


def refresh_job_files(
    folder: Path, own: Mapping[Path, Sequence[dict[str, Any]]] | None = None, job: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Rewrite ``findings.geojson`` and ``index.html`` of ``folder`` from its summary tables; ``own`` maps
    tables being written to their rows (a running job's, newer than the file).  The merged rows."""
    own = dict(own or {})
    tables = [path for path in summary_files(folder) if path not in own] + list(own)  # the running job's last
    rows = merged_rows(own[path] if path in own else read_summary(path) for path in tables)
    write_findings(folder, rows)
    write_page(folder, rows, job if job is not None else job_facts(first_report(folder, rows)), sorted(tables))
    return rows


def merge_shard_tables(folder: Path) -> Path | None:
    """Write the rows of every table in ``folder`` (shards and an earlier ``summary.csv``) as its
    ``summary.csv``; the shard tables stay.  None when there are no shard tables to merge."""
    tables = summary_files(folder)
    if not any(path.name != "summary.csv" for path in tables):
        return None
    target = folder / "summary.csv"
    write_summary(target, merged_rows(read_summary(path) for path in tables))
    return target
