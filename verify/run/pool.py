"""Worker processes for exact queries: per-query timeouts, crash and hang isolation.

Each worker loads the network and the onnxruntime sessions once, then decides queries sent
over a pipe. The parent enforces each query's timeout (the solver's own limit plus a grace
period): a worker that hangs past it is killed and replaced, and a worker that crashes
(segfault, abort, out of memory) is replaced; either way only that query becomes ``unknown``,
with the reason, and the run goes on. A query that fails with an InputError (a missing solver
package, a query that does not fit the network) stops the run instead: :meth:`WorkerPool.map`
raises it, because every other query would fail alike.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import signal
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Literal

from robustprop.properties.errors import InputError, InternalError, RobustpropError
from robustprop.verify.engine.isolation import start_process
from robustprop.verify.engine.network import network_from_bytes
from robustprop.verify.engine.point_query import PointDecider, Query
from robustprop.verify.engine.replay import Replayer
from robustprop.verify.engine.verdict import Stage, Status, Verdict
from robustprop.verify.run.model import ModelBytes

__all__ = ["GRACE_S", "WorkerPool", "WorkerSpec", "worker_context"]

log = logging.getLogger(__name__)

Verdict_ = tuple[Query, Verdict]

# Seconds a worker may overrun a query's timeout before it is killed.
GRACE_S = 5.0
# Seconds a new worker may take to load the network before it counts as broken.
START_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker loads: the model's bytes (the run's own copy, never re-read from disk)
    and the backend to use.

    ``fault`` injects a failure for tests of the isolation: the worker hangs or crashes
    (SIGSEGV) on the query at position ``fault_index``.
    """

    model: ModelBytes
    backend: str
    fault: Literal["hang", "crash"] | None = None
    fault_index: int = -1


def _worker_main(spec: WorkerSpec, conn: Connection) -> None:
    """Worker loop: load once, then answer ``(query, timeout)`` messages until ``None``."""
    logging.basicConfig(level=logging.WARNING)
    try:
        model = spec.model
        network = network_from_bytes(model.data, source=model.source, check_points=0)
        decider = PointDecider(network, Replayer(model.data, source=model.source), spec.backend)
    except RobustpropError as err:
        conn.send(("init-error", type(err).__name__, str(err)))
        return
    conn.send(("ready", decider.backend.value, ""))
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        query, timeout_s = message
        if spec.fault is not None and query.index == spec.fault_index:
            _inject(spec.fault)
        try:
            verdict = decider.decide(query, timeout_s)
        except InputError as err:
            # Bad input, not a hard query: a missing solver package, a query that does not fit
            # the network. It would fail every query alike, so the run stops with it (exit 2).
            conn.send(("input-error", query.index, str(err)))
            continue
        except RobustpropError as err:
            verdict = Verdict(
                Status.UNKNOWN, Stage.NONE, decider.backend.value, 0.0, reason=f"error: {err}"
            )
        except Exception as err:  # a solver bug must not take the worker's run down
            log.exception("query %d failed", query.index)
            verdict = Verdict(
                Status.UNKNOWN,
                Stage.NONE,
                decider.backend.value,
                0.0,
                reason=f"internal error: {type(err).__name__}: {err}",
            )
        conn.send(("verdict", query.index, verdict))


def _inject(fault: str) -> None:
    if fault == "hang":
        time.sleep(10**6)
    os.kill(os.getpid(), signal.SIGSEGV)


