"""The Typer app and what every command shares: consoles, error handling, progress bars, exit codes.

Exit codes: 0 done; 1 some inputs failed (the others were processed); 2 usage error; 130 interrupted.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console

from crackcli import __version__
from crackcli.errors import CrackError, UsageError

EXIT_OK = 0
EXIT_FAILED_INPUTS = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # the shell's code for a job stopped by Ctrl-C (128 + SIGINT)

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
        except KeyboardInterrupt:
            print("crack: interrupted", file=sys.stderr)
            raise typer.Exit(EXIT_INTERRUPTED) from None

    return wrapper


@contextmanager
def finish_by_rerunning(hint: str) -> Iterator[None]:
    """Ctrl-C inside the block ends the command with one line saying how to finish the job (exit 130)."""
    try:
        yield
    except KeyboardInterrupt:
        print(f"crack: interrupted; {hint}", file=sys.stderr)
        raise typer.Exit(EXIT_INTERRUPTED) from None


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


def fail(message: str, code: int = EXIT_FAILED_INPUTS) -> typer.Exit:
    """Print one plain error line on stderr and return the exit to raise."""
    print_error(message)
    return typer.Exit(code)
