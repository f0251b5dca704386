"""Worker processes for exact queries: per-point wall-time limits, crash and hang isolation.

Each worker loads the network and the onnxruntime sessions once (from the run's bytes, never
from the model's path), then decides queries sent over a pipe. A query's timeout is the wall
time it may take, from the moment it is sent: the worker gives the solver a little less
(:func:`solver_budget`, room for the set-up and the replay around it), and the parent kills a
worker still busy when the time is up and replaces it; a worker that crashes (segfault,
abort, out of memory) is replaced too. Either way only that query becomes ``unknown``, with
the reason, and the run goes on. A query that fails with an InputError (a missing solver
package, a query that does not fit the network) stops the run instead:
:meth:`WorkerPool.map` raises it, because every other query would fail alike.

Workers never outlive the run: leaving the pool on an exception (an interruption by SIGINT or
SIGTERM included) kills them at once; they ignore SIGINT themselves (Ctrl-C reaches the whole
process group; the parent decides), and they die with the fork server that started them
(``PR_SET_PDEATHSIG``), which exits when the parent does, even on SIGKILL. Their solver
racers die with them in turn.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
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
from robustprop.verify.run.allocator import tune_allocator
from robustprop.verify.run.model import ModelBytes

__all__ = [
    "GRACE_S",
    "RUN_TIME_LIMIT",
    "WorkerPool",
    "WorkerSpec",
    "solver_budget",
    "worker_context",
]

log = logging.getLogger(__name__)

Verdict_ = tuple[Query, Verdict]

# Seconds a worker may overrun a query's timeout before it is killed (0: the timeout is the
# query's wall time, as ``--timeout`` promises).
GRACE_S = 0.0
# What the solver may not use of a query's time: at most RESERVE_S, at most RESERVE_SHARE.
RESERVE_S = 1.0
RESERVE_SHARE = 0.2
#: The reason of a query stopped (or never started) because the run's own time was up.
RUN_TIME_LIMIT = "run time limit"
_PR_SET_PDEATHSIG = 1


def solver_budget(timeout_s: float) -> float:
    """The solver's share of a query's wall time: the rest is for the work around it (seeding,
    encoding, replay), so that the whole query fits in ``timeout_s``."""
    return max(0.0, timeout_s - min(RESERVE_S, RESERVE_SHARE * timeout_s))


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
    bab_share: float | None = None  # of each query's time, for branch and bound (0: none;
    # None: the engine's share for the network, see PointDecider)


def _worker_main(spec: WorkerSpec, conn: Connection) -> None:
    """Worker loop: load once, then answer ``(query, timeout)`` messages until ``None``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops the run, then kills us
    _die_with_parent()
    tune_allocator()
    logging.basicConfig(level=logging.WARNING)
    try:
        model = spec.model
        network = network_from_bytes(model.data, source=model.source, check_points=0)
        replayer = Replayer(model.data, source=model.source)
        decider = PointDecider(network, replayer, spec.backend, bab_share=spec.bab_share)
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
            verdict = decider.decide(query, solver_budget(timeout_s))
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


