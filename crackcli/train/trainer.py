"""`crack train`: supervised training of a backbone with IGMSDA (or a baseline loss) on a labelled folder.

The defaults are the paper's recipe: SGD with momentum, batch 64, lr 0.01 divided by 10 at epochs
65, 95 and 125 of 150, random horizontal flips, 224×224 inputs.  A run lives in ``runs/train/<name>/``:
``args.json``, ``metrics.csv``, ``last.pt`` (every epoch), ``best.pt`` (best validation macro F),
``curves.png`` and ``confusion_matrix.png``.  ``--resume last.pt`` continues exactly where it stopped.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from crackcli import __version__
from crackcli.data.augment import build_augment, synthetic_cracks_for
from crackcli.data.batches import EpochBatches, PatchDataset, collate
from crackcli.data.folders import (
    LabelledFolder,
    holdout_split,
    index_folder,
    is_split_layout,
    limit_per_class,
    photo_groups,
    require_classes,
    unreadable_note,
)
from crackcli.errors import CrackError, UsageError
from crackcli.io.atomic import atomic_write_bytes, remove_leftover_parts
from crackcli.io.run_dirs import unique_run_dir
from crackcli.io.system import usable_cpus
from crackcli.model.backbones import IMAGENET_MEAN, IMAGENET_STD, build_model
from crackcli.model.checkpoint import load_checkpoint, save_checkpoint
from crackcli.model.meta import ModelMeta, default_crack_class
from crackcli.model.metrics import classification_report
from crackcli.train import distributed
from crackcli.train.ema import WeightAverage
from crackcli.train.losses import Progress, build_loss

PAPER_EPOCHS = 150
FIGURES_EVERY_EPOCH_FROM_S = 20.0  # shorter epochs draw the figures once, at the end (drawing takes ~0.6 s)
PAPER_MILESTONES = (65, 95, 125)
# What a run writes in its folder (atomically); a killed run may leave their temporary parts behind.
RUN_FILES = ("args.json", "metrics.csv", "last.pt", "best.pt", "curves.png", "confusion_matrix.png")


@dataclass
class TrainConfig:
    """Every option of a run; saved in ``args.json`` and in checkpoints, so ``--resume`` needs nothing else."""

    data: str
    backbone: str = "resnet50"
    weights: str = "imagenet"
    loss: str = "igmsda"
    alpha0: float = 2.5
    lambda0: float = 0.5
    gm_samples: int = 8
    epochs: int = PAPER_EPOCHS
    batch: int = 64
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    milestones: tuple[int, ...] | None = None  # None: the paper's, scaled to --epochs
    image_size: int = 224
    augment: str = "paper"
    synthetic_cracks: float = 0.0  # share of clean training patches given a painted hairline
    synthetic_stains: float = 0.0  # share of clean training patches given dark blots (staying clean)
    ema: float = 0.0  # decay of the weight average validated and saved; 0: the raw weights
    val_fraction: float = 0.2
    limit_per_class: int | None = None
    device: str = "auto"
    amp: bool | None = None  # None: on for CUDA
    workers: int | None = None
    seed: int = 0
    strict: bool = False
    crack_class: str | None = None
    project: str = "runs/train"
    name: str = "exp"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["milestones"] = list(self.milestones) if self.milestones is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if values.get("milestones") is not None:
            values["milestones"] = tuple(int(m) for m in values["milestones"])
        return cls(**values)

    def resolved_milestones(self) -> tuple[int, ...]:
        if self.milestones is not None:
            return tuple(sorted(self.milestones))
        return tuple(max(1, round(m * self.epochs / PAPER_EPOCHS)) for m in PAPER_MILESTONES)

    def lr_at(self, epoch: int) -> float:
        """Step schedule: the learning rate divided by 10 at each milestone reached (epochs count from 0)."""
        return self.lr * 0.1 ** sum(epoch >= m for m in self.resolved_milestones())

    def check(self) -> None:
        if self.epochs < 1 or self.batch < 2 or self.image_size < 16 or self.lr <= 0:
            raise UsageError("need --epochs ≥ 1, --batch ≥ 2, --image-size ≥ 16 and --lr > 0")
        if self.limit_per_class is not None and self.limit_per_class < 1:
            raise UsageError("--limit-per-class must be at least 1")
        if not 0.0 <= self.ema < 1.0:
            raise UsageError(f"--ema {self.ema}: give a decay per step between 0 (off) and 1, e.g. 0.998")


@dataclass
class TrainData:
    classes: tuple[str, ...]
    train: list[tuple[Path, int]]
    val: list[tuple[Path, int]]
    unreadable: list[tuple[Path, str]]
    layout: str  # "split folders" or "held out X%"


def load_train_data(config: TrainConfig) -> TrainData:
    """Index DATA: ``train/`` + ``val/`` folders, or one folder of classes with ``--val-fraction`` held out by photo."""
    root = Path(config.data)
    if not root.is_dir():
        raise UsageError(f"{root}: not a folder; pass the output of crack prepare --split or a folder of class folders")
    if is_split_layout(root):
        train = index_folder(root / "train")
        require_classes(train, "training")
        try:
            val = index_folder(root / "val", classes=train.classes)
        except UsageError as exc:
            raise UsageError(f"class mismatch between train and val: {exc}") from None
        missing = [name for name, n in val.counts().items() if n == 0]
        if missing:
            raise UsageError(
                f"class mismatch between train and val: {root / 'val'} has no '{missing[0]}' images; "
                "add some or re-run crack prepare --split"
            )
        train_samples, val_samples = train.samples, val.samples
        unreadable, layout = train.unreadable + val.unreadable, "split folders"
        classes = train.classes
    else:
        folder = index_folder(root)
        require_classes(folder, "training")
        groups = photo_groups(root, folder.samples)
        train_samples, val_samples = holdout_split(folder.samples, groups, config.val_fraction, config.seed)
        unreadable, layout, classes = folder.unreadable, f"{config.val_fraction:.0%} held out by photo", folder.classes
    if config.limit_per_class is not None:
        train_samples = limit_per_class(train_samples, config.limit_per_class, config.seed)
    require_classes(LabelledFolder(root, classes, train_samples, []), "training")
    if config.strict and unreadable:
        raise unreadable_note(unreadable)
    return TrainData(classes, train_samples, val_samples, unreadable, layout)


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


class TrainEvents:
    """What a live view hears from the trainer; the base class is silent (library use, other ranks)."""

    def started(self, run_dir: Path, summary: dict[str, Any]) -> None: ...

    def epoch_started(self, epoch: int, epochs: int, steps: int) -> None: ...

    def step(self, loss: float, images: int) -> None: ...

    def epoch_ended(self, row: dict[str, Any]) -> None: ...

    def warning(self, message: str) -> None: ...


class TrainingStopped(CrackError):
    """Training cannot go on (diverged, out of memory); the last good checkpoint is kept."""


@dataclass
class TrainResult:
    run_dir: Path
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
        run_dir: Path | None = None,
    ) -> None:
        config.check()
        self.config = config
        self.context, self.device = distributed.start(config.device)
        self.events = events if (events is not None and self.context.is_main) else TrainEvents()
        self.data = load_train_data(config)
        for _, message in self.data.unreadable:
            self.events.warning(f"skipped: {message}")
        self.classes = self.data.classes
        crack_class = config.crack_class or default_crack_class(self.classes)
        if crack_class is not None and crack_class not in self.classes:
            raise UsageError(f"--crack-class '{crack_class}' is not one of the classes {', '.join(self.classes)}")
        self.meta = ModelMeta(
            config.backbone, self.classes, crack_class, config.image_size, IMAGENET_MEAN, IMAGENET_STD
        )
        self.synthetic_cracks = synthetic_cracks_for(
            config.synthetic_cracks, self.classes, crack_class, config.synthetic_stains
        )

        torch.manual_seed(config.seed)
        cuda = self.device.type == "cuda"
        if cuda:
            torch.backends.cudnn.benchmark = True
        weights = None if resume_from is not None else config.weights
        self.model = build_model(config.backbone, len(self.classes), weights).to(self.device)
        if cuda:
            self.model = self.model.to(memory_format=torch.channels_last)
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
        self.amp_dtype = self._amp_dtype()
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.average = WeightAverage(self.model, config.ema) if config.ema > 0 else None
        self.trained: torch.nn.Module = self.model
        if self.context.world > 1:
            self.trained = DistributedDataParallel(self.model, device_ids=[self.device.index] if cuda else None)

        self.train_batches, self.train_loader = self._loader(self.data.train, train=True)
        self.val_batches, self.val_loader = self._loader(self.data.val, train=False)
        self.history: list[dict[str, Any]] = []
        self._skipped: set[str] = set()
        self.start_epoch = 0
        self.best = {"epoch": 0, "f1": -1.0, "report": None}
        if resume_from is not None:
            self._restore(resume_from)
        self.run_dir = run_dir

    @classmethod
    def resume(cls, checkpoint: Path, events: TrainEvents | None = None) -> Trainer:
        """Continue the run that wrote ``checkpoint`` (its ``last.pt``), in its own folder, with its options."""
        payload = load_checkpoint(checkpoint)
        if "optimizer" not in payload or "config" not in payload:
            raise CrackError(f"{checkpoint}: holds weights only, not a training state; resume from last.pt")
        remove_leftover_parts(checkpoint.parent, RUN_FILES)
        return cls(TrainConfig.from_dict(payload["config"]), events, resume_from=payload, run_dir=checkpoint.parent)

    def _amp_dtype(self) -> torch.dtype | None:
        enabled = self.config.amp if self.config.amp is not None else self.device.type == "cuda"
        if not enabled:
            return None
        if self.device.type == "cuda" and not torch.cuda.is_bf16_supported():
            return torch.float16
        return torch.bfloat16

    def _workers(self) -> int:
        if self.config.workers is not None:
            return max(0, self.config.workers)
        cpus = max(1, usable_cpus() // self.context.world)
        # On a GPU, decoding must keep up with it; on the CPU the model competes with the loaders for cores.
        return min(16, cpus) if self.device.type == "cuda" else min(4, max(1, cpus // 2))

    def _loader(self, samples: list[tuple[Path, int]], train: bool) -> tuple[EpochBatches, DataLoader]:
        config, ctx = self.config, self.context
        per_rank = max(1, config.batch // ctx.world)
        augment = build_augment(config.augment) if train else None
        relabel = self.synthetic_cracks if train else None
        dataset = PatchDataset(samples, config.image_size, augment, config.seed, relabel)
        batches = EpochBatches(
            len(dataset), per_rank, shuffle=train, seed=config.seed, rank=ctx.rank, world=ctx.world, even=train
        )
        workers = self._workers()
        loader = DataLoader(
            dataset,
            batch_sampler=batches,
            num_workers=workers,
            collate_fn=collate,
            pin_memory=self.device.type == "cuda",
            # Workers restart each epoch (cheap with fork): persistent ones took 5 s each to shut down here,
            # as in pytorch/pytorch#81794.
            prefetch_factor=4 if workers > 0 else None,
            generator=torch.Generator(),  # keeps the loader off the global RNG, which resume restores
        )
        return batches, loader

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _to_device(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        images = images.to(self.device, non_blocking=True)
        if self.device.type == "cuda":
            images = images.contiguous(memory_format=torch.channels_last)
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
            "workers": self._workers(),
            "steps_per_epoch": len(self.train_batches),
            "milestones": list(self.config.resolved_milestones()),
            "crackcli_version": __version__,
            "torch_version": str(torch.__version__),
        }

    def fit(self, on_epoch_end: Callable[[int], None] | None = None) -> TrainResult:
        """Run the remaining epochs; rank 0 writes the run folder.  ``on_epoch_end(epoch)`` runs after each save."""
        try:
            if self.context.is_main:
                if self.run_dir is None:
                    self.run_dir = unique_run_dir(Path(self.config.project), self.config.name)
                self._write_args()
            self.events.started(self.run_dir, self.summary())
            for epoch in range(self.start_epoch, self.config.epochs):
                row = self.train_epoch(epoch)
                report = self._validate()
                row.update(_report_columns(report))
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
                f"out of {self.device.type} memory at --batch {self.config.batch}, --image-size {self.config.image_size} "
                f"({self.config.backbone}); lower --batch (e.g. {max(2, self.config.batch // 2)}) or use a smaller backbone"
            ) from None
        finally:
            if self.context.is_main and self.run_dir is not None:
                self._write_figures()
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
        started = last = time.perf_counter()
        for step, batch in enumerate(self.train_loader):
            waited += time.perf_counter() - last
            self._warn_skipped(batch.failures)
            if len(batch.labels) < 2 and self.context.world == 1:
                last = time.perf_counter()
                continue  # batch norm cannot train on fewer than 2 images
            x, y = self._to_device(batch.images, batch.labels)
            progress = Progress(epoch * steps + step, config.epochs * steps, epoch, config.epochs)
            with self._autocast():
                features = self.trained(x, features_only=True)
            loss = self.loss_fn(features, y, self.model.classifier, progress)  # float32 inside, outside autocast
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            value = float(distributed.all_reduce_sum(loss.detach().clone(), self.context)) / self.context.world
            if not math.isfinite(value):
                raise TrainingStopped(
                    f"loss became {value} at epoch {epoch + 1}, step {step + 1}: training diverged and stopped; "
                    f"the last good checkpoint is kept in {self.run_dir} (epoch {len(self.history)}); "
                    "lower --lr, or try --no-amp"
                )
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if self.average is not None:
                self.average.update(self.model)
            loss_sum += value * len(y)
            images += len(y)
            self.events.step(value, len(y) * self.context.world)
            last = time.perf_counter()
        seconds = time.perf_counter() - started
        return {
            "epoch": epoch + 1,
            "lr": lr,
            "train_loss": loss_sum / max(images, 1),
            "images_per_s": images * self.context.world / max(seconds, 1e-9),
            "data_wait": waited / max(seconds, 1e-9),
            "seconds": seconds,
        }

    def _warn_skipped(self, failures: list[str]) -> None:
        """One line per image that failed to decode, the first time only (not again every epoch)."""
        for message in failures:
            if message not in self._skipped:
                self._skipped.add(message)
                self.events.warning(f"skipped: {message}")

    @property
    def released_model(self) -> torch.nn.Module:
        """The weights validated, saved as the checkpoint's model and exported: the average when --ema is on."""
        return self.average.model if self.average is not None else self.model

    @torch.no_grad()
    def _validate(self) -> dict[str, Any]:
        num_classes = len(self.classes)
        model = self.released_model
        # Every rank validates (and rank 0 saves) one model: rank 0's batch-norm statistics.
        distributed.broadcast_buffers(self.model, self.context)
        if model is not self.model:
            distributed.broadcast_buffers(model, self.context)
        model.eval()
        matrix = torch.zeros(num_classes * num_classes, dtype=torch.int64, device=self.device)
        for batch in self.val_loader:
            self._warn_skipped(batch.failures)
            if len(batch.labels) == 0:
                continue
            x, y = self._to_device(batch.images, batch.labels)
            with self._autocast():
                predictions = model(x).argmax(1)
            matrix += torch.bincount(y * num_classes + predictions, minlength=num_classes * num_classes)
        distributed.all_reduce_sum(matrix, self.context)
        return classification_report(matrix.view(num_classes, num_classes).cpu().numpy(), self.classes)

    def _training_state(self, epoch: int) -> dict[str, Any]:
        rng = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        best = dict(self.best)
        averaging = {}
        if self.average is not None:  # the checkpoint's model is the average; resuming needs the raw weights too
            averaging = {
                "trained_model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
                "ema": self.average.state_dict(),
            }
        return {
            **averaging,
            "epoch": epoch,
            "config": self.config.as_dict(),
            "loss": self.loss_fn.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "grad_scaler": self.scaler.state_dict(),
            "rng": rng,
            "history": self.history,
            "best": best,
            "summary": {**self.summary(), "epochs_done": epoch, "best_epoch": best["epoch"], "best_val_f1": best["f1"]},
        }

    def _save(self, epoch: int, improved: bool) -> None:
        last = self.run_dir / "last.pt"
        save_checkpoint(last, self.meta, self.released_model, **self._training_state(epoch))
        if improved:
            link_or_copy(last, self.run_dir / "best.pt")
        self._write_metrics()
        if self.history[-1]["seconds"] >= FIGURES_EVERY_EPOCH_FROM_S:
            self._write_figures()

    def _write_figures(self) -> None:
        """curves.png and confusion_matrix.png; a plotting failure must never cost the run."""
        if not self.history or self.best["report"] is None:
            return
        with contextlib.suppress(Exception):
            from crackcli.train.plots import plot_confusion, plot_curves

            plot_curves(self.history, self.run_dir / "curves.png")
            best_report = self.best["report"]
            plot_confusion(
                best_report["confusion_matrix"],
                self.classes,
                self.run_dir / "confusion_matrix.png",
                f"validation, epoch {self.best['epoch']} (macro F {best_report['f1']:.4f})",
            )

    def _restore(self, payload: dict[str, Any]) -> None:
        meta = ModelMeta.from_dict(payload["meta"])
        if meta.classes != self.classes:
            raise UsageError(
                f"the data's classes ({', '.join(self.classes)}) differ from the checkpoint's ({', '.join(meta.classes)})"
            )
        if self.average is not None:
            self.model.load_state_dict(payload["trained_model"])
            self.average.load_state_dict(payload["ema"], payload["model"])
        else:
            self.model.load_state_dict(payload["model"])
        self.loss_fn.load_state_dict(payload["loss"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scaler.load_state_dict(payload["grad_scaler"])
        torch.set_rng_state(payload["rng"]["torch"])
        if self.device.type == "cuda" and "cuda" in payload["rng"]:
            torch.cuda.set_rng_state(payload["rng"]["cuda"], self.device)
        self.start_epoch = int(payload["epoch"])
        self.history = list(payload["history"])
        self.best = dict(payload["best"])

    def _write_args(self) -> None:
        args = {"config": self.config.as_dict(), "summary": self.summary()}
        atomic_write_bytes(self.run_dir / "args.json", (json.dumps(args, indent=2) + "\n").encode())

    def _write_metrics(self) -> None:
        columns: list[str] = list(dict.fromkeys(key for row in self.history for key in row))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in self.history:
            writer.writerow({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in row.items()})
        atomic_write_bytes(self.run_dir / "metrics.csv", buffer.getvalue().encode())


def _report_columns(report: dict[str, Any]) -> dict[str, float]:
    columns = {f"val_{key}": float(report[key]) for key in ("accuracy", "precision", "recall", "f1")}
    for name, figures in report["per_class"].items():
        for key in ("precision", "recall", "f1"):
            columns[f"val_{key}_{name}"] = float(figures[key])
    return columns


def parse_milestones(text: str | None) -> tuple[int, ...] | None:
    """``65,95,125`` -> (65, 95, 125); empty text for a constant learning rate."""
    if text is None:
        return None
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise UsageError(
            f"--milestones takes epoch numbers separated by commas, e.g. 65,95,125; got '{text}'"
        ) from None
