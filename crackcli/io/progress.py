"""How long jobs report progress: one observer base class, silent by default.

`prepare`, `scan`, `train` and `eval` take an events object and call it as they go; the command line
passes one that draws progress bars and prints lines, a library caller passes nothing (silence) or its
own subclass.  Jobs with more to tell (a photo's report, an epoch's figures) extend this base.
"""

from __future__ import annotations


class JobEvents:
    """What a job tells whoever watches it; every method does nothing here."""

    def started(self, total: int) -> None:
        """The job begins ``total`` units of work (photos, images, steps)."""

    def advanced(self, count: int = 1) -> None:
        """``count`` more units are done."""

    def warning(self, message: str) -> None:
        """Something the user should know that does not stop the job (a skipped file, a fallback)."""
