"""What every command shares: the consoles, one-line errors, exit codes, Ctrl-C, and progress shown from
job events.

Exit codes: 0 done; 1 some inputs failed (the others were processed); 2 usage error; 130 interrupted.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import typer
from rich.console import Console

from crackcli.cli.flags import as_flags
from crackcli.errors import CrackError, UsageError
from crackcli.io.interrupts import Terminated
from crackcli.io.progress import JobEvents

EXIT_OK = 0
EXIT_FAILED_INPUTS = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # the shell's code for a job stopped by Ctrl-C (128 + SIGINT)
EXIT_TERMINATED = 143  # and for one stopped by SIGTERM (128 + 15)

err = Console(stderr=True)
out = Console()

Command = TypeVar("Command", bound=Callable[..., Any])
View = TypeVar("View", bound="ProgressView")


def print_error(message: str) -> None:
    """One line on stderr; settings the message names are shown as their flags."""
    print(f"crack: error: {as_flags(message)}", file=sys.stderr)


def print_warning(message: str) -> None:
    """One line on stderr for something the user should know that does not stop the job."""
    print(f"crack: warning: {as_flags(message)}", file=sys.stderr)


def fail(message: str, code: int = EXIT_FAILED_INPUTS) -> typer.Exit:
    """Print one plain error line on stderr and return the exit to raise."""
    print_error(message)
    return typer.Exit(code)


def user_errors(command: Command) -> Command:
    """Errors a user can cause end as one line on stderr with exit 2 (usage) or 1, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except UsageError as exc:
            raise fail(str(exc), EXIT_USAGE) from None
        except CrackError as exc:
            raise fail(str(exc)) from None
        except KeyboardInterrupt as exc:
            print("crack: interrupted", file=sys.stderr)
            raise typer.Exit(interrupted_status(exc)) from None

    return wrapper  # type: ignore[return-value]


@contextmanager
def finish_by_rerunning(hint: str) -> Iterator[None]:
    """Ctrl-C inside the block ends the command with one line saying how to finish the job (exit 130)."""
    try:
        yield
    except KeyboardInterrupt as exc:
        print(f"crack: interrupted; {hint}", file=sys.stderr)
        raise typer.Exit(interrupted_status(exc)) from None


def interrupted_status(exc: KeyboardInterrupt) -> int:
    """The exit status of a job stopped by Ctrl-C (130) or by SIGTERM (143), as a shell reports them."""
    return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED


class ProgressView(JobEvents):
    """Job events as a rich progress bar on an interactive stderr; no bar in pipes or when ``quiet``.

    Use it as a context manager: the bar is drawn from ``started`` and removed when the block ends.
    """

    def __init__(self, description: str, quiet: bool) -> None:
        self.description = description
        self.live = not quiet and err.is_terminal
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self: View) -> View:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def started(self, total: int) -> None:
        if not self.live:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err
        )
        self._bar.start()
        self._task = self._bar.add_task(self.description, total=total)

    def advanced(self, count: int = 1) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, count)

    def warning(self, message: str) -> None:
        print_warning(message)
