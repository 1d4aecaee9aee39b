"""`crack export` and `crack scan`: models for the field and crack heatmaps over whole photos.

Exit codes of `crack scan`: 0 every input scanned; 1 some inputs failed (the rest were scanned and
reported); 2 usage error; 3 with --fail-on-crack, a crack was found and nothing failed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from crackcli.cli.console import (
    EXIT_FAILED_INPUTS,
    ProgressView,
    err,
    finish_by_rerunning,
    print_error,
    print_warning,
)
from crackcli.errors import UsageError
from crackcli.scan.events import ScanEvents

EXIT_CRACK_FOUND = 3


def export(
    checkpoint: Annotated[
        Path, typer.Argument(help="A .pt checkpoint from crack train (e.g. runs/train/exp/best.pt).")
    ],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="The .onnx file (default: beside the checkpoint, same name).")
    ] = None,
    fp16: Annotated[bool, typer.Option("--fp16", help="Half-precision weights and activations (for GPUs).")] = False,
    int8: Annotated[
        bool, typer.Option("--int8", help="Static int8 quantisation calibrated on --calibrate (for CPUs).")
    ] = False,
    calibrate: Annotated[
        Path | None, typer.Option(help="Labelled patches (class folders): int8 ranges and the accuracy check.")
    ] = None,
    opset: Annotated[int, typer.Option(help="ONNX opset.")] = 17,
    scan_mode: Annotated[
        str,
        typer.Option(
            help="What crack scan --mode auto uses with this file: patch, or dense once you measured that it "
            "agrees (benchmarks/scan_eval.py)."
        ),
    ] = "patch",
    temperature: Annotated[
        float | None,
        typer.Option(
            help="Divide the logits by this instead of the temperature crack train fitted on its validation "
            "data (1: the network's own scores), e.g. for photos unlike that data."
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output file.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the export report as one JSON object.")] = False,
) -> None:
    """Write a checkpoint as one ONNX file with its metadata, checked against PyTorch with ONNX Runtime."""
    from crackcli.model.export import ExportOptions, export_checkpoint

    if fp16 and int8:
        raise UsageError("choose one of --fp16 and --int8")
    precision = "fp16" if fp16 else "int8" if int8 else "fp32"
    target = out or checkpoint.with_suffix(".onnx" if precision == "fp32" else f".{precision}.onnx")
    options = ExportOptions(precision, opset, calibrate, force, scan_mode, temperature)
    report = export_checkpoint(checkpoint, target, options)
    if as_json:
        print(json.dumps({**report.__dict__, "path": str(report.path)}))
        return
    lines = [
        f"wrote {report.path} ({report.size_bytes / 1e6:.1f} MB, {report.precision}, "
        f"dense output: {'yes' if report.dense else 'no'})"
    ]
    if report.max_prob_delta is not None:
        lines.append(f"parity with PyTorch on {report.check_images} patches: max |Δprob| {report.max_prob_delta:.2e}")
        lines.append(
            f"CPU: {report.latency_ms:.1f} ms for one patch, {report.patches_per_s:.0f} patches/s in batches of 32"
        )
    for name, figures in report.accuracy.items():
        lines.append(f"on {calibrate}: {name} accuracy {figures['accuracy']:.4f}, macro F {figures['f1']:.4f}")
    lines += [f"note: {note}" for note in report.notes]
    for line in lines:
        err.print(line, highlight=False, soft_wrap=True)


def scan(
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="Photos, folders, globs, or - to read paths from stdin (one per line; with --null, NUL-ended)."
        ),
    ],
    model: Annotated[
        Path | None,
        typer.Option("--model", "-m", help="A .onnx or .pt model (default: $CRACK_MODEL, else the shipped model)."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output folder (default: a new runs/scan/expN).")
    ] = None,
    stride: Annotated[int | None, typer.Option(help="Step between windows in pixels (default: half a window).")] = None,
    patch: Annotated[int | None, typer.Option(help="Window side in photo pixels (default: the model's, 224).")] = None,
    threshold: Annotated[float, typer.Option(help="Crack probability from which a window counts as crack.")] = 0.5,
    mode: Annotated[
        str,
        typer.Option(
            help="auto (the mode the model file records; patch for the default model), patch (classify every "
            "window) or dense (one trunk pass per photo)."
        ),
    ] = "auto",
    batch: Annotated[int, typer.Option(help="Windows per inference call in patch mode.")] = 64,
    line_check: Annotated[
        bool,
        typer.Option(
            "--line-check/--no-line-check",
            help="Classify crack windows again with the long straight lines (joints, paint edges) of the photo "
            "around them taken out; --no-line-check where cracks run straight or along joints.",
        ),
    ] = True,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    workers: Annotated[
        int | None,
        typer.Option(help="Photos decoded, shrunk and written at once (default: 1 on the CPU, by cores on a GPU)."),
    ] = None,
    overlay: Annotated[bool, typer.Option("--overlay/--no-overlay", help="Write an overlay picture per photo.")] = True,
    overlay_size: Annotated[
        int, typer.Option(help="Longer side of overlays in pixels; 0 keeps the photo's size.")
    ] = 2048,
    crack_class: Annotated[str | None, typer.Option(help="The class reported as crack (default: the model's).")] = None,
    shard: Annotated[
        str | None, typer.Option(help="I/N: scan only the I-th of N interleaved shares of the inputs (I from 0).")
    ] = None,
    fail_on_crack: Annotated[
        bool, typer.Option("--fail-on-crack", help="Exit 3 when a crack is found (and nothing failed).")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Redo photos whose report is already in --out.")] = False,
    max_pixels: Annotated[int, typer.Option(help="Refuse photos above this many pixels (bomb guard).")] = 300_000_000,
    trace: Annotated[
        bool,
        typer.Option(
            "--trace",
            help="In crack windows, trace the crack pixels (NAME_cracks.png), centre lines, lengths and widths.",
        ),
    ] = False,
    tracer: Annotated[
        str | None,
        typer.Option(
            help="With --trace: learned (the shipped tracer network, the default), classical (a filter), "
            "or a tracer .onnx file."
        ),
    ] = None,
    mm_per_px: Annotated[
        float | None, typer.Option(help="With --trace: millimetres per photo pixel, for measurements in mm.")
    ] = None,
    scale_line: Annotated[
        str | None,
        typer.Option(help="With --trace: X1,Y1,X2,Y2,MM: two photo points (pixels) MM millimetres apart."),
    ] = None,
    width_classes: Annotated[
        str, typer.Option(help="With --trace and a scale: width class boundaries in mm.")
    ] = "0.1,0.3,1",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print each photo's report as one JSON line on stdout.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors on stderr.")] = False,
    null: Annotated[
        bool,
        typer.Option("--null", "-0", help="Paths on stdin (-) end with NUL bytes, as find -print0 writes them."),
    ] = False,
) -> None:
    """Find cracks in photos: per-window crack probabilities, a heatmap overlay and a JSON report per photo.

    Exit status: 0 all inputs scanned, 1 some failed (the others are still scanned), 2 usage error,
    3 with --fail-on-crack when a crack was found and nothing failed, 130 interrupted (re-run with the same --out
    to scan the rest).
    """
    from crackcli.io.inputs import parse_shard, read_null_separated, read_path_list
    from crackcli.measure.measurements import parse_widths, photo_scale
    from crackcli.scan.api import ScanOptions, plan_scan

    if null and "-" not in inputs:
        raise UsageError(
            "`null` reads paths from stdin: pass - as the input, e.g. find DIR -print0 | crack scan - --null"
        )
    piped = (read_null_separated(sys.stdin.buffer) if null else read_path_list(sys.stdin)) if "-" in inputs else []
    sources = [line for item in inputs for line in (piped if item == "-" else [item])]
    if not sources:
        raise UsageError("no inputs: pass photos, folders or globs, or - with paths on stdin")
    options = ScanOptions(
        model=model,
        device=device,
        out=out,
        patch=patch,
        stride=stride,
        threshold=threshold,
        mode=mode,
        batch=batch,
        line_check=line_check,
        workers=workers,
        overlay=overlay,
        overlay_max_side=overlay_size,
        crack_class=crack_class,
        shard=parse_shard(shard) if shard else (0, 1),
        force=force,
        max_pixels=max_pixels,
        trace=trace,
        tracer=tracer,
        mm_per_px=photo_scale(mm_per_px, scale_line),
        width_classes_mm=parse_widths(width_classes),
    )
    planned = plan_scan(sources, options)
    fallback = planned.predictor.fallback
    if fallback and device == "cuda":
        print_warning(f"--device cuda, but running on the CPU: {fallback}")
    elif fallback:
        print_error(f"note: a GPU is present but the model runs on the CPU: {fallback}")
    settings = planned.job.settings
    if not quiet:
        err.print(
            f"scanning {len(planned.photos)} photo{'s' if len(planned.photos) != 1 else ''} with "
            f"{planned.predictor.describe()}, {planned.job.mode} mode, "
            f"{settings.patch} px windows every {settings.stride} px → {planned.out}",
            highlight=False,
            soft_wrap=True,
        )
    hint = f"the photos scanned so far are kept in {planned.out}; run again with --out {planned.out} to scan the rest"
    with finish_by_rerunning(hint), ScanView(quiet, as_json) as view:
        result = planned.run(view)
    if not quiet:
        kept = f", {result.kept} kept from an earlier run (--force redoes them)" if result.kept else ""
        err.print(
            f"{result.scanned} scanned{kept}, {result.failed} failed, "
            f"{result.with_cracks} with cracks; summary: {planned.out / options.summary_name}",
            highlight=False,
            soft_wrap=True,
        )
    if result.failed:
        raise typer.Exit(EXIT_FAILED_INPUTS)
    if fail_on_crack and result.with_cracks:
        raise typer.Exit(EXIT_CRACK_FOUND)


class ScanView(ProgressView, ScanEvents):
    """Each photo's report as a JSON line on stdout (``as_json``) or a summary line on stderr; failures as
    errors (and, with ``as_json``, as ``{"image", "error"}`` lines)."""

    def __init__(self, quiet: bool, as_json: bool) -> None:
        super().__init__("scan", quiet or as_json)
        self.quiet = quiet
        self.as_json = as_json

    def photo_scanned(self, report: dict[str, Any]) -> None:
        if self.as_json:
            print(json.dumps(report), flush=True)
        elif not self.quiet:
            s = report["summary"]
            err.print(
                f"{report['image']}: {s['crack_windows']}/{s['windows']} crack windows, "
                f"max {s['max_crack_prob']:.2f}, {len(s['regions'])} regions",
                highlight=False,
                soft_wrap=True,
            )

    def photo_failed(self, image: str, message: str) -> None:
        print_error(message)
        if self.as_json:  # a pipeline reading stdout sees every input, not only those that worked
            print(json.dumps({"image": image, "error": message}), flush=True)
