"""Ctrl-C that lands only where a job can stop safely.

Python raises KeyboardInterrupt between any two bytecodes, including inside a thread pool's
``submit`` while it holds the pool's locks; the locks then stay held and the pool's shutdown, or the
interpreter's exit, waits on them forever.  A job that hands work to threads in a tight loop defers
the interrupt instead: the first Ctrl-C only raises a flag, which the job checks at points where no
lock is held.  A second Ctrl-C interrupts at once, as usual.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any


class DeferredInterrupt:
    """Context manager: inside it, SIGINT sets a flag that ``check()`` turns into KeyboardInterrupt.

    Outside the main thread (where Python cannot install signal handlers) it does nothing and
    ``check()`` never raises: Ctrl-C then reaches the main thread as usual.
    """

    def __init__(self) -> None:
        self._requested = threading.Event()
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> DeferredInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)
            self._installed = True
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        self._requested.set()
        # A second Ctrl-C should not wait for the next safe point.
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def check(self) -> None:
        """Raise KeyboardInterrupt if Ctrl-C was pressed since the block began."""
        if self._requested.is_set():
            raise KeyboardInterrupt
