"""`crack train`: the training loop of a backbone supervised by IGMSDA (or a baseline loss).

A ``Trainer`` runs epochs of a ``TrainConfig`` (``train.config``) over the images of its data folder
(``train.data``), validates after each, and saves into its run folder (``train.run_folder``) the
released weights with the state that ``--resume`` needs (``train.state``).
"""

from __future__ import annotations

import contextlib
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from crackcli import __version__
from crackcli.data.painting import clean_label, synthetic_cracks_for
from crackcli.data.prepare import manifest_patch_size
from crackcli.errors import CrackError, OptionError, UsageError
from crackcli.model.backbones import IMAGENET_MEAN, IMAGENET_STD, build_model
from crackcli.model.calibration import TEMPERATURES, best_temperature, temperature_losses
from crackcli.model.checkpoint import load_checkpoint, weights_min_filter
from crackcli.model.devices import cuda_unusable_note
from crackcli.model.meta import ModelMeta, default_crack_class
from crackcli.model.metrics import classification_report
from crackcli.train import distributed
from crackcli.train.config import TrainConfig
from crackcli.train.data import load_train_data, make_loader, shared_memory_note, small_validation_note
from crackcli.train.device_setup import amp_dtype_for, batch_layout, configure_backends, model_layout
from crackcli.train.ema import WeightAverage
from crackcli.train.events import TrainEvents
from crackcli.train.losses import Progress, build_loss
from crackcli.train.run_folder import FIGURES_EVERY_EPOCH_FROM_S, RunFolder
from crackcli.train.state import TrainingParts


class TrainingStopped(CrackError):
    """Training cannot go on (diverged, out of memory); the last good checkpoint is kept."""


@dataclass
class TrainResult:
    run_dir: Path | None  # None on the ranks other than 0, which write nothing
    best_epoch: int
    best_f1: float
    history: list[dict[str, Any]] = field(default_factory=list)


