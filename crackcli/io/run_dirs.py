"""Run folders (``runs/train/exp``, ``runs/scan/exp``...): a new run never writes into an earlier one."""

from __future__ import annotations

from pathlib import Path

from crackcli.errors import CrackError


def unique_run_dir(project: Path, name: str) -> Path:
    """``project/name``, or ``name2``, ``name3``... when taken: an earlier run is never overwritten."""
    project.mkdir(parents=True, exist_ok=True)
    for suffix in ["", *range(2, 10_000)]:
        candidate = project / f"{name}{suffix}"
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise CrackError(f"{project}: too many runs named {name}*; pass another `name`")
