"""What a training run reports as it goes (kept light: the command line imports it before torch)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crackcli.io.progress import JobEvents


class TrainEvents(JobEvents):
    """What a live view hears from the trainer beyond warnings; silent here (library use, other ranks)."""

    def run_started(self, run_dir: Path, summary: dict[str, Any]) -> None:
        """The run folder and what the run trains on (classes, images, device)."""

    def epoch_started(self, epoch: int, epochs: int, steps: int) -> None:
        """Epoch ``epoch`` (from 0) of ``epochs`` begins; it has ``steps`` steps."""

    def step(self, loss: float, images: int, steps: int = 1) -> None:
        """``steps`` optimisation steps on ``images`` images ended, their mean loss per image ``loss``."""

    def epoch_ended(self, row: dict[str, Any]) -> None:
        """The epoch's row of metrics.csv, validation included."""
