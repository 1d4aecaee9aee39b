"""What a scan job reports as it goes (kept light: the command line imports it before any scanning code)."""

from __future__ import annotations

from typing import Any

from crackcli.io.progress import JobEvents


class ScanEvents(JobEvents):
    """What a scan job tells as it goes, beyond progress; silent here."""

    def photo_scanned(self, report: dict[str, Any]) -> None:
        """A photo's report, scanned now or kept from an earlier run into the same folder."""

    def photo_failed(self, image: str, message: str) -> None:
        """An input (a photo, or an argument that named none) that could not be scanned; the job goes on."""