def _die_with_parent() -> None:
    """Linux: SIGKILL this process when its parent (the fork server) exits."""
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


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
        self.query: Query | None = None
        self.started = 0.0
        self.timeout_s = 0.0
        self.limit_s = 0.0  # this query's wall time: timeout_s, or less near the run's end
        self.backend = ""
        try:
            start_process(self.process)
            child.close()
            ready = self.conn.poll(START_TIMEOUT_S)
            kind, a, b = self.conn.recv() if ready else ("init-error", "Timeout", "no answer")
        except EOFError:
            kind, a, b = "init-error", "Crash", f"exit code {self.process.exitcode}"
        except BaseException:  # interrupted while starting: no half-started worker is left
            self.kill()
            raise
        if kind != "ready":
            self.kill()
            exc = InputError if a == "InputError" else InternalError
            raise exc(f"worker could not load {spec.model.source}: {b}")
        self.backend = str(a)

    def send(self, query: Query, timeout_s: float, limit_s: float) -> None:
        self.query, self.started = query, time.monotonic()
        self.timeout_s, self.limit_s = timeout_s, limit_s
        self.conn.send((query, limit_s))

    def due(self, grace_s: float) -> float:
        """When the current query's time is up (``time.monotonic()``)."""
        return self.started + self.limit_s + grace_s

    def kill(self) -> None:
        if self.process.pid is not None and self.process.is_alive():
            self.process.kill()
        if self.process.pid is not None:
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

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        self.close(kill=kind is not None)

    def close(self, kill: bool = False) -> None:
        """Stop the workers: ask them to finish, or (``kill``, when leaving on an error or an
        interruption) kill them at once."""
        for worker in self._workers:
            if kill:
                worker.kill()
            else:
                worker.stop()
        self._workers.clear()

    @property
    def backend(self) -> str:
        return self._workers[0].backend if self._workers else self.spec.backend

    def map(
        self, queries: Iterable[Query], timeout_s: float, deadline: float | None = None
    ) -> Iterator[Verdict_]:
        """Decide every query; yields ``(query, verdict)`` in completion order. After
        ``deadline`` (``time.monotonic()``) no query starts and running ones are stopped:
        those are ``unknown`` with the reason :data:`RUN_TIME_LIMIT`."""
        pending: deque[Query] = deque(queries)
        if not pending:
            return
        while len(self._workers) < min(self.jobs, len(pending)):
            self._workers.append(_Worker(self._ctx, self.spec))
        busy: dict[int, _Worker] = {}
        dead: set[int] = set()  # killed workers, replaced only when there is more to do
        while pending or busy:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                while pending:
                    yield pending.popleft(), _unstarted(self.backend)
            for slot in range(len(self._workers)):
                if slot not in busy and pending:
                    if slot in dead:
                        self._workers[slot] = _Worker(self._ctx, self.spec)
                        dead.discard(slot)
                    now = time.monotonic()
                    left = timeout_s if deadline is None else min(timeout_s, deadline - now)
                    self._workers[slot].send(pending.popleft(), timeout_s, max(0.0, left))
                    busy[slot] = self._workers[slot]
            if not busy:
                continue
            waitables = [w.conn for w in busy.values()] + [
                w.process.sentinel for w in busy.values()
            ]
            first_due = min(w.due(self.grace_s) for w in busy.values())
            ready = wait(waitables, timeout=min(1.0, max(0.01, first_due - time.monotonic())))
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
                        yield query, _cut_short(worker, verdict)
                        continue
                    if kind == "input-error" and index == query.index:
                        raise InputError(str(verdict))
                if not worker.process.is_alive():
                    code = worker.process.exitcode
                    log.warning("worker died on point %d (exit code %s)", query.index, code)
                    reason = f"solver process crashed (exit code {code})"
                elif now >= worker.due(self.grace_s):
                    if worker.limit_s < worker.timeout_s:
                        reason = f"{RUN_TIME_LIMIT} (stopped after {worker.limit_s:.3g} s)"
                    else:
                        log.info("point %d: still running at its time limit; killed", query.index)
                        reason = f"timeout after {worker.timeout_s:g} s"
                else:
                    continue
                verdict = _failed(worker, reason)
                worker.kill()
                del busy[slot]
                dead.add(slot)
                yield query, verdict


def _unstarted(backend: str) -> Verdict:
    return Verdict(Status.UNKNOWN, Stage.NONE, backend, 0.0, reason=RUN_TIME_LIMIT)


def _cut_short(worker: _Worker, verdict: Verdict) -> Verdict:
    """An ``unknown`` of a query that had less than its timeout (the run's end was near) says
    nothing about the query: it is marked with :data:`RUN_TIME_LIMIT` (and so never stored)."""
    if verdict.status is not Status.UNKNOWN or worker.limit_s >= worker.timeout_s:
        return verdict
    return dataclasses.replace(verdict, reason=f"{RUN_TIME_LIMIT}: {verdict.reason}")


def _failed(worker: _Worker, reason: str) -> Verdict:
    elapsed = time.monotonic() - worker.started
    return Verdict(Status.UNKNOWN, Stage.NONE, worker.backend, elapsed, reason=reason)
