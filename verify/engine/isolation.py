"""Run one function call in a worker process with a hard time limit.

A solver that hangs, crashes (segfault, abort) or exhausts memory costs only that call: the
caller gets a :class:`Failure` with the reason instead of losing the run. Used for every exact
query (``verify vnnlib``, and ``verify run`` with ``--jobs N``, which calls this from several
threads at once; each call owns its process and pipe).

Inside the worker, file descriptor 1 is pointed at stderr, so that a solver's prints never mix
with results on stdout. Workers are forked from multiprocessing's fork server by default: safe
after onnxruntime or other threaded libraries are loaded in the parent (unlike ``fork``), and
cheap (unlike ``spawn``, which re-imports torch via ``properties`` for every query). ``fn`` and
its arguments must be picklable (``fn`` a module-level function), and a script that calls this
needs the ``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, Literal, TypeVar

from robustprop.properties.errors import RobustpropError

__all__ = ["Failure", "run_isolated", "start_process"]

log = logging.getLogger(__name__)

T = TypeVar("T")

FailureKind = Literal["timeout", "crash", "error"]

# One thread at a time hides ``__main__.__file__`` (``--jobs N`` starts workers from threads).
_HIDING = threading.Lock()


@dataclass(frozen=True)
class Failure:
    """Why an isolated call produced no result: ``timeout``, ``crash`` (the worker died) or
    ``error`` (``fn`` raised an exception that is not a :class:`RobustpropError`)."""

    reason: str
    kind: FailureKind
    time_s: float


def start_process(process: BaseProcess) -> None:
    """``process.start()`` without making the child re-run the user's main script.

    A ``spawn`` or ``forkserver`` child re-imports the parent's ``__main__`` from its path
    unless told otherwise, so a script calling robustprop without an
    ``if __name__ == "__main__":`` guard would run itself again in every worker (and fail
    there). Our workers' functions live in robustprop's own modules and need nothing from the
    user's script, so its path is hidden from multiprocessing while the child is prepared.
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or path is None or getattr(main, "__spec__", None) is not None:
        process.start()
        return
    with _HIDING:
        del main.__file__
        try:
            process.start()
        finally:
            main.__file__ = path


def run_isolated(
    fn: Callable[..., T],
    args: tuple[Any, ...],
    timeout_s: float,
    *,
    grace_s: float = 2.0,
    start_method: str = "forkserver",
) -> T | Failure:
    """``fn(*args)`` in a fresh worker process, killed after ``timeout_s + grace_s`` seconds.

    ``grace_s`` leaves room for the worker's start-up and for a solver to notice its own time
    limit (set it to ``timeout_s``) and return cleanly.

    Returns ``fn``'s result, or a :class:`Failure`. A :class:`RobustpropError` raised by ``fn``
    (e.g. InputError for a missing solver package) is re-raised here, unchanged.
    """
    ctx: Any = mp.get_context(start_method)  # typeshed: BaseContext lacks Process
    if start_method == "forkserver":
        # Takes effect when the fork server starts (first call in this process): workers are
        # forked from a server that has already imported ``fn``'s module and ``properties``
        # (which imports torch, the slowest import every query would otherwise repeat).
        ctx.set_forkserver_preload(["robustprop.properties.spec", fn.__module__])
    receiver, sender = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_worker, args=(sender, fn, args), daemon=True)
    start = time.monotonic()
    start_process(process)
    sender.close()
    limit = max(0.0, timeout_s) + grace_s
    name = getattr(fn, "__qualname__", repr(fn))
    try:
        if not receiver.poll(limit):
            log.warning("%s: no answer after %.1f s, killing worker %s", name, limit, process.pid)
            return Failure(
                f"timed out: no answer within {timeout_s:g} s (+{grace_s:g} s grace)",
                "timeout",
                time.monotonic() - start,
            )
        try:
            tag, payload = receiver.recv()
        except (EOFError, OSError):
            process.join(1.0)
            code = process.exitcode
            return Failure(
                f"worker process died (exit code {code}) without an answer",
                "crash",
                time.monotonic() - start,
            )
    finally:
        if process.is_alive():
            process.kill()
        process.join()
        receiver.close()
    if tag == "ok":
        return payload  # type: ignore[no-any-return]
    if tag == "raise" and isinstance(payload, RobustpropError):
        raise payload
    log.debug("%s failed in the worker:\n%s", name, payload)
    first = str(payload).strip().splitlines()
    return Failure(
        f"worker error: {first[-1] if first else payload}", "error", time.monotonic() - start
    )


def _worker(conn: Connection, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    with contextlib.suppress(OSError):
        os.dup2(2, 1)  # solver prints go to stderr, never to the parent's stdout
    try:
        try:
            message: tuple[str, Any] = ("ok", fn(*args))
        except RobustpropError as err:
            message = ("raise", err)
        except BaseException:  # anything else becomes a Failure in the parent
            message = ("error", traceback.format_exc())
        try:
            conn.send(message)
        except Exception:  # e.g. an unpicklable result
            conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()
