"""The one place where settings meet flags.

Messages from the core name settings by field, in backticks: `` `max_pixels` ``, or with a value,
`` `mode=patch` `` and `` `amp=False` ``, as a library caller writes them.  The command line shows each
as the flag that sets it: ``--max-pixels``, ``--mode patch``, ``--no-amp``.
"""

from __future__ import annotations

import re

# Fields whose flag is not the field name with dashes.
_FLAGS = {
    "image_format": "--format",
    "class_masks": "--class-mask",
    "overlay_max_side": "--overlay-size",
}
# Settings given by a flag of their own per value.
_VALUE_FLAGS = {("precision", "fp16"): "--fp16", ("precision", "int8"): "--int8"}
_SETTING = re.compile(r"`([a-z][a-z0-9_]*)(?:=([^`]*))?`")


def flag(field: str) -> str:
    """The command-line flag that sets ``field``."""
    return _FLAGS.get(field, "--" + field.replace("_", "-"))


def _as_flag(match: re.Match[str]) -> str:
    name, value = match.group(1), match.group(2)
    if (name, value) in _VALUE_FLAGS:
        return _VALUE_FLAGS[name, value]
    if value is None or value == "True":
        return flag(name)
    if value == "False":
        return "--no-" + flag(name)[2:]
    return f"{flag(name)} {value}"


def as_flags(message: str) -> str:
    """``message`` with every `field` or `field=value` written as the command line would set it."""
    return _SETTING.sub(_as_flag, message)
