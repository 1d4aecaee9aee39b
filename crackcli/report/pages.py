"""What every page crack writes shares: the template environment and links relative to the page."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from urllib.parse import quote

import jinja2

PAGE_NAME = "index.html"  # every page crack writes is the index of its folder


@functools.cache
def templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("crackcli.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a name missing from the context is a bug, not an empty cell
        trim_blocks=True,
        lstrip_blocks=True,
    )


def link(target: str | None, folder: Path) -> str | None:
    """``target`` (a path as a report records it) as a URL relative to ``folder``, or None."""
    if not target:
        return None
    relative = os.path.relpath(os.path.abspath(target), os.path.abspath(folder))
    return "/".join(quote(part) for part in Path(relative).parts)
