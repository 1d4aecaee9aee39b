"""What the commands that take photos share: turning arguments (files, folders, globs, ``-`` for a list on
stdin) into a stable list of files, safe output names, and shards of the list for parallel jobs."""

from __future__ import annotations

import glob
import hashlib
import os
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO, TextIO

from crackcli.errors import OptionError
from crackcli.io.images import is_image_path, walk_files


def read_path_list(stream: TextIO) -> list[str]:
    """One path per line (as ``find`` prints them); blank lines are ignored."""
    return [line.rstrip("\r\n") for line in stream if line.strip()]


def read_null_separated(stream: BinaryIO) -> list[str]:
    """Paths ended by NUL bytes (``find -print0``, ``xargs -0``): any file name, newlines included, in the
    file system's encoding (undecodable bytes kept as surrogates, as ``os.fsdecode`` does)."""
    return [os.fsdecode(part) for part in stream.read().split(b"\0") if part]


def collect_inputs(sources: Iterable[str], out: Path) -> tuple[list[Path], list[tuple[str, str]]]:
    """Image files named by ``sources`` (files, folders searched recursively, globs), and the failures."""
    out_resolved = out.resolve()
    found: list[Path] = []
    failures: list[tuple[str, str]] = []

    def unlisted(folder: Path, message: str) -> None:
        failures.append((str(folder), message))

    for source in sources:
        path = Path(source)
        if path.is_dir():
            resolved = path.resolve()
            if out_resolved == resolved or resolved in out_resolved.parents:
                raise OptionError("out", f"inside the source folder {source}; choose an `out` outside it", out)
            found += sorted(p for p in walk_files(path, unlisted) if is_image_path(p))
        elif path.is_file():
            found.append(path)
        elif glob.has_magic(source):
            matches = sorted(Path(p) for p in glob.glob(source, recursive=True))
            files = [p for p in matches if p.is_file() and is_image_path(p)]
            if not files:
                failures.append((source, f"{source}: no image matches this pattern"))
            found += files
        else:
            failures.append((source, f"{source}: no such file or folder; check the path"))
    unique = list(dict.fromkeys(found))
    return unique, failures


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(name: str) -> str:
    """``name`` with anything but letters, digits, ``.``, ``_`` and ``-`` replaced: it cannot leave a folder."""
    return _UNSAFE.sub("_", name)


def safe_stems(paths: list[Path]) -> list[str]:
    """Filesystem-safe, unique stems; clashing names get a short hash of their full path."""
    return _unique([_safe_part(p.stem) for p in paths], paths)


def mirrored_names(paths: list[Path], sources: Iterable[str]) -> list[str]:
    """Output names that keep the input's subfolders: ``flight2/DJI_0001`` for ``photos/flight2/DJI_0001.JPG``
    found in the folder ``photos``; a photo named directly (or by a glob) keeps its stem alone.  Each part
    is made safe (``safe_name``), so no name can leave the output folder; names that still clash (``a.jpg``
    and ``a.png``, or two source folders holding the same relative path) get a short hash of their path.
    """
    folders = [Path(source) for source in sources if Path(source).is_dir()]

    def name(path: Path) -> str:
        for folder in folders:
            try:
                parts = path.relative_to(folder).with_suffix("").parts
            except ValueError:
                continue
            return "/".join(_safe_part(part) for part in parts)
        return _safe_part(path.stem)

    return _unique([name(path) for path in paths], paths)


def _safe_part(text: str) -> str:
    return safe_name(text).strip("._") or "photo"


def _unique(names: list[str], paths: list[Path]) -> list[str]:
    """``names``, those that clash given a short hash of their path."""
    counts = Counter(names)
    return [
        f"{name}-{hashlib.sha1(str(path).encode('utf-8', 'surrogateescape')).hexdigest()[:8]}"
        if counts[name] > 1
        else name
        for name, path in zip(names, paths)
    ]


def parse_shard(text: str) -> tuple[int, int]:
    """``I/N`` (I counted from 0) -> (I, N); whether they make a shard is the scan options' check."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise OptionError("shard", "give I/N, e.g. 0/4 for the first of four shards", f"'{text}'") from None
    return index, count


def take_shard(items: list, index: int, count: int) -> list:
    """Every ``count``-th item from ``index``: shards of one list cover it exactly once, in balance."""
    return items[index::count]
