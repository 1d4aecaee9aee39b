"""`crack report`: rebuild the job page and map of a scan folder, e.g. after shards were merged into it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from crackcli.cli.console import err
from crackcli.errors import UsageError


def report(
    folder: Annotated[Path, typer.Argument(help="A crack scan --out folder (its summary*.csv tables).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print what was written as one JSON object.")] = False,
) -> None:
    """Rewrite index.html and findings.geojson of a scan folder from its summary tables; shard tables
    (summary-I-of-N.csv) are merged into summary.csv, and stay."""
    from crackcli.report.geojson import GEOJSON_NAME
    from crackcli.report.job_files import merge_shard_tables, refresh_job_files
    from crackcli.report.pages import PAGE_NAME
    from crackcli.report.summary import summary_files

    if not folder.is_dir():
        raise UsageError(f"{folder}: no such folder; pass the --out folder of a crack scan")
    if not summary_files(folder):
        raise UsageError(f"{folder}: no summary.csv or summary-I-of-N.csv here; pass the --out folder of a crack scan")
    merged = merge_shard_tables(folder)
    rows = refresh_job_files(folder)
    written = {
        "photos": len(rows),
        "summary": str(merged) if merged else None,
        "page": str(folder / PAGE_NAME),
        "geojson": str(folder / GEOJSON_NAME),
    }
    if as_json:
        print(json.dumps(written))
    else:
        merged_note = f", shard tables merged into {merged}" if merged else ""
        err.print(f"{len(rows)} photos: {written['page']}, {written['geojson']}{merged_note}", highlight=False)
