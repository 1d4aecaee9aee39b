"""The `crack` command line: parses options, calls the core, renders results, sets exit codes.

Exit codes: 0 done; 1 some inputs failed (the others were processed); 2 usage error.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Optional

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


def fail(message: str, code: int = EXIT_FAILED_INPUTS) -> typer.Exit:
    """Print one plain error line on stderr and return the exit to raise."""
    print(f"crack: error: {message}", file=sys.stderr)
    return typer.Exit(code)


def main() -> None:
    """Entry point: user-caused errors end as one line on stderr, never a traceback."""
    try:
        app()
    except UsageError as exc:
        raise SystemExit(fail(str(exc), EXIT_USAGE).exit_code) from None
    except CrackError as exc:
        raise SystemExit(fail(str(exc)).exit_code) from None
    except KeyboardInterrupt:
        print("crack: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
