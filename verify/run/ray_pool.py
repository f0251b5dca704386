"""Exact queries on a Ray cluster (``--executor ray [--address HOST:PORT]``).

The same contract as :class:`robustprop.verify.run.pool.WorkerPool`: ``map(queries,
timeout_s)`` yields
``(query, verdict)`` as they complete; a worker that hangs past the timeout (plus grace) is
killed and replaced, a worker that dies costs only its query (``unknown`` with the reason), and
a query failing with an InputError (a missing solver package) ends the run with it.
Each Ray actor loads the network from the model's *bytes*, so nodes need robustprop installed
(``pip install robustprop[ray]``) but not the model file. Without ``address`` a local Ray
instance is started for the run and stopped after it.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

from robustprop.properties.errors import InputError
from robustprop.verify.engine.network import network_from_bytes
from robustprop.verify.engine.point_query import PointDecider, Query
from robustprop.verify.engine.replay import Replayer
from robustprop.verify.engine.verdict import Stage, Status, Verdict
from robustprop.verify.run.pool import GRACE_S, RUN_TIME_LIMIT, WorkerSpec, solver_budget

log = logging.getLogger(__name__)


class _Actor:
    """Ray actor body: one network, many queries."""

    def __init__(self, model: bytes, source: str, backend: str) -> None:
        network = network_from_bytes(model, source=source, check_points=0)
        self.decider = PointDecider(network, Replayer(model, source=source), backend)

    def decide(self, query: Query, timeout_s: float) -> Verdict:
        return self.decider.decide(query, solver_budget(timeout_s))


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as err:
        raise InputError(
            "--executor ray needs the package 'ray' (pip install 'robustprop[ray]')"
        ) from err
    return ray


class RayPool:
    """``jobs`` Ray actors deciding queries on one network."""

    def __init__(
        self,
        spec: WorkerSpec,
        jobs: int = 1,
        address: str | None = None,
        grace_s: float = GRACE_S,
    ) -> None:
        if jobs < 1:
            raise InputError(f"--jobs must be >= 1, got {jobs}")
        self.spec = spec
        self.jobs = jobs
        self.grace_s = grace_s
        self._ray = _import_ray()
        self._started_here = False
        if not self._ray.is_initialized():
            try:
                if address is None:
                    self._ray.init(
                        num_cpus=jobs,
                        include_dashboard=False,
                        log_to_driver=False,
                        configure_logging=False,
                    )
                else:
                    self._ray.init(address=address, log_to_driver=False, configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError) as err:
                raise InputError(f"--address {address}: cannot start or reach Ray ({err})") from err
            self._started_here = True
        self._model = spec.model.data
        self._remote = self._ray.remote(num_cpus=1)(_Actor)

    def __enter__(self) -> RayPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._started_here:
            self._ray.shutdown()
            self._started_here = False

    def _actor(self) -> Any:
        return self._remote.remote(self._model, self.spec.model.source, self.spec.backend)

    def map(
        self, queries: Iterable[Query], timeout_s: float, deadline: float | None = None
    ) -> Iterator[tuple[Query, Verdict]]:
        """Decide every query; yields ``(query, verdict)`` in completion order (``deadline``:
        as for :meth:`robustprop.verify.run.pool.WorkerPool.map`)."""
        ray = self._ray
        pending: deque[Query] = deque(queries)
        actors = [self._actor() for _ in range(min(self.jobs, len(pending)))]
        # ref -> (actor slot, query, start, its wall time)
        running: dict[Any, tuple[int, Query, float, float]] = {}
        while pending or running:
            if deadline is not None and time.monotonic() >= deadline:
                while pending:
                    yield pending.popleft(), _failed(time.monotonic(), RUN_TIME_LIMIT)
            busy = {slot for slot, _, _, _ in running.values()}
            for slot in range(len(actors)):
                if slot not in busy and pending:
                    query = pending.popleft()
                    limit = timeout_s
                    if deadline is not None:
                        limit = max(0.0, min(timeout_s, deadline - time.monotonic()))
                    ref = actors[slot].decide.remote(query, limit)
                    running[ref] = (slot, query, time.monotonic(), limit)
            done, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
            for ref in done:
                slot, query, started, _ = running.pop(ref)
                try:
                    yield query, ray.get(ref)
                except ray.exceptions.RayError as err:
                    cause = getattr(err, "cause", None)
                    if isinstance(cause, InputError):  # like WorkerPool: bad input ends the run
                        raise InputError(str(cause)) from err
                    log.warning("point %d: Ray worker failed (%s)", query.index, err)
                    yield query, _failed(started, f"Ray worker failed: {type(err).__name__}")
                    actors[slot] = self._actor()
            now = time.monotonic()
            for ref, (slot, query, started, limit) in list(running.items()):
                if now > started + limit + self.grace_s or (
                    deadline is not None and now >= deadline
                ):
                    ray.kill(actors[slot])
                    del running[ref]
                    late = deadline is not None and now >= deadline
                    reason = RUN_TIME_LIMIT if late else f"timeout after {timeout_s:g} s"
                    yield query, _failed(started, reason)
                    actors[slot] = self._actor()


def _failed(started: float, reason: str) -> Verdict:
    return Verdict(Status.UNKNOWN, Stage.NONE, "ray", time.monotonic() - started, reason=reason)
