"""`crack prepare` and `crack synth`: making patch datasets from photos."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from crackcli.cli.console import EXIT_FAILED_INPUTS, ProgressView, err, finish_by_rerunning, print_error


def prepare(
    sources: Annotated[list[str], typer.Argument(help="Photos, folders (searched recursively) or globs.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder for patches and manifest.csv.")],
    size: Annotated[int, typer.Option(help="Patch size in pixels.")] = 224,
    stride: Annotated[int | None, typer.Option(help="Step between patches (default: --size, no overlap).")] = None,
    edge: Annotated[
        str, typer.Option(help="Border rule: shift (last patch moved inside), pad (reflect) or drop.")
    ] = "shift",
    labels: Annotated[str, typer.Option(help="folder (parent folder name), mask (--masks) or none.")] = "folder",
    masks: Annotated[Path | None, typer.Option(help="Folder of crack masks named like the photos.")] = None,
    class_mask: Annotated[
        list[str] | None,
        typer.Option(
            help="CLASS=FOLDER: masks of a class to tell from cracks, e.g. scratch=masks/scratches (repeatable)."
        ),
    ] = None,
    crack_min: Annotated[
        float, typer.Option(help="Mask-pixel fraction from which a patch takes the mask's class (crack, --class-mask).")
    ] = 0.005,
    split: Annotated[str | None, typer.Option(help="train:val[:test] ratios per photo, e.g. 3:1:1.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the split.")] = 0,
    image_format: Annotated[str, typer.Option("--format", help="png or jpg.")] = "png",
    quality: Annotated[int, typer.Option(help="JPEG quality with --format jpg.")] = 95,
    workers: Annotated[int, typer.Option(help="Threads for decoding and writing (default: usable CPUs).")] = 0,
    max_pixels: Annotated[int, typer.Option(help="Refuse photos above this many pixels (bomb guard).")] = 300_000_000,
    overwrite: Annotated[bool, typer.Option(help="Rewrite patches that already exist.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary table.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object on stdout.")] = False,
) -> None:
    """Cut photos into square patches, label them by folder or mask, and split them by photo."""
    from rich.table import Table

    from crackcli.data.prepare import PrepareOptions, Preparer, parse_class_mask, parse_split

    options = PrepareOptions(
        out=out,
        size=size,
        stride=stride,
        edge=edge,
        labels=labels,
        masks=masks,
        class_masks=tuple(parse_class_mask(text) for text in class_mask or ()),
        crack_min=crack_min,
        split=parse_split(split) if split else None,
        seed=seed,
        image_format=image_format,
        quality=quality,
        workers=workers,
        overwrite=overwrite,
        max_pixels=max_pixels,
    )
    hint = f"the patches written so far are whole and kept in {out}; run the same command again to finish"
    with finish_by_rerunning(hint), ProgressView("prepare", quiet or as_json) as view:
        preparer = Preparer(options, view)
        summary = preparer.execute(*preparer.plan(sources))
    for _, message in summary.failures:
        print_error(message)
    result = summary.as_dict()
    if as_json:
        print(json.dumps(result))
    elif not quiet:
        table = Table(title=f"{result['photos']} photos → {result['patches']} patches in {out}")
        for column in ("split", "label", "patches"):
            table.add_column(column)
        for split_name, per_label in result["per_split"].items():
            for label, count in per_label.items():
                table.add_row(split_name, label, str(count))
        err.print(table)
        err.print(
            f"written {result['written']}, already there {result['skipped_existing']}, "
            f"ambiguous (skipped) {result['skipped_ambiguous']}, failed inputs {len(summary.failures)}"
        )
    if summary.failures:
        raise typer.Exit(EXIT_FAILED_INPUTS)


def synth(
    out: Annotated[Path, typer.Argument(help="Folder for images/, masks/ (cracks) and scratches/.")],
    count: Annotated[int, typer.Option(help="Number of photos.")] = 4,
    width: Annotated[int, typer.Option(help="Photo width in pixels.")] = 1600,
    height: Annotated[int, typer.Option(help="Photo height in pixels.")] = 1200,
    seed: Annotated[int, typer.Option(help="Seed of the first photo; photo i uses seed + i.")] = 0,
    image_format: Annotated[str, typer.Option("--format", help="jpg or png.")] = "jpg",
    quality: Annotated[int, typer.Option(help="JPEG quality.")] = 90,
    overwrite: Annotated[bool, typer.Option(help="Replace photos that already exist.")] = False,
) -> None:
    """Write synthetic concrete photos with crack and scratch masks (for tests, demos, studies)."""
    from crackcli.data.synth import write_synthetic_set

    written = write_synthetic_set(out, count, width, height, seed, image_format, quality, overwrite)
    print(f"wrote {len(written)} photos to {out / 'images'} with masks in {out / 'masks'}", file=sys.stderr)
