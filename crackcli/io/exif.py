"""What a photo's EXIF header says about where, when and with what it was taken.

Only what an inspection report needs: the time it was taken (local time as the camera recorded it, with
its UTC offset when the camera wrote one), the camera, and the GPS position in WGS 84 degrees.  Missing
or malformed tags give None, never an error: a photo without EXIF is still scanned.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from PIL import Image

_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_MAKE, _MODEL, _DATETIME = 0x010F, 0x0110, 0x0132
_DATETIME_ORIGINAL, _OFFSET_TIME_ORIGINAL = 0x9003, 0x9011
_LAT_REF, _LAT, _LON_REF, _LON, _ALT_REF, _ALT = 1, 2, 3, 4, 5, 6


@dataclass(frozen=True)
class PhotoFacts:
    taken: str | None = None  # ISO 8601, e.g. 2026-05-04T13:02:11+02:00
    camera: str | None = None  # make and model
    latitude: float | None = None  # degrees, north positive
    longitude: float | None = None  # degrees, east positive
    altitude: float | None = None  # metres above sea level

    @property
    def has_position(self) -> bool:
        return self.latitude is not None and self.longitude is not None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def photo_facts(exif: Image.Exif) -> PhotoFacts:
    """The facts in a Pillow EXIF block (``Image.getexif()``)."""
    try:
        details = exif.get_ifd(_EXIF_IFD)
        gps = exif.get_ifd(_GPS_IFD)
    except (KeyError, ValueError, TypeError, OSError):
        details, gps = {}, {}
    latitude = _degrees(gps.get(_LAT), gps.get(_LAT_REF), ("N", "S"), 90)
    longitude = _degrees(gps.get(_LON), gps.get(_LON_REF), ("E", "W"), 180)
    if latitude == 0 and longitude == 0:  # what receivers without a fix write
        latitude = longitude = None
    return PhotoFacts(
        taken=_iso_time(details.get(_DATETIME_ORIGINAL) or exif.get(_DATETIME), details.get(_OFFSET_TIME_ORIGINAL)),
        camera=_camera(exif.get(_MAKE), exif.get(_MODEL)),
        latitude=latitude if longitude is not None else None,
        longitude=longitude if latitude is not None else None,
        altitude=_altitude(gps.get(_ALT), gps.get(_ALT_REF)) if latitude is not None else None,
    )


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str):
        return None
    value = value.replace("\x00", "").strip()
    return value or None


def _camera(make: Any, model: Any) -> str | None:
    make_text, model_text = _text(make), _text(model)
    if make_text and model_text and model_text.lower().startswith(make_text.lower()):
        return model_text  # many cameras repeat the make in the model ("Canon" / "Canon EOS R5")
    return " ".join(part for part in (make_text, model_text) if part) or None


def _iso_time(stamp: Any, offset: Any) -> str | None:
    """EXIF's "YYYY:MM:DD HH:MM:SS" as ISO 8601; None when it is not a real date."""
    text = _text(stamp)
    if not text or len(text) < 19 or text[4] != ":" or text[7] != ":":
        return None
    date, time = text[:10].replace(":", "-"), text[11:19]
    if not (date.replace("-", "").isdigit() and time.replace(":", "").isdigit()) or date.startswith("0000"):
        return None
    zone = _text(offset)
    suffix = zone if zone and len(zone) == 6 and zone[0] in "+-" and zone[3] == ":" else ""
    return f"{date}T{time}{suffix}"


def _rational(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return number if math.isfinite(number) else None


def _degrees(parts: Any, ref: Any, hemispheres: tuple[str, str], limit: float) -> float | None:
    """Degrees, minutes, seconds and a hemisphere letter as signed decimal degrees."""
    if not isinstance(parts, tuple) or len(parts) != 3:
        return None
    values = [_rational(p) for p in parts]
    numbers = [v for v in values if v is not None and v >= 0]
    if len(numbers) != 3:
        return None
    degrees, minutes, seconds = numbers
    value = degrees + minutes / 60 + seconds / 3600
    letter = (_text(ref) or hemispheres[0]).upper()
    if letter not in hemispheres or value > limit:
        return None
    return round(-value if letter == hemispheres[1] else value, 7)


def _altitude(value: Any, ref: Any) -> float | None:
    metres = _rational(value)
    if metres is None:
        return None
    below = ref in (1, b"\x01")
    return round(-metres if below else metres, 2)
