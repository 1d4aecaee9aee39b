"""Errors a user can cause and fix; the CLI prints them as one line, never a traceback.

Messages name the settings they are about by field name in backticks (`` `max_pixels` ``), the names a
library caller passes; the command line shows each as its flag (``--max-pixels``), so one message
serves both.
"""

from __future__ import annotations

_NO_VALUE = object()


class CrackError(Exception):
    """An error with a message fit for one line on stderr: what went wrong, where, and the fix."""


class UsageError(CrackError):
    """The caller asks for something impossible; the CLI exits with status 2."""


class OptionError(UsageError):
    """A setting whose value cannot work: names the field (and the value), what is wrong and the fix."""

    def __init__(self, field: str, problem: str, value: object = _NO_VALUE) -> None:
        self.field = field
        self.problem = problem
        shown = "" if value is _NO_VALUE else f" {value}"
        super().__init__(f"{setting(field)}{shown}: {problem}")


def setting(field: str) -> str:
    """How a message names a setting: its field name in backticks, shown as a flag on the command line."""
    return f"`{field}`"


class DivergedWeights(CrackError):
    """A model whose weights hold NaN or infinite values: what a diverged training run leaves."""

    def __init__(self, where: str, tensors: list[str]) -> None:
        more = f" and {len(tensors) - 1} more" if len(tensors) > 1 else ""
        super().__init__(
            f"{where}: weights hold NaN or infinite values ({tensors[0]}{more}): the training run diverged; "
            f"train again with a lower {setting('lr')}"
        )
