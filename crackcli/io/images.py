"""Robust image reading and writing.

Photos come from cameras, drives and colleagues: any of JPEG, PNG, TIFF (8 or 16 bit), BMP or WebP,
gray, RGBA or CMYK, rotated by EXIF.  ``read_rgb`` returns every one of them as an 8-bit RGB array
in display orientation, or raises ``ImageReadError`` with a one-line reason and fix.  The header is
checked against the pixel limit before any pixel is decoded (decompression-bomb guard).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from crackcli.errors import CrackError
from crackcli.io.atomic import atomic_write_bytes
from crackcli.io.exif import PhotoFacts, photo_facts

# HEIC/HEIF: what phones save by default; decoded by pillow-heif (OpenCV cannot read it).
HEIF_SUFFIXES = frozenset({".heic", ".heif"})
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp", *HEIF_SUFFIXES})
DEFAULT_MAX_PIXELS = 300_000_000

# The pixel limit is ours (explicit, settable); Pillow only reads headers here.
Image.MAX_IMAGE_PIXELS = None
cv2.utils.logging.setLogLevel(
    cv2.utils.logging.LOG_LEVEL_SILENT
)  # silent: failures surface as ImageReadError, not as OpenCV log lines


class ImageReadError(CrackError):
    """A file that cannot be used as a photo; the message names the file and the fix."""


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def walk_files(folder: Path, on_error: Callable[[Path, str], None] | None = None) -> Iterator[Path]:
    """Every file under ``folder`` in a stable order, without following symlinked folders (no loops).

    A sub-folder that cannot be listed is reported to ``on_error(folder, message)`` and left out.
    """

    def unlisted(exc: OSError) -> None:
        if on_error is not None:
            where = Path(exc.filename) if exc.filename else folder
            on_error(
                where,
                f"{where}: cannot list this folder ({_reason(exc)}); its photos were left out; "
                "give read access to it (chmod a+rx) or leave it out",
            )

    for root, dirs, files in os.walk(folder, onerror=unlisted):
        dirs.sort()
        for name in sorted(files):
            yield Path(root) / name


@functools.cache
def _register_heif() -> None:
    """Teach Pillow HEIC/HEIF, once, and only when such a file is met (the import costs 0.1 s)."""
    import pillow_heif

    pillow_heif.register_heif_opener()


def _open(path: Path) -> Image.Image:
    if path.suffix.lower() in HEIF_SUFFIXES:
        _register_heif()
    return Image.open(path)


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the header alone, as stored (before EXIF rotation)."""
    try:
        with _open(path) as img:
            return img.size
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise _unreadable(path, exc) from None


# JPEG decoders can scale by 1/2, 1/4 or 1/8 inside the DCT: several times faster than decoding in full.
# They also write RGB themselves, sparing a conversion pass over the photo (0.1 s at 42 MP); the
# REDUCED_GRAYSCALE constants are the scale bits alone, the colour order comes from IMREAD_COLOR_RGB.
_JPEG_RGB = {
    1: cv2.IMREAD_COLOR_RGB,
    2: cv2.IMREAD_REDUCED_GRAYSCALE_2 | cv2.IMREAD_COLOR_RGB,
    4: cv2.IMREAD_REDUCED_GRAYSCALE_4 | cv2.IMREAD_COLOR_RGB,
    8: cv2.IMREAD_REDUCED_GRAYSCALE_8 | cv2.IMREAD_COLOR_RGB,
}


@dataclass(frozen=True)
class PhotoHeader:
    size: tuple[int, int]  # (width, height) as ``read_rgb`` returns the photo, i.e. after EXIF rotation
    facts: PhotoFacts  # time, camera, position


def read_header(path: Path) -> PhotoHeader:
    """What the photo's header says, without decoding its pixels."""
    try:
        with _open(path) as img:
            width, height = img.size
            exif = img.getexif()
            rotated = exif.get(0x0112) in (5, 6, 7, 8)  # EXIF orientations that swap the axes
            facts = photo_facts(exif)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise _unreadable(path, exc) from None
    return PhotoHeader((height, width) if rotated else (width, height), facts)


