"""Atomic file output: readers (and a crash) see the old file or the whole new one, never a part."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates 0600 files; outputs get the permissions any normally created file would have.
_FILE_MODE = 0o666 & ~_current_umask()


@contextmanager
def atomic_writer(path: Path, durable: bool = False) -> Iterator[BinaryIO]:
    """A binary handle on a temporary file beside ``path`` that replaces ``path`` when the block succeeds.

    ``durable`` also flushes the data to disk before the rename, for files whose loss costs hours
    (checkpoints): after a power cut the old or the new checkpoint is there, complete.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_writer(path) as handle:
        handle.write(data)


def remove_leftover_parts(folder: Path, names: tuple[str, ...]) -> None:
    """Delete temporary files that a killed writer of ``names`` left in ``folder`` (SIGKILL skips cleanup)."""
    for name in names:
        for part in folder.glob(f".{name}.*.part"):
            part.unlink(missing_ok=True)
