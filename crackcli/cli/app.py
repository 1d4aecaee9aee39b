"""The Typer app: the root options and every command, registered here in help order."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from crackcli import __version__
from crackcli.cli import data, deploy, info, reports, training
from crackcli.cli.console import interrupted_status, user_errors
from crackcli.io.interrupts import terminate_like_ctrl_c

app = typer.Typer(
    name="crack",
    help="Crack inspection toolkit: cut photos into patches, train, evaluate, export and scan.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version_callback(value: bool) -> None:
    if value:
        print(f"crack {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version and exit."),
    ] = None,
) -> None:
    """Crack inspection toolkit for concrete photos."""


COMMANDS = (
    ("info", info.info),
    ("prepare", data.prepare),
    ("synth", data.synth),
    ("train", training.train),
    ("eval", training.evaluate),
    ("export", deploy.export),
    ("scan", deploy.scan),
    ("report", reports.report),
)
for name, command in COMMANDS:
    app.command(name=name)(user_errors(command))


def main() -> None:
    """Entry point of the `crack` script and `python -m crackcli`."""
    terminate_like_ctrl_c()
    try:
        app()
    except KeyboardInterrupt as exc:
        print("crack: interrupted", file=sys.stderr)
        raise SystemExit(interrupted_status(exc)) from None
