"""A generated corpus of awkward and broken inputs, written by code (nothing binary is committed).

``write_corpus(folder)`` returns (good, bad): the file names a tool must process, and those it must
refuse with one line each.  Good files are odd but valid; bad files are broken in the ways files
from cameras, drives and colleagues break.

Unreadable files and folders (mode 000) are in the corpus only where permissions bite: for a normal
user, or for root run through ``UNPRIVILEGED`` (setpriv dropping the capabilities that let root read
anything).  Run the tools under test with ``UNPRIVILEGED + command``.
"""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

import numpy as np
from helpers import texture_photo
from PIL import Image


def _unprivileged_prefix() -> list[str] | None:
    """A command prefix under which mode-000 files cannot be read, or None where there is none."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        return None
    prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
    with tempfile.NamedTemporaryFile() as probe:
        os.chmod(probe.name, 0)
        try:
            check = subprocess.run([*prefix, "cat", probe.name], capture_output=True)
        except OSError:
            return None
    return prefix if check.returncode != 0 and b"denied" in check.stderr else None


UNPRIVILEGED = _unprivileged_prefix()
PERMISSIONS_BITE = UNPRIVILEGED is not None


def _jpeg_bytes(rgb: np.ndarray, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=90, **options)
    return buffer.getvalue()


def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _png_declaring(width: int, height: int) -> bytes:
    """A well-formed PNG header claiming ``width``×``height`` over a few bytes of data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


def write_corpus(folder: Path) -> tuple[list[str], list[str]]:
    folder.mkdir(parents=True, exist_ok=True)
    photo = texture_photo(320, 256, seed=1, crack_rows=(120,))
    good: dict[str, bytes] = {}
    bad: dict[str, bytes] = {}

    good["plain.jpg"] = _jpeg_bytes(photo)
    good["gray.png"] = _png_bytes(Image.fromarray(photo[..., 0]))
    good["rgba.png"] = _png_bytes(Image.fromarray(np.dstack([photo, np.full(photo.shape[:2], 200, np.uint8)])))
    good["tiny 1x1.png"] = _png_bytes(Image.fromarray(photo[:1, :1]))
    buffer = io.BytesIO()
    Image.fromarray(photo[..., 0].astype(np.uint16) * 257).save(buffer, "TIFF")
    good["sixteen-bit.tif"] = buffer.getvalue()
    buffer = io.BytesIO()
    Image.fromarray(photo).convert("CMYK").save(buffer, "JPEG", quality=90)
    good["cmyk.jpg"] = buffer.getvalue()
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° when shown
    good["rotated.jpg"] = _jpeg_bytes(photo, exif=exif.tobytes())
    good["-starts with a dash.jpg"] = good["plain.jpg"]
    good["ünïcödé ✓.jpg"] = good["plain.jpg"]

    bad["empty.jpg"] = b""
    bad["truncated.jpg"] = good["plain.jpg"][: len(good["plain.jpg"]) // 3]
    bad["truncated.png"] = good["gray.png"][: len(good["gray.png"]) // 2]
    bad["truncated.tif"] = good["sixteen-bit.tif"][:200]
    bad["noise.png"] = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    bad["bomb.png"] = _png_declaring(100_000, 100_000)

    for name, data in {**good, **bad}.items():
        (folder / name).write_bytes(data)
    # A name that is not UTF-8 (Latin-1 "café"), valid as a Linux file name.
    os.close(os.open(os.fsencode(folder) + b"/caf\xe9.jpg", os.O_WRONLY | os.O_CREAT, 0o644))
    with open(os.fsencode(folder) + b"/caf\xe9.jpg", "wb") as handle:
        handle.write(good["plain.jpg"])
    good["caf\udce9.jpg"] = b""
    (folder / "folder.jpg").mkdir()  # a folder named like an image, with one good photo inside
    (folder / "folder.jpg" / "inside.jpg").write_bytes(good["plain.jpg"])
    good["folder.jpg/inside.jpg"] = b""
    (folder / "loop.jpg").symlink_to("loop.jpg")  # a link to itself
    bad["loop.jpg"] = b""
    (folder / "sub").mkdir()
    (folder / "sub" / "up").symlink_to("..")  # a folder loop: walking must not follow it forever
    if PERMISSIONS_BITE:
        (folder / "locked.jpg").write_bytes(good["plain.jpg"])
        (folder / "locked.jpg").chmod(0)
        bad["locked.jpg"] = b""
        (folder / "locked_folder").mkdir()
        (folder / "locked_folder" / "hidden.jpg").write_bytes(good["plain.jpg"])
        (folder / "locked_folder").chmod(0)
        bad["locked_folder"] = b""
    return sorted(good), sorted(bad)
