"""`crack train` and `crack eval`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from crackcli.cli.console import EXIT_FAILED_INPUTS, ProgressView, err, finish_by_rerunning, out, print_error
from crackcli.errors import UsageError


def train(
    data: Annotated[
        Path | None,
        typer.Argument(help="Output of crack prepare --split (train/, val/), or a folder of class folders."),
    ] = None,
    backbone: Annotated[
        str,
        typer.Option(
            help="resnet18/34/50/101, vgg16, vgg16_bn, mobilenet_v2, shufflenet_v2_x0_5/x1_0, "
            "mobilenet_v3_small/large, efficientnet_b0."
        ),
    ] = "resnet50",
    weights: Annotated[str, typer.Option(help="Start from: none, imagenet (download) or a .pt file.")] = "imagenet",
    loss: Annotated[
        str, typer.Option(help="igmsda (the paper), isda, gm (explicit sampling), ce or focal.")
    ] = "igmsda",
    alpha0: Annotated[float, typer.Option(help="IGMSDA/GM: final α₀ of α = (t/T)·α₀ + 1.")] = 2.5,
    lambda0: Annotated[float, typer.Option(help="Augmentation strength λ₀ of λ = (epoch/epochs)·λ₀.")] = 0.5,
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 150,
    batch: Annotated[int, typer.Option(help="Batch size over all processes.")] = 64,
    lr: Annotated[float, typer.Option(help="Initial learning rate (SGD, momentum 0.9).")] = 0.01,
    milestones: Annotated[
        str | None,
        typer.Option(help="Epochs where lr ÷ 10, e.g. 65,95,125 (default: the paper's, scaled to --epochs)."),
    ] = None,
    weight_decay: Annotated[float, typer.Option(help="SGD weight decay.")] = 1e-4,
    image_size: Annotated[int, typer.Option(help="Input size; patches are resized to it.")] = 224,
    min_filter: Annotated[
        int | None,
        typer.Option(
            help="Side in photo pixels of a grey-level minimum filter run before patches shrink to the input "
            "size, so cracks thinner than the shrink stay dark; scans and evaluations apply it too (the "
            "default model: 3; 1: none; default: that of the --weights checkpoint, else 1).",
        ),
    ] = None,
    augment: Annotated[
        str, typer.Option(help="paper (horizontal flip), field (flips, rotation, zoom, light, blur, noise) or none.")
    ] = "paper",
    synthetic_cracks: Annotated[
        float,
        typer.Option(
            help="Share of no_crack training patches given a painted hairline crack and trained as crack "
            "(0-1; the default model used 0.15)."
        ),
    ] = 0.0,
    synthetic_stains: Annotated[
        float,
        typer.Option(
            help="Share of no_crack training patches given dark blots (pits, stains) that stay no_crack, so "
            "painted hairlines teach shape, not darkness (the default model used 0.15)."
        ),
    ] = 0.0,
    synthetic_confusers: Annotated[
        float,
        typer.Option(
            help="Share of no_crack training patches given a painted look-alike that stays no_crack: a formwork "
            "or planking joint, road marking, brick or tile grid, shadow edge, tyre mark, brushed streaks or stain."
        ),
    ] = 0.0,
    synthetic_surfaces: Annotated[
        float,
        typer.Option(
            help="Share of no_crack training patches replaced by procedural asphalt, half of them with a painted "
            "road crack (trained as crack), so a concrete data set also teaches pavement."
        ),
    ] = 0.0,
    finer_clean: Annotated[
        float,
        typer.Option(
            help="Share of no_crack training patches read at twice the resolution (a random crop of half the "
            "side), so the model also learns clean surfaces at the scale of windows half the size."
        ),
    ] = 0.0,
    ema: Annotated[
        float,
        typer.Option(
            help="Validate, save and export a moving average of the weights with this decay per step "
            "(e.g. 0.998; 0: off)."
        ),
    ] = 0.0,
    val_fraction: Annotated[float, typer.Option(help="Share held out (by photo) when DATA has no val/ folder.")] = 0.2,
    limit_per_class: Annotated[
        int | None, typer.Option(help="Use at most N training images per class (small-data studies).")
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
    amp: Annotated[
        bool | None,
        typer.Option("--amp/--no-amp", help="Mixed precision (bf16 where supported) (default: on for CUDA)."),
    ] = None,
    sync_bn: Annotated[
        bool,
        typer.Option("--sync-bn/--no-sync-bn", help="With several GPUs, batch norm over the global batch."),
    ] = True,
    workers: Annotated[int | None, typer.Option(help="Image decoding processes (default: by device and CPUs).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of initialisation, order, augmentation and held-out split.")] = 0,
    crack_class: Annotated[str | None, typer.Option(help="The class scans report as crack (default: 'crack').")] = None,
    project: Annotated[Path, typer.Option(help="Folder of runs.")] = Path("runs/train"),
    name: Annotated[str, typer.Option(help="Run name; a taken name gets a number appended.")] = "exp",
    resume: Annotated[
        Path | None, typer.Option(help="Continue a run from its last.pt, with its saved options.")
    ] = None,
    strict: Annotated[bool, typer.Option(help="Stop on unreadable images instead of skipping them.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors and the final line.")] = False,
) -> None:
    """Train a crack classifier on labelled patches with IGMSDA (the paper's recipe by default)."""
    from crackcli.cli.train_view import ConsoleEvents, QuietEvents
    from crackcli.train.config import TrainConfig, parse_milestones
    from crackcli.train.trainer import Trainer

    events = QuietEvents() if quiet else ConsoleEvents(live=True)
    if resume is not None:
        if data is not None:
            print_error(
                f"note: --resume continues with the options saved in {resume}; DATA and other options are ignored"
            )
        trainer = Trainer.resume(resume, events)
    else:
        if data is None:
            raise UsageError("missing DATA: pass a folder of class folders (or --resume runs/train/NAME/last.pt)")
        config = TrainConfig(
            data=str(data),
            backbone=backbone,
            weights=weights,
            loss=loss,
            alpha0=alpha0,
            lambda0=lambda0,
            epochs=epochs,
            batch=batch,
            lr=lr,
            weight_decay=weight_decay,
            milestones=parse_milestones(milestones),
            image_size=image_size,
            min_filter_px=min_filter,
            augment=augment,
            synthetic_cracks=synthetic_cracks,
            synthetic_stains=synthetic_stains,
            synthetic_confusers=synthetic_confusers,
            synthetic_surfaces=synthetic_surfaces,
            finer_clean=finer_clean,
            ema=ema,
            val_fraction=val_fraction,
            limit_per_class=limit_per_class,
            device=device,
            amp=amp,
            sync_bn=sync_bn,
            workers=workers,
            seed=seed,
            strict=strict,
            crack_class=crack_class,
            project=str(project),
            name=name,
        )
        trainer = Trainer(config, events)
    try:
        result = trainer.fit()
    except KeyboardInterrupt:
        if trainer.run_dir is None or not trainer.context.is_main:
            raise
        with finish_by_rerunning(f"continue with: crack train --resume {trainer.run_dir / 'last.pt'}"):
            raise
    if result.run_dir is not None:  # rank 0 alone writes, and speaks
        err.print(
            f"best val macro F {result.best_f1:.4f} at epoch {result.best_epoch}: {result.run_dir / 'best.pt'}",
            highlight=False,
        )


def evaluate(
    model: Annotated[Path, typer.Argument(help="A .pt checkpoint from crack train or a .onnx file from crack export.")],
    data: Annotated[Path, typer.Argument(help="A folder of class folders named like the model's classes.")],
    threshold: Annotated[
        float | None,
        typer.Option(
            help="Call an image the crack class when its crack probability reaches this "
            "(default: the most probable class)."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write figures, misclassified.csv, eval.json and an index.html page here."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace the files of an --out folder that holds some.")
    ] = False,
    batch: Annotated[int, typer.Option(help="Images per inference batch.")] = 64,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
    workers: Annotated[int | None, typer.Option(help="Image decoding processes (default: up to 4).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Accuracy, precision, recall and F-score (per class and macro), AP and AUROC of the crack class, and
    the misclassified images, of a model on a labelled folder."""
    from crackcli.model.predictors import load_predictor
    from crackcli.train.eval_outputs import check_out_folder, crack_curves, eval_report, write_eval_folder
    from crackcli.train.evaluate import evaluate_folder, index_eval_folder

    if out is not None:
        check_out_folder(out, force)
    predictor = load_predictor(model, device)
    folder = index_eval_folder(data, predictor.meta.classes)
    with ProgressView("eval", quiet or as_json) as view:
        result = evaluate_folder(predictor, folder, batch, workers, view, threshold)
    for message in result.unreadable:
        print_error(f"skipped: {message}")
    curves = crack_curves(result)
    report = eval_report(result, curves, predictor, model, data)
    written = write_eval_folder(out, report, curves) if out is not None else []
    if as_json:
        print(json.dumps(report))
    else:
        _print_report(report, predictor.describe())
        if written:
            err.print(f"figures and the misclassified images: {written[-1]}", highlight=False, soft_wrap=True)
    if result.unreadable:
        raise typer.Exit(EXIT_FAILED_INPUTS)


def _print_report(report: dict[str, Any], model: str) -> None:
    from rich.table import Table

    table = Table(title=model)
    for column in ("class", "precision", "recall", "F1", "support"):
        table.add_column(column, justify="right" if column != "class" else "left")
    for name, figures in report["per_class"].items():
        table.add_row(name, *(f"{figures[k]:.4f}" for k in ("precision", "recall", "f1")), str(figures["support"]))
    total = sum(f["support"] for f in report["per_class"].values())
    table.add_row("macro", *(f"{report[k]:.4f}" for k in ("precision", "recall", "f1")), str(total), style="bold")
    out.print(table)
    out.print(f"accuracy {report['accuracy']:.4f}", highlight=False)
    ranking = report["ranking"]
    if ranking and ranking["ap"] is not None:
        out.print(f"{report['crack_class']}: AP {ranking['ap']:.4f}, AUROC {ranking['auroc']:.4f}", highlight=False)
    out.print(f"misclassified {len(report['misclassified'])}", highlight=False)
    matrix = Table(title="confusion matrix (rows: true, columns: predicted)")
    matrix.add_column("")
    for name in report["classes"]:
        matrix.add_column(name, justify="right")
    for name, row in zip(report["classes"], report["confusion_matrix"]):
        matrix.add_row(name, *(str(v) for v in row))
    out.print(matrix)
