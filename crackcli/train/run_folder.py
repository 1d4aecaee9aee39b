"""A training run's folder, ``runs/train/<name>/``: what is in it and how each file is written.

``args.json`` (every option, and what the run trains on), ``metrics.csv`` (a row per epoch), ``last.pt``
(every epoch), ``best.pt`` (the best validation macro F, a hard link to that epoch's ``last.pt``),
``curves.png`` and ``confusion_matrix.png``.  Every file is written atomically, so a run killed at any
moment leaves whole files, and ``--resume`` only has to clear the temporary parts it left behind.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from crackcli.errors import CrackError
from crackcli.io.atomic import atomic_write_bytes, remove_leftover_parts
from crackcli.io.run_dirs import unique_run_dir
from crackcli.model.checkpoint import save_checkpoint
from crackcli.model.meta import ModelMeta

RUN_FILES = ("args.json", "metrics.csv", "last.pt", "best.pt", "curves.png", "confusion_matrix.png")
FIGURES_EVERY_EPOCH_FROM_S = 20.0  # shorter epochs draw the figures once, at the end (drawing takes ~0.6 s)


@dataclass(frozen=True)
class RunFolder:
    path: Path

    @classmethod
    def create(cls, project: Path, name: str) -> RunFolder:
        """A new folder ``project/name`` (``name2``, ``name3``… when taken): an earlier run is never overwritten."""
        return cls(unique_run_dir(project, name))

    @classmethod
    def reopen(cls, path: Path) -> RunFolder:
        """The folder of a run to resume, cleared of the temporary parts a killed writer left."""
        remove_leftover_parts(path, RUN_FILES)
        return cls(path)

    def check_owner(self, checkpoint: Path, payload: dict[str, Any]) -> None:
        """Refuse to resume into this folder a checkpoint that another run saved (copied or moved here)."""
        try:
            written = json.loads((self.path / "args.json").read_text())
        except FileNotFoundError:
            return  # a checkpoint alone in a folder: the run's files start again here
        except (OSError, ValueError):
            raise CrackError(f"{self.path / 'args.json'}: unreadable; restore it or resume into a copy") from None
        ours, theirs = payload.get("summary", {}).get("run_id"), written.get("summary", {}).get("run_id")
        # Runs saved before run ids existed are told apart by their options (compared as JSON, as written).
        same = (
            ours == theirs
            if ours and theirs
            else json.loads(json.dumps(payload.get("config"))) == written.get("config")
        )
        if not same:
            raise CrackError(
                f"{checkpoint}: saved by another run than the one whose files are in {self.path}; resume from "
                "the last.pt in that run's own folder, or move the checkpoint to a folder of its own"
            )

    @property
    def last(self) -> Path:
        return self.path / "last.pt"

    @property
    def best(self) -> Path:
        return self.path / "best.pt"

    def write_args(self, config: dict[str, Any], summary: dict[str, Any]) -> None:
        args = {"config": config, "summary": summary}
        atomic_write_bytes(self.path / "args.json", (json.dumps(args, indent=2) + "\n").encode())

    def save_epoch(
        self, meta: ModelMeta, model: nn.Module, state: dict[str, Any], history: list[dict[str, Any]], improved: bool
    ) -> None:
        """``last.pt`` with the training state, ``best.pt`` when the epoch ``improved``, and ``metrics.csv``."""
        save_checkpoint(self.last, meta, model, **state)
        if improved:
            link_or_copy(self.last, self.best)
        self.write_metrics(history)

    def write_metrics(self, history: list[dict[str, Any]]) -> None:
        columns: list[str] = list(dict.fromkeys(key for row in history for key in row))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in history:
            writer.writerow({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in row.items()})
        atomic_write_bytes(self.path / "metrics.csv", buffer.getvalue().encode())

    def write_figures(self, history: list[dict[str, Any]], best: dict[str, Any], classes: tuple[str, ...]) -> None:
        """curves.png and confusion_matrix.png; a plotting failure must never cost the run."""
        report = best.get("report")
        if not history or report is None:
            return
        with contextlib.suppress(Exception):
            from crackcli.train.plots import plot_confusion, plot_curves

            plot_curves(history, self.path / "curves.png")
            plot_confusion(
                report["confusion_matrix"],
                classes,
                self.path / "confusion_matrix.png",
                f"validation, epoch {best['epoch']} (macro F {report['f1']:.4f})",
            )


def link_or_copy(source: Path, target: Path) -> None:
    """Make ``target`` a hard link to ``source`` (a copy where links are not possible), replacing it atomically.
    ``source`` is later replaced by rename, so the link keeps this version."""
    temporary = target.with_name(f".{target.name}.link")
    temporary.unlink(missing_ok=True)
    try:
        os.link(source, temporary)
    except OSError:
        shutil.copyfile(source, temporary)
    os.replace(temporary, target)