class _Worker:
    def __init__(self, ctx: mp.context.ForkServerContext, spec: WorkerSpec) -> None:
        self.conn, child = ctx.Pipe()
        self.process: BaseProcess = ctx.Process(
            target=_worker_main, args=(spec, child), daemon=True
        )
        start_process(self.process)
        child.close()
        self.query: Query | None = None
        self.started = 0.0
        self.timeout_s = 0.0
        self.backend = ""
        ready = self.conn.poll(START_TIMEOUT_S)
        try:
            kind, a, b = self.conn.recv() if ready else ("init-error", "Timeout", "no answer")
        except EOFError:
            kind, a, b = "init-error", "Crash", f"exit code {self.process.exitcode}"
        if kind != "ready":
            self.kill()
            exc = InputError if a == "InputError" else InternalError
            raise exc(f"worker could not load {spec.model.source}: {b}")
        self.backend = str(a)

    def send(self, query: Query, timeout_s: float) -> None:
        self.query, self.started, self.timeout_s = query, time.monotonic(), timeout_s
        self.conn.send((query, timeout_s))

    def overdue(self, now: float, grace_s: float) -> bool:
        return self.query is not None and now > self.started + self.timeout_s + grace_s

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()

    def stop(self) -> None:
        with contextlib.suppress(BrokenPipeError, OSError):
            self.conn.send(None)
        self.process.join(timeout=5)
        self.kill()


def worker_context() -> mp.context.ForkServerContext:
    """Workers fork from multiprocessing's fork server, which has already imported this module
    (and so the engine, onnxruntime and torch): a worker starts in milliseconds instead of
    re-importing everything, it inherits no threads of the parent (unlike ``fork``), and the
    user's ``__main__`` is never re-run in it (unlike ``spawn``), so a script calling the API
    needs no ``if __name__ == "__main__":`` guard (see
    :func:`~robustprop.verify.engine.isolation.start_process`). The preload takes effect when
    the fork server starts (the first worker or isolated call of this process)."""
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
    return ctx


class WorkerPool:
    """``jobs`` worker processes deciding queries on one network."""

    def __init__(self, spec: WorkerSpec, jobs: int = 1, grace_s: float = GRACE_S) -> None:
        if jobs < 1:
            raise InputError(f"--jobs must be >= 1, got {jobs}")
        self.spec = spec
        self.jobs = jobs
        self.grace_s = grace_s
        self._ctx = worker_context()
        self._workers: list[_Worker] = []

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for worker in self._workers:
            worker.stop()
        self._workers.clear()

    @property
    def backend(self) -> str:
        return self._workers[0].backend if self._workers else self.spec.backend

    def map(self, queries: Iterable[Query], timeout_s: float) -> Iterator[Verdict_]:
        """Decide every query; yields ``(query, verdict)`` in completion order."""
        pending: deque[Query] = deque(queries)
        if not pending:
            return
        while len(self._workers) < min(self.jobs, len(pending)):
            self._workers.append(_Worker(self._ctx, self.spec))
        busy: dict[int, _Worker] = {}
        while pending or busy:
            for slot, worker in enumerate(self._workers):
                if slot not in busy and pending:
                    worker.send(pending.popleft(), timeout_s)
                    busy[slot] = worker
            waitables = [w.conn for w in busy.values()] + [
                w.process.sentinel for w in busy.values()
            ]
            ready = wait(waitables, timeout=1.0)
            now = time.monotonic()
            for slot, worker in list(busy.items()):
                assert worker.query is not None
                query = worker.query
                if worker.conn in ready:
                    try:
                        kind, index, verdict = worker.conn.recv()
                    except (EOFError, OSError):
                        kind = "crash"
                    if kind == "verdict" and index == query.index:
                        worker.query = None
                        del busy[slot]
                        yield query, verdict
                        continue
                    if kind == "input-error" and index == query.index:
                        raise InputError(str(verdict))
                if not worker.process.is_alive():
                    code = worker.process.exitcode
                    log.warning("worker died on point %d (exit code %s)", query.index, code)
                    yield query, _failed(worker, f"solver process crashed (exit code {code})")
                elif worker.overdue(now, self.grace_s):
                    log.warning("point %d: worker hung past its timeout; killed", query.index)
                    yield query, _failed(worker, f"timeout after {worker.timeout_s:g} s")
                else:
                    continue
                worker.kill()
                del busy[slot]
                self._workers[slot] = _Worker(self._ctx, self.spec)


def _failed(worker: _Worker, reason: str) -> Verdict:
    elapsed = time.monotonic() - worker.started
    return Verdict(Status.UNKNOWN, Stage.NONE, worker.backend, elapsed, reason=reason)
