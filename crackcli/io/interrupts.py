"""Ctrl-C, and SIGTERM (what batch schedulers and ``kill`` send) taken the same way, landing only where a
job can stop safely.

Python raises KeyboardInterrupt between any two bytecodes, including inside a thread pool's
``submit`` while it holds the pool's locks; the locks then stay held and the pool's shutdown, or the
interpreter's exit, waits on them forever.  A job that hands work to threads in a tight loop defers
the interrupt instead: the first Ctrl-C only raises a flag, which the job checks at points where no
lock is held.  A second Ctrl-C interrupts at once, as usual.

SIGTERM raises ``Terminated``, a KeyboardInterrupt, so every path that finishes a job cleanly on
Ctrl-C does so on SIGTERM too; only the exit status tells them apart (130 and 143, as shells do).
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C's KeyboardInterrupt would be."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated


def terminate_like_ctrl_c() -> None:
    """From now on SIGTERM raises ``Terminated`` in the main thread (call once, at start-up)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_terminated)


class DeferredInterrupt:
    """Context manager: inside it, SIGINT or SIGTERM sets a flag that ``check()`` turns into
    KeyboardInterrupt (``Terminated`` for SIGTERM).

    Outside the main thread (where Python cannot install signal handlers) it does nothing and
    ``check()`` never raises: Ctrl-C then reaches the main thread as usual.
    """

    def __init__(self) -> None:
        self._requested = threading.Event()
        self._terminated = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> DeferredInterrupt:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._on_signal)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._terminated = self._terminated or signum == signal.SIGTERM
        self._requested.set()
        # A second signal should not wait for the next safe point.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _raise_terminated)

    def check(self) -> None:
        """Raise KeyboardInterrupt (``Terminated`` after SIGTERM) if one came since the block began."""
        if self._requested.is_set():
            raise Terminated if self._terminated else KeyboardInterrupt
