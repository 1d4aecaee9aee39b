"""``index.html`` of a `crack eval --out` folder: the figures, the per-class table and the misclassified
images, each shown from a small copy in the folder, so the page is whole without the data beside it."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from crackcli import __version__
from crackcli.io.atomic import atomic_write_bytes
from crackcli.report.pages import PAGE_NAME, link, templates


def write_eval_page(
    folder: Path, report: dict[str, Any], figures: Sequence[str], shown: Sequence[dict[str, Any]]
) -> Path:
    """The page of an evaluation: ``report`` as `crack eval --json` prints it, ``figures`` (PNG names in
    ``folder``) and the misclassified images ``shown`` (the first rows of ``report["misclassified"]``,
    each with the path of its small copy as ``thumb``)."""
    page = (
        templates()
        .get_template("eval.html.j2")
        .render(
            title=f"crack eval: {Path(report['model']).name} on {Path(report['data']).name}",
            report=report,
            figures=[link(str(folder / name), folder) for name in figures],
            mistakes=[{**row, "thumb": link(row.get("thumb"), folder)} for row in shown],
            hidden=len(report["misclassified"]) - len(shown),
            total_mistakes=len(report["misclassified"]),
            version=__version__,
            made=time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        )
    )
    path = folder / PAGE_NAME
    atomic_write_bytes(path, page.encode("utf-8", "surrogateescape"))
    return path