def read_rgb(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS, reduce: int = 1) -> np.ndarray:
    """Decode ``path`` to an (H, W, 3) uint8 RGB array with EXIF orientation applied.

    ``reduce`` (1, 2, 4 or 8) shrinks each side by that factor (rounding up); JPEGs are decoded at that
    size directly, other formats are decoded in full and area-averaged.
    """
    if reduce not in _JPEG_RGB:
        raise ValueError(f"reduce must be 1, 2, 4 or 8, not {reduce}")
    if path.suffix.lower() in HEIF_SUFFIXES:
        return _shrink(_read_heif(path, max_pixels), reduce)
    if path.suffix.lower() in (".jpg", ".jpeg"):
        return _decode(path, max_pixels, _JPEG_RGB[reduce])
    # Other formats in BGR and converted: OpenCV 5.0 decodes 16-bit TIFFs wrongly when asked for RGB.
    image = _shrink(_decode(path, max_pixels, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH), reduce)
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ImageReadError(f"{path}: unsupported sample type {image.dtype}; convert it to 8 or 16 bit")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB, dst=image)  # in place: a 200 MP photo is 600 MB


def read_gray(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode ``path`` in full to an (H, W) uint8 luminance array with EXIF orientation applied, as
    ``read_rgb`` would orient it (crack tracing measures at the photo's own resolution)."""
    if path.suffix.lower() in HEIF_SUFFIXES:
        return cv2.cvtColor(_read_heif(path, max_pixels), cv2.COLOR_RGB2GRAY)
    return _decode(path, max_pixels, cv2.IMREAD_GRAYSCALE)


def _shrink(image: np.ndarray, reduce: int) -> np.ndarray:
    """Each side divided by ``reduce`` (rounding up), area-averaged."""
    if reduce == 1:
        return image
    height, width = image.shape[:2]
    return cv2.resize(image, (-(-width // reduce), -(-height // reduce)), interpolation=cv2.INTER_AREA)


def _read_heif(path: Path, max_pixels: int) -> np.ndarray:
    """A HEIC/HEIF photo as RGB, in display orientation (pillow-heif applies the file's rotation)."""
    _decode_checks(path, max_pixels)
    try:
        with _open(path) as img:
            return np.array(ImageOps.exif_transpose(img).convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise _unreadable(path, exc) from None


def read_mask(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """A crack mask as a boolean (H, W) array, in the formats masks come in.

    - gray, 8 or 16 bit: pixels from half scale up are crack (anti-aliased 0/255 masks);
    - 0/1 masks (all values 0 or 1, saved as they are by many labelling scripts): 1 is crack;
    - palette (VOC-style) PNGs: every class index but 0 (background) and 255 (VOC's "unlabelled"
      border) is crack, whatever colour the palette gives it;
    - colour masks (a red or green crack on black): a pixel whose brightest channel is from half scale up.
    """
    if _is_palette(path):
        indices = _palette_indices(path, max_pixels)
        return (indices != 0) & (indices != 255)
    colour = _decode(path, max_pixels, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)  # EXIF-rotated like the photo
    image = colour.max(axis=2) if _has_colour(colour) else colour[..., 0]
    if image.dtype not in (np.uint8, np.uint16):
        raise ImageReadError(f"{path}: unsupported mask sample type {image.dtype}; save it as 8 or 16 bit")
    if image.max() == 1:
        return image == 1
    return image >= (32768 if image.dtype == np.uint16 else 128)


def _has_colour(bgr: np.ndarray) -> bool:
    return bool((bgr[..., 0] != bgr[..., 1]).any() or (bgr[..., 1] != bgr[..., 2]).any())


def _is_palette(path: Path) -> bool:
    try:
        with Image.open(path) as img:
            return img.mode == "P"
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return False  # the decoder below says what is wrong with the file


def _palette_indices(path: Path, max_pixels: int) -> np.ndarray:
    _decode_checks(path, max_pixels)
    try:
        with Image.open(path) as img:
            return np.asarray(img)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise _unreadable(path, exc) from None


def _decode(path: Path, max_pixels: int, flags: int) -> np.ndarray:
    _decode_checks(path, max_pixels)
    try:
        data = np.fromfile(path, dtype=np.uint8)  # any file name, unlike cv2.imread
    except OSError as exc:
        raise _unreadable(path, exc) from None
    image = cv2.imdecode(data, flags)
    if image is None or image.size == 0:
        raise ImageReadError(f"{path}: cannot decode the pixels (truncated or corrupt?); re-copy the file")
    return image


def _decode_checks(path: Path, max_pixels: int) -> None:
    """Refuse a folder, an empty file or a header over the pixel limit before decoding any pixel."""
    if path.is_dir():
        raise ImageReadError(f"{path}: is a folder, not an image; pass the photos inside it or the folder alone")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise _unreadable(path, exc) from None
    if size == 0:
        raise ImageReadError(f"{path}: empty file (0 bytes); re-copy it from the camera or remove it")
    width, height = image_size(path)
    if path.suffix.lower() in (".tif", ".tiff"):
        _refuse_several_pictures(path, (width, height))
    if width * height > max_pixels:
        raise ImageReadError(
            f"{path}: {width}×{height} is {width * height / 1e6:.0f} MP, over the {max_pixels / 1e6:.0f} MP "
            "limit that guards against decompression bombs; raise `max_pixels` if the photo is genuine"
        )


def _refuse_several_pictures(path: Path, size: tuple[int, int]) -> None:
    """A TIFF holding more than one full-size picture: reading its first page only would be a silent guess.
    Smaller pages (a thumbnail, a pyramid of reduced copies) belong to the first and are fine."""
    try:
        with Image.open(path) as img:
            pages = getattr(img, "n_frames", 1)
            full = 0
            for page in range(pages):
                img.seek(page)
                full += img.size == size
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        raise _unreadable(path, exc) from None
    if full > 1:
        raise ImageReadError(
            f"{path}: a TIFF of {full} full-size pages; crack reads one picture per file: "
            "split it into one file per page (e.g. with tiffsplit) and pass those"
        )


def _unreadable(path: Path, exc: BaseException) -> ImageReadError:
    if isinstance(exc, PermissionError):
        return ImageReadError(f"{path}: permission denied; give read access to it (chmod a+r) or leave it out")
    return ImageReadError(f"{path}: not a readable image ({_reason(exc)}); check the file or remove it")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:120] if text else exc.__class__.__name__


def encode_image(
    rgb: np.ndarray, suffix: str, jpeg_quality: int = 95, png_compression: int = 1, bilevel: int = 0
) -> bytes:
    """Encode an RGB (or single-channel) array as ``suffix`` (".png", ".jpg").  ``bilevel``: a 0/255 mask
    as a 1-bit PNG (read back as 0/255 by any reader; a 42 MP mask in a fifth of the time of 8-bit)."""
    params: list[int] = []
    if suffix in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]
    elif suffix == ".png":
        params = [cv2.IMWRITE_PNG_COMPRESSION, int(png_compression), cv2.IMWRITE_PNG_BILEVEL, int(bool(bilevel))]
    pixels = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if rgb.ndim == 3 else rgb
    ok, encoded = cv2.imencode(suffix, pixels, params)
    if not ok:
        raise CrackError(f"could not encode an image as {suffix}")
    return encoded.tobytes()


def write_image(path: Path, rgb: np.ndarray, **encode_options: int) -> None:
    """Encode by ``path``'s suffix and write atomically."""
    atomic_write_bytes(path, encode_image(rgb, path.suffix.lower(), **encode_options))
