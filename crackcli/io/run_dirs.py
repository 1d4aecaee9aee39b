"""Run folders (``runs/train/exp``, ``runs/scan/exp``...): a new run never writes into an earlier one."""

from __future__ import annotations

from pathlib import Path

from crackcli.errors import CrackError
from crackcli.io.atomic import make_folder, output_error


def unique_run_dir(project: Path, name: str) -> Path:
    """``project/name``, or ``name2``, ``name3``... when taken: an earlier run is never overwritten."""
    make_folder(project)
    for suffix in ["", *range(2, 10_000)]:
        candidate = project / f"{name}{suffix}"
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
        except OSError as exc:
            raise output_error(candidate, exc) from None
    raise CrackError(f"{project}: too many runs named {name}*; pass another `name`")
