"""The `crack` command line: parses options, calls the core, renders results, sets exit codes.

Exit codes: 0 done; 1 some inputs failed (the others were processed); 2 usage error.
"""

from __future__ import annotations

import functools
import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Callable, Iterator, Optional

import typer
from rich.console import Console
from rich.table import Table

from crackcli import __version__
from crackcli.errors import CrackError, UsageError

EXIT_OK = 0
EXIT_FAILED_INPUTS = 1
EXIT_USAGE = 2

app = typer.Typer(
    name="crack",
    help="Crack inspection toolkit: cut photos into patches, train, evaluate, export and scan.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)
out = Console()


def user_errors(command: Callable) -> Callable:
    """Errors a user can cause end as one line on stderr with exit 2 (usage) or 1, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except UsageError as exc:
            raise fail(str(exc), EXIT_USAGE) from None
        except CrackError as exc:
            raise fail(str(exc)) from None

    return wrapper


def _version_callback(value: bool) -> None:
    if value:
        print(f"crack {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        Optional[bool],
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version and exit."),
    ] = None,
) -> None:
    """Crack inspection toolkit for concrete photos."""


@app.command()
@user_errors
def info(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")] = False,
) -> None:
    """Show package versions, torch devices, ONNX Runtime providers and CPU threads."""
    from crackcli.envinfo import environment_report

    report = environment_report()
    if as_json:
        print(json.dumps(report))
        return
    table = Table(title=f"crack {__version__}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    for name, version in report["versions"].items():
        table.add_row(name, version)
    table.add_row("platform", str(report["platform"]))
    table.add_row("torch devices", ", ".join(report["torch_devices"]))
    table.add_row("onnxruntime providers (built in)", ", ".join(report["onnxruntime_providers"]))
    cpu = report["cpu"]
    table.add_row("cpu threads", f"{cpu['usable_cpus']} usable of {cpu['logical_cpus']}, torch uses {cpu['torch_threads']}")
    out.print(table)


@contextmanager
def progress_bar(total: int, description: str, quiet: bool) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on an interactive stderr; silent in pipes and with --quiet."""
    if quiet or not err.is_terminal:
        yield lambda advance: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda advance: bar.advance(task, advance)


def print_error(message: str) -> None:
    print(f"crack: error: {message}", file=sys.stderr)


def report_failures(failures: list[tuple[str, str]]) -> None:
    for _, message in failures:
        print_error(message)


@app.command()
@user_errors
def prepare(
    sources: Annotated[list[str], typer.Argument(help="Photos, folders (searched recursively) or globs.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder for patches and manifest.csv.")],
    size: Annotated[int, typer.Option(help="Patch size in pixels.")] = 224,
    stride: Annotated[Optional[int], typer.Option(help="Step between patches [default: --size, no overlap].")] = None,
    edge: Annotated[str, typer.Option(help="Border rule: shift (last patch moved inside), pad (reflect) or drop.")] = "shift",
    labels: Annotated[str, typer.Option(help="folder (parent folder name), mask (--masks) or none.")] = "folder",
    masks: Annotated[Optional[Path], typer.Option(help="Folder of crack masks named like the photos.")] = None,
    crack_min: Annotated[float, typer.Option(help="Crack-pixel fraction from which a patch is 'crack'.")] = 0.005,
    split: Annotated[Optional[str], typer.Option(help="train:val[:test] ratios per photo, e.g. 3:1:1.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the split.")] = 0,
    image_format: Annotated[str, typer.Option("--format", help="png or jpg.")] = "png",
    quality: Annotated[int, typer.Option(help="JPEG quality with --format jpg.")] = 95,
    workers: Annotated[int, typer.Option(help="Threads for decoding and writing [default: usable CPUs].")] = 0,
    max_pixels: Annotated[int, typer.Option(help="Refuse photos above this many pixels (bomb guard).")] = 300_000_000,
    overwrite: Annotated[bool, typer.Option(help="Rewrite patches that already exist.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary table.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object on stdout.")] = False,
) -> None:
    """Cut photos into square patches, label them by folder or mask, and split them by photo."""
    from crackcli.prepare import Preparer, PrepareOptions, parse_split

    options = PrepareOptions(
        out=out, size=size, stride=stride, edge=edge, labels=labels, masks=masks, crack_min=crack_min,
        split=parse_split(split) if split else None, seed=seed, image_format=image_format, quality=quality,
        workers=workers, overwrite=overwrite, max_pixels=max_pixels,
    )
    preparer = Preparer(options)
    photos, planned = preparer.plan(sources)
    with progress_bar(len(photos), "prepare", quiet or as_json) as advance:
        preparer.progress = advance
        summary = preparer.execute(photos, planned)
    report_failures(summary.failures)
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


@app.command()
@user_errors
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
    from crackcli.synth import write_synthetic_set

    if image_format not in ("jpg", "png") or count < 1 or width < 16 or height < 16:
        raise UsageError("synth needs --format jpg|png, --count ≥ 1 and a size of at least 16×16")
    written = write_synthetic_set(out, count, width, height, seed, f".{image_format}", quality, overwrite)
    print(f"wrote {len(written)} photos to {out / 'images'} with masks in {out / 'masks'}", file=sys.stderr)


def fail(message: str, code: int = EXIT_FAILED_INPUTS) -> typer.Exit:
    """Print one plain error line on stderr and return the exit to raise."""
    print_error(message)
    return typer.Exit(code)


def main() -> None:
    """Entry point of the `crack` script and `python -m crackcli`."""
    try:
        app()
    except KeyboardInterrupt:
        print("crack: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
