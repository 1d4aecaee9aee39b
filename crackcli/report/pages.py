"""What every page crack writes shares: the template environment and links relative to the page."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    import jinja2

PAGE_NAME = "index.html"  # every page crack writes is the index of its folder


@functools.cache
def templates() -> jinja2.Environment:
    import jinja2  # 50 ms of imports: a scan pays them on its writer thread, while it scores

    return jinja2.Environment(
        loader=jinja2.PackageLoader("crackcli.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a name missing from the context is a bug, not an empty cell
        trim_blocks=True,
        lstrip_blocks=True,
    )


def relative_path(target: str | None, folder: Path) -> str | None:
    """``target`` (a path as a report records it, absolute or from the working directory of the scan)
    relative to ``folder``, or None.

    A relative path recorded from another working directory (`crack report` run elsewhere, or the
    folder moved) is found inside ``folder`` by its trailing parts: ``runs/scan/x/sub/a.json`` is
    ``sub/a.json`` of the folder that holds it.
    """
    if not target:
        return None
    base = _absolute(str(folder)) + os.sep
    absolute = _absolute(target)
    # Nearly every target is inside the folder: a prefix test spares relpath's walk over both paths.
    if absolute.startswith(base):
        return absolute[len(base) :]
    if not os.path.isabs(target) and not os.path.exists(absolute):
        parts = Path(target).parts
        for start in range(1, len(parts)):
            if os.path.exists(os.path.join(base, *parts[start:])):
                return os.path.join(*parts[start:])
    return os.path.relpath(absolute, base)


def link(target: str | None, folder: Path) -> str | None:
    """``target`` as a URL relative to ``folder`` (see ``relative_path``), or None."""
    relative = relative_path(target, folder)
    return None if relative is None else "/".join(quote(part) for part in relative.split(os.sep))


def _absolute(path: str) -> str:
    return os.path.normpath(path if os.path.isabs(path) else os.path.join(os.getcwd(), path))
