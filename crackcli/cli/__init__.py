"""The `crack` command line: parses options, calls the core, renders results, sets exit codes.

Each command lives in a module of this package; importing them registers them on ``app``.
"""

from __future__ import annotations

import sys

from crackcli.cli import data, deploy, info, training  # noqa: F401, I001 - registers the commands, in help order
from crackcli.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the `crack` script and `python -m crackcli`."""
    try:
        app()
    except KeyboardInterrupt:
        print("crack: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
