"""Atomic file output: readers (and a crash) see the old file or the whole new one, never a part.

Output faults a user can fix (the output path is a file, a folder without write permission, a full or
read-only disk) become one ``OutputError`` naming the path and the fix, wherever a command writes.
"""

from __future__ import annotations

import csv
import errno
import io
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from crackcli.errors import CrackError

# OS errors while writing that say something about the output place, not about crack: told as OutputError.
_OUTPUT_FAULTS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EISDIR})


class OutputError(CrackError):
    """An output that cannot be written; a job stops on it (the next file would fail the same way)."""


def output_error(path: Path, exc: OSError) -> OutputError:
    """The one line for an OS error met while writing ``path`` (a file, or a folder being made)."""
    code = exc.errno
    if code == errno.ENOSPC or code == errno.EDQUOT:
        return OutputError(f"{path}: the disk is full (no space left); free some space or choose another `out`")
    if code in (errno.EACCES, errno.EPERM):
        return OutputError(
            f"{path}: no permission to write here; choose another `out` or give write access (chmod u+w)"
        )
    if code == errno.EROFS:
        return OutputError(f"{path}: on a read-only file system; choose another `out`")
    if code in (errno.ENOTDIR, errno.EEXIST):
        return OutputError(f"{path}: a file is in the way of an output folder; choose another `out` or move it")
    return OutputError(f"{path}: cannot be written ({exc.strerror or exc.__class__.__name__}); check the output folder")


def make_folder(path: Path) -> None:
    """``mkdir -p path``, with output faults as one ``OutputError``."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise output_error(path, exc) from None


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
    make_folder(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    except OSError as exc:
        raise output_error(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, (FileNotFoundError, IsADirectoryError)) and not path.parent.is_dir():
            raise output_error(path.parent, exc) from None  # the folder went away meanwhile
        if exc.errno in _OUTPUT_FAULTS:
            raise output_error(path, exc) from None
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_writer(path) as handle:
        handle.write(data)


def atomic_write_csv(path: Path, fields: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> None:
    """A UTF-8 CSV table with a header row; keys of a row beyond ``fields`` are left out."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(path, buffer.getvalue().encode("utf-8", "surrogateescape"))


def remove_leftover_parts(folder: Path, names: tuple[str, ...]) -> None:
    """Delete temporary files that a killed writer of ``names`` left in ``folder`` (SIGKILL skips cleanup)."""
    for name in names:
        for part in folder.glob(f".{name}.*.part"):
            part.unlink(missing_ok=True)