class Trainer:
    """One training run, fresh or resumed; ``fit`` runs the remaining epochs."""

    def __init__(
        self,
        config: TrainConfig,
        events: TrainEvents | None = None,
        resume_from: dict[str, Any] | None = None,
        folder: RunFolder | None = None,
    ) -> None:
        if config.min_filter_px is None:  # resolved once and saved: a resume keeps it whatever becomes of --weights
            config = replace(config, min_filter_px=weights_min_filter(config.weights))
        self.config = config
        self.context, self.device = distributed.start(config.device)
        self.events = events if (events is not None and self.context.is_main) else TrainEvents()
        if config.device == "auto" and self.device.type == "cpu":
            unusable = cuda_unusable_note()
            if unusable:
                self.events.warning(f"training on the CPU: {unusable}")
        self.data = load_train_data(config)
        for _, message in self.data.unreadable:
            self.events.warning(f"skipped: {message}")
        self.classes = self.data.classes
        crack_class = config.crack_class or default_crack_class(self.classes)
        if crack_class is not None and crack_class not in self.classes:
            raise OptionError("crack_class", f"not one of the classes {', '.join(self.classes)}", f"'{crack_class}'")
        # Patches cut by `crack prepare --size N` tell scanning to use N px windows, not the default 224.
        patch_size = manifest_patch_size(Path(config.data)) or ModelMeta.patch_size
        min_filter = config.min_filter_px
        assert min_filter is not None  # resolved above
        self.meta = ModelMeta(
            config.backbone,
            self.classes,
            crack_class,
            config.image_size,
            IMAGENET_MEAN,
            IMAGENET_STD,
            patch_size,
            min_filter_px=min_filter,
        )
        self.synthetic_cracks = synthetic_cracks_for(
            config.synthetic_cracks,
            self.classes,
            crack_class,
            config.synthetic_stains,
            config.synthetic_confusers,
            config.synthetic_surfaces,
        )

        torch.manual_seed(config.seed)
        cuda = self.device.type == "cuda"
        configure_backends(self.device)
        weights = None if resume_from is not None else config.weights
        self.model = build_model(config.backbone, len(self.classes), weights, classes=self.classes).to(self.device)
        if cuda and self.context.world > 1 and config.sync_bn:
            # Each GPU's share of the batch may be a few images: normalise with the whole batch's statistics.
            self.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        self.model = model_layout(self.model, self.device)
        self.loss_fn = build_loss(
            config.loss,
            len(self.classes),
            self.model.feature_dim,
            lambda0=config.lambda0,
            alpha0=config.alpha0,
            gm_samples=config.gm_samples,
        ).to(self.device)
        self.optimizer = torch.optim.SGD(
            self.model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
        self.amp_dtype = amp_dtype_for(self.device, self.config.amp)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.average = WeightAverage(self.model, config.ema) if config.ema > 0 else None
        self.parts = TrainingParts(self.model, self.average, self.loss_fn, self.optimizer, self.scaler, self.device)
        self.trained: torch.nn.Module = self.model
        if self.context.world > 1:
            self.trained = DistributedDataParallel(self.model, device_ids=[self.device.index] if cuda else None)

        finer_label = clean_label(self.classes, crack_class, "finer_clean") if config.finer_clean > 0 else None
        self.train_batches, self.train_loader = make_loader(
            self.data.train, config, self.context, self.device, self.synthetic_cracks, True, min_filter, finer_label
        )
        self.val_batches, self.val_loader = make_loader(
            self.data.val, config, self.context, self.device, None, False, min_filter
        )
        per_rank = max(1, config.batch // self.context.world)
        short = shared_memory_note(self.train_loader.num_workers, per_rank, config.image_size)
        if short:
            self.events.warning(short)
        self.history: list[dict[str, Any]] = []
        self._skipped: set[str] = set()
        self.start_epoch = 0
        self.best: dict[str, Any] = {"epoch": 0, "f1": -1.0, "report": None}
        # Names the run in args.json and in every checkpoint, so a resume cannot mix two runs' files.
        self.run_id = str((resume_from or {}).get("summary", {}).get("run_id") or uuid.uuid4().hex)
        if resume_from is not None:
            self._restore(resume_from)
        self.folder = folder
        few = small_validation_note(
            self.data, Path(config.data)
        )  # once every option has been checked: no warning before an error
        if few:
            self.events.warning(few)

    @property
    def run_dir(self) -> Path | None:
        """The run folder (rank 0, once ``fit`` has started or when resuming)."""
        return self.folder.path if self.folder is not None else None

    @classmethod
    def resume(cls, checkpoint: Path, events: TrainEvents | None = None) -> Trainer:
        """Continue the run that wrote ``checkpoint`` (its ``last.pt``), in its own folder, with its options."""
        payload = load_checkpoint(checkpoint)
        if "optimizer" not in payload or "config" not in payload:
            raise CrackError(f"{checkpoint}: holds weights only, not a training state; resume from last.pt")
        folder = RunFolder.reopen(checkpoint.parent)
        folder.check_owner(checkpoint, payload)
        return cls(TrainConfig.from_dict(payload["config"]), events, resume_from=payload, folder=folder)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _to_device(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        images = batch_layout(images.to(self.device, non_blocking=True), self.device)
        return images, labels.to(self.device, non_blocking=True)

    def summary(self) -> dict[str, Any]:
        counts = np.bincount([label for _, label in self.data.train], minlength=len(self.classes))
        return {
            "classes": list(self.classes),
            "train_images": {name: int(n) for name, n in zip(self.classes, counts)},
            "val_images": len(self.data.val),
            "unreadable_skipped": len(self.data.unreadable),
            "layout": self.data.layout,
            "device": str(self.device),
            "amp": str(self.amp_dtype).replace("torch.", "") if self.amp_dtype else "off",
            "world_size": self.context.world,
            "workers": self.val_loader.num_workers,
            "steps_per_epoch": len(self.train_batches),
            "milestones": list(self.config.resolved_milestones()),
            "crackcli_version": __version__,
            "torch_version": str(torch.__version__),
            "run_id": self.run_id,
        }

    def fit(self, on_epoch_end: Callable[[int], None] | None = None) -> TrainResult:
        """Run the remaining epochs; rank 0 writes the run folder.  ``on_epoch_end(epoch)`` runs after each save."""
        try:
            if self.context.is_main:
                if self.folder is None:
                    self.folder = RunFolder.create(Path(self.config.project), self.config.name)
                summary = self.summary()
                self.folder.write_args(self.config.as_dict(), summary)
                self.events.run_started(self.folder.path, summary)
            for epoch in range(self.start_epoch, self.config.epochs):
                row = self.train_epoch(epoch)
                report, temperature = self._validate()
                row.update(_report_columns(report), val_temperature=temperature)
                self.history.append(row)
                improved = report["f1"] > self.best["f1"]
                if improved:
                    self.best = {"epoch": epoch + 1, "f1": report["f1"], "report": report}
                if self.context.is_main:
                    self._save(epoch + 1, improved)
                self.events.epoch_ended(row)
                if on_epoch_end is not None:
                    on_epoch_end(epoch)
        except torch.OutOfMemoryError:
            raise TrainingStopped(
                f"out of {self.device.type} memory at `batch` {self.config.batch}, `image_size` "
                f"{self.config.image_size} ({self.config.backbone}); lower `batch` "
                f"(e.g. {max(2, self.config.batch // 2)}) or use a smaller `backbone`"
            ) from None
        finally:
            if self.context.is_main and self.folder is not None:
                self.folder.write_figures(self.history, self.best, self.classes)
            distributed.stop(self.context)
        return TrainResult(self.run_dir, int(self.best["epoch"]), float(self.best["f1"]), self.history)

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        """One pass over the training data; the epoch's row of metrics.csv without the validation columns."""
        config = self.config
        self.trained.train()
        self.train_batches.set_epoch(epoch)
        lr = config.lr_at(epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        steps = len(self.train_batches)
        self.events.epoch_started(epoch, config.epochs, steps)
        loss_sum, images, waited = 0.0, 0, 0.0
        window = _LossWindow(self.device)
        started = last = time.perf_counter()
        loader_start = 0.0
        for step, batch in enumerate(self.train_loader):
            if step == 0:
                loader_start = time.perf_counter() - last  # forked workers start anew each epoch
            else:
                waited += time.perf_counter() - last
            self._warn_skipped(batch.failures)
            if len(batch.labels) < 2 and self.context.world == 1:
                last = time.perf_counter()
                continue  # batch norm cannot train on fewer than 2 images
            x, y = self._to_device(batch.images, batch.labels)
            progress = Progress(epoch * steps + step, config.epochs * steps, epoch, config.epochs)
            with self._autocast():
                features = self.trained(x, features_only=True)
            # float32 inside, outside autocast; the CPU labels let the covariance update skip device syncs
            loss = self.loss_fn(features, y, self.model.classifier, progress, host_labels=batch.labels)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if self.average is not None:
                self.average.update(self.model)
            window.add(loss, len(y))
            if window.steps == LOSS_READ_EVERY:
                loss_sum, images = self._read_losses(window, epoch, step, loss_sum, images)
            last = time.perf_counter()
        if window.steps:
            loss_sum, images = self._read_losses(window, epoch, steps - 1, loss_sum, images)
        seconds = time.perf_counter() - started
        return {
            "epoch": epoch + 1,
            "lr": lr,
            "train_loss": loss_sum / max(images, 1),
            "images_per_s": images * self.context.world / max(seconds, 1e-9),
            # after the first batch: loader start-up is its own column
            "data_wait": waited / max(seconds - loader_start, 1e-9),
            "loader_start_s": loader_start,
            "seconds": seconds,
        }

    def _read_losses(
        self, window: _LossWindow, epoch: int, step: int, loss_sum: float, images: int
    ) -> tuple[float, int]:
        """Read the window's loss (one device sync), stop on divergence, report the steps; the new totals."""
        count, window_images = window.steps, window.images
        value = window.read(self.context)
        if not math.isfinite(value):
            raise TrainingStopped(
                f"loss became {value} at epoch {epoch + 1}, by step {step + 1}: training diverged and stopped; "
                f"the last good checkpoint is kept in {self.run_dir} (epoch {len(self.history)}); "
                "lower `lr`, or try `amp=False`"
            )
        self.events.step(value, window_images * self.context.world, count)
        return loss_sum + value * window_images, images + window_images

    def _warn_skipped(self, failures: list[str]) -> None:
        """One line per image that failed to decode, the first time only (not again every epoch)."""
        for message in failures:
            if message not in self._skipped:
                self._skipped.add(message)
                self.events.warning(f"skipped: {message}")

    @property
    def released_model(self) -> torch.nn.Module:
        """The weights validated, saved as the checkpoint's model and exported: the average with `ema` on."""
        return self.parts.released_model

    @torch.no_grad()
    def _validate(self) -> tuple[dict[str, Any], float]:
        """The validation report of the released weights, and the temperature that calibrates them there."""
        num_classes = len(self.classes)
        model = self.released_model
        # Every rank validates (and rank 0 saves) one model: rank 0's batch-norm statistics.
        distributed.broadcast_buffers(self.model, self.context)
        if model is not self.model:
            distributed.broadcast_buffers(model, self.context)
        model.eval()
        matrix = torch.zeros(num_classes * num_classes, dtype=torch.int64, device=self.device)
        losses = torch.zeros(len(TEMPERATURES), dtype=torch.float64, device=self.device)
        for batch in self.val_loader:
            self._warn_skipped(batch.failures)
            if len(batch.labels) == 0:
                continue
            x, y = self._to_device(batch.images, batch.labels)
            with self._autocast():
                logits = model(x)
            matrix += torch.bincount(y * num_classes + logits.argmax(1), minlength=num_classes * num_classes)
            losses += temperature_losses(logits, y)
        distributed.all_reduce_sum(matrix, self.context)
        distributed.all_reduce_sum(losses, self.context)
        report = classification_report(matrix.view(num_classes, num_classes).cpu().numpy(), self.classes)
        return report, best_temperature(losses.cpu(), num_classes)

    def _save(self, epoch: int, improved: bool) -> None:
        assert self.folder is not None  # rank 0 made it before the first epoch
        best = self.best
        state = {
            **self.parts.state(),
            "epoch": epoch,
            "config": self.config.as_dict(),
            "history": self.history,
            "best": dict(best),
            "summary": {**self.summary(), "epochs_done": epoch, "best_epoch": best["epoch"], "best_val_f1": best["f1"]},
        }
        meta = replace(self.meta, temperature=self.history[-1]["val_temperature"])
        self.folder.save_epoch(meta, self.released_model, state, self.history, improved)
        if self.history[-1]["seconds"] >= FIGURES_EVERY_EPOCH_FROM_S:
            self.folder.write_figures(self.history, self.best, self.classes)

    def _restore(self, payload: dict[str, Any]) -> None:
        meta = ModelMeta.from_dict(payload["meta"])
        if meta.classes != self.classes:
            raise UsageError(
                f"the data's classes ({', '.join(self.classes)}) differ from the checkpoint's "
                f"({', '.join(meta.classes)})"
            )
        self.parts.restore(payload)
        self.start_epoch = int(payload["epoch"])
        self.history = list(payload["history"])
        self.best = dict(payload["best"])


# Steps between two reads of the loss on the host: each read waits for the device to finish its queue.
LOSS_READ_EVERY = 8


class _LossWindow:
    """The loss summed over the last few steps on the device, read (and reset) on the host in one sync."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._reset()

    def _reset(self) -> None:
        self.total = torch.zeros((), dtype=torch.float32, device=self.device)
        self.steps, self.images = 0, 0

    def add(self, loss: torch.Tensor, images: int) -> None:
        self.total += loss.detach().float() * images
        self.steps += 1
        self.images += images

    def read(self, context: distributed.Context) -> float:
        """The mean loss per image over the window (across ranks), then an empty window."""
        total = float(distributed.all_reduce_sum(self.total, context)) / context.world
        mean = total / max(self.images, 1)
        self._reset()
        return mean


def _report_columns(report: dict[str, Any]) -> dict[str, float]:
    columns = {f"val_{key}": float(report[key]) for key in ("accuracy", "precision", "recall", "f1")}
    for name, figures in report["per_class"].items():
        for key in ("precision", "recall", "f1"):
            columns[f"val_{key}_{name}"] = float(figures[key])
    return columns
