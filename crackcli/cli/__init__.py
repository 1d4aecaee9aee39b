"""The `crack` command line: parses options, calls the core, renders results, sets exit codes.

``app`` registers the commands of ``info``, ``data``, ``training`` and ``deploy``; ``console`` holds
what they share; ``flags`` turns the settings named in core messages into flags.
"""

from __future__ import annotations

from crackcli.cli.app import app, main

__all__ = ["app", "main"]
