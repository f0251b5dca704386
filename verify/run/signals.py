"""SIGINT and SIGTERM during a run: stop cleanly, keep what was decided, exit 128 + signal.

:func:`stop_on_signals` (entered by ``verify run``) turns SIGTERM, and SIGINT unless it is
ignored (a background job), into :class:`Interrupted` in the main thread. It unwinds the run
like Ctrl-C: worker pools kill their workers on the way out (a worker never outlives the run;
:mod:`robustprop.verify.run.pool`), every verdict already decided is in the store, and
:func:`robustprop.verify.run.runner.run` re-raises it carrying the partial result, which the
CLI writes (marked incomplete) before it exits with :attr:`Interrupted.exit_code`. Once a
signal has stopped the run, and while the documents are written (:meth:`SignalGuard.hold`),
signals are only recorded, so the documents are written whole.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from robustprop.verify.run.result import RunResult

__all__ = ["Interrupted", "SignalGuard", "signal_name", "stop_on_signals"]


def signal_name(signum: int) -> str:
    """``SIGTERM`` for 15, ..."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class Interrupted(KeyboardInterrupt):
    """A run stopped by a signal; ``result``: what it had decided by then (or None)."""

    def __init__(self, signum: int = signal.SIGINT, result: RunResult | None = None) -> None:
        super().__init__(f"interrupted by {signal_name(signum)}")
        self.signum = signum
        self.result = result

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 + the signal number (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + self.signum


class SignalGuard:
    """The state of :func:`stop_on_signals`: the first signal received, and whether signals
    are held (recorded, not raised) right now."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._holding = False

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            return  # already stopping
        self.received = signum
        if not self._holding:
            raise Interrupted(signum)

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Within the block a signal is recorded (``received``) but does not interrupt."""
        self._holding = True
        try:
            yield
        finally:
            self._holding = False


@contextlib.contextmanager
def stop_on_signals() -> Iterator[SignalGuard]:
    """Within the block, SIGTERM and SIGINT raise :class:`Interrupted` (the first one; later
    ones are ignored). Outside the main thread, signals are left alone."""
    guard = SignalGuard()
    if threading.current_thread() is not threading.main_thread():
        yield guard
        return
    saved: dict[int, Any] = {}
    for signum in (signal.SIGTERM, signal.SIGINT):
        current = signal.getsignal(signum)
        if signum == signal.SIGINT and current is signal.SIG_IGN:
            continue  # a background job: whoever started it chose to ignore Ctrl-C
        saved[signum] = current
        signal.signal(signum, guard.handle)
    try:
        yield guard
    finally:
        for number, previous in saved.items():
            signal.signal(number, previous)
