"""What `crack train` shows while it runs: a line per epoch, and a live bar inside each epoch on a terminal."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from crackcli.cli.console import err, print_warning
from crackcli.train.events import TrainEvents


class ConsoleEvents(TrainEvents):
    """One line per epoch on stderr, with a live progress bar inside the epoch on a terminal."""

    def __init__(self, live: bool) -> None:
        self.live = live and err.is_terminal
        self.bar: Any = None
        self.task: Any = None
        self.images = 0
        self.started_at = 0.0

    def run_started(self, run_dir: Path, summary: dict[str, Any]) -> None:
        counts = ", ".join(f"{name} {n}" for name, n in summary["train_images"].items())
        err.print(
            f"training in {run_dir}: {counts} ({summary['layout']}, {summary['val_images']} for validation), "
            f"{summary['device']}, amp {summary['amp']}, {summary['world_size']} process(es)",
            highlight=False,
        )

    def epoch_started(self, epoch: int, epochs: int, steps: int) -> None:
        self.images, self.started_at = 0, time.perf_counter()
        if not self.live:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(
            TextColumn(f"epoch {epoch + 1}/{epochs}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeRemainingColumn(),
            console=err,
            transient=True,
        )
        self.bar.start()
        self.task = self.bar.add_task("train", total=steps, status="")

    def step(self, loss: float, images: int, steps: int = 1) -> None:
        self.images += images
        if self.bar is not None:
            rate = self.images / max(time.perf_counter() - self.started_at, 1e-9)
            self.bar.update(self.task, advance=steps, status=f"loss {loss:.4f}  {rate:.0f} img/s")

    def epoch_ended(self, row: dict[str, Any]) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
        err.print(
            f"epoch {row['epoch']}: loss {row['train_loss']:.4f}  val F {row['val_f1']:.4f}  "
            f"acc {row['val_accuracy']:.4f}  lr {row['lr']:.3g}  {row['images_per_s']:.0f} img/s  "
            f"{row['seconds']:.1f} s",
            highlight=False,
        )

    def warning(self, message: str) -> None:
        print_warning(message)


class QuietEvents(TrainEvents):
    def warning(self, message: str) -> None:
        print_warning(message)
