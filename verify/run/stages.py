"""The stages of the staged pipeline, shared by ``verify run`` and ``verify vnnlib``.

A stage takes the open :class:`~robustprop.verify.engine.point_query.Query` s and returns the
verdicts it reached; what it leaves open goes to the next stage:

- :func:`confirm` — a candidate point counts only after onnxruntime replay;
- :func:`bound_stage` — batched CROWN bound propagation: ``holds`` where it proves the negation
  empty; the rest pruned of the disjuncts it refutes and seeded with its neuron bounds;
- :func:`bab_stage` — branch and bound over α-CROWN bounds
  (:mod:`robustprop.verify.engine.bab`) on each open linear query (VNN-LIB, CR, SR; not LR or
  SCR) for a share of its time: ``holds`` when every sub-domain is proved, ``violated`` with a
  replayed counterexample of its attack; what it leaves ``unknown`` goes whole to the exact
  stage;
- :func:`exact_stage` — the exact backend under a per-query wall-time limit, in a pool of
  worker processes or Ray actors that kills a query still running when its time is up (so
  ``timeout_s`` bounds each point's wall time, set-up and replay included); ``verify vnnlib``
  runs its one query in this process (``in_process``, each solver call in a killed-on-timeout
  child with ``isolate``).

:func:`run_stages` chains the caller's attacks (PGD on the property for ``verify run``, the
falsifier on a VNN-LIB negation for ``verify vnnlib``), the bounds, branch and bound and the
exact stage. Order: a first cheap attack when there are two, the bounds, a short branch and
bound (easy proofs come before the longer attacks), the remaining attacks, branch and bound
for its share of the query's time, then the exact stage.
With a ``deadline`` (``--max-time``), no stage starts after it and running queries stop at it;
the points left open are ``unknown`` with the reason "run time limit".
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from robustprop.properties.errors import InputError, RobustpropError
from robustprop.properties.spec import FloatArray, Negation
from robustprop.verify.engine.bab import BabConfig, BabState, bab_decide, supported
from robustprop.verify.engine.backends.base import BackendName
from robustprop.verify.engine.bounds import bound_negations, compute_seeds
from robustprop.verify.engine.crown import Crown
from robustprop.verify.engine.network import Network
from robustprop.verify.engine.point_query import PointDecider, Query, bab_share_for, confirm
from robustprop.verify.engine.replay import Replayer
from robustprop.verify.engine.torch_net import torch_threads
from robustprop.verify.engine.verdict import Stage, Status, Verdict
from robustprop.verify.run.model import ModelBytes
from robustprop.verify.run.pool import RUN_TIME_LIMIT, WorkerPool, WorkerSpec
from robustprop.verify.run.ray_pool import RayPool

__all__ = [
    "Attack",
    "ExactSettings",
    "Executor",
    "Origin",
    "Strategy",
    "bab_stage",
    "bound_stage",
    "confirm",
    "exact_stage",
    "run_stages",
    "torch_threads",
]

log = logging.getLogger(__name__)


class Strategy(StrEnum):
    """How points are decided."""

    STAGED = "staged"  # center, attack, bounds, then the exact backend
    PLAIN = "plain"  # the exact backend alone: the baseline a user could script


class Origin(StrEnum):
    """Where :func:`run_stages` got a verdict from."""

    ATTACK = "attack"
    BOUNDS = "bounds"
    BAB = "bab"  # branch and bound
    STORE = "store"  # an earlier run's verdict (an untrusted cache)
    EXACT = "exact"
    LIMIT = "limit"  # not decided: the run's time was up (``deadline``)


class Executor(StrEnum):
    """Where the exact stage's queries run."""

    LOCAL = "local"  # worker processes on this machine
    RAY = "ray"  # Ray actors (a local instance or ``address``)


@dataclass(frozen=True)
class ExactSettings:
    """How the exact stage runs: a resolved backend, a per-query limit, the executor."""

    backend: BackendName
    timeout_s: float
    jobs: int = 1
    executor: Executor = Executor.LOCAL
    address: str | None = None
    in_process: bool = False  # one job in this process (``verify vnnlib``)
    isolate: bool = True  # in this process: each solver call in a child killed on timeout
    deadline: float | None = None  # time.monotonic() after which nothing starts or runs
    # of a query's time limit, for branch and bound (0: none; None: the engine's share for
    # the network, see PointDecider)
    bab_share: float | None = None
    bab_quick_s: float = 2.0  # the short first round of branch and bound (at most)

    def __post_init__(self) -> None:
        if self.bab_share is not None and not 0.0 <= self.bab_share <= 1.0:
            raise InputError(f"the branch-and-bound share must lie in [0, 1], got {self.bab_share}")
        if not self.bab_quick_s >= 0.0:
            raise InputError(
                f"the quick branch-and-bound time must be >= 0, got {self.bab_quick_s}"
            )

    def expired(self) -> bool:
        """Whether the deadline has passed."""
        return self.deadline is not None and time.monotonic() >= self.deadline

    def budget(self) -> float:
        """The time limit of the next query: ``timeout_s``, or less when a deadline is near."""
        if self.deadline is None:
            return self.timeout_s
        return max(0.0, min(self.timeout_s, self.deadline - time.monotonic()))


def bound_stage(
    network: Network,
    queries: Sequence[Query],
    *,
    centers_y: FloatArray | None = None,
    device: str = "cpu",
) -> tuple[dict[int, Verdict], list[Query]]:
    """Batched bound propagation: ``holds`` verdicts by query index, and the open queries,
    pruned and seeded for the exact stage."""
    if not queries:
        return {}, []
    t0 = time.monotonic()
    crown = Crown(network, device)
    negations = [q.negation for q in queries]
    with torch_threads(1):
        results = compute_seeds(
            network, bound_negations(network, negations, crown, centers_y=centers_y), crown
        )
    per_query = (time.monotonic() - t0) / len(queries)
    proved: dict[int, Verdict] = {}
    left: list[Query] = []
    for q, r in zip(queries, results, strict=True):
        if r.holds or r.negation is None:
            proved[q.index] = Verdict(Status.HOLDS, Stage.BOUNDS, "crown", per_query, r.reason)
        else:
            left.append(Query(q.index, r.negation, r.seed, r.g_bounds))
    log.info("bound stage: %d of %d proved", len(proved), len(queries))
    return proved, left


def bab_stage(
    network: Network,
    queries: Sequence[Query],
    replayer: Replayer,
    budget_s: float,
    *,
    deadline: float | None = None,
    device: str = "cpu",
    config: BabConfig | None = None,
    states: dict[int, BabState] | None = None,
) -> dict[int, Verdict]:
    """Branch and bound on each supported query for at most ``budget_s`` seconds (and not
    past ``deadline``): the verdicts it reached, by query index. ``states`` receives, by query
    index, where each search left open stopped (the exact stage resumes from there)."""
    todo = [q for q in queries if supported(q.negation)]
    if not todo or budget_s <= 0.0:
        return {}
    crown = Crown(network, device)
    out: dict[int, Verdict] = {}
    for q in todo:
        t0 = time.monotonic()
        stop = t0 + budget_s if deadline is None else min(t0 + budget_s, deadline)
        if stop <= t0:
            break
        negation = q.negation

        def check(x: FloatArray, negation: Negation = negation) -> Verdict | None:
            return confirm(replayer, x, negation)

        with torch_threads(1):
            outcome = bab_decide(crown, negation, check, stop, config)
        if states is not None and outcome.state is not None:
            states[q.index] = outcome.state
        elapsed = time.monotonic() - t0
        if outcome.status is Status.HOLDS:
            out[q.index] = Verdict(Status.HOLDS, Stage.BAB, "bab", elapsed, outcome.reason)
        elif outcome.status is Status.VIOLATED and outcome.witness is not None:
            out[q.index] = dataclasses.replace(
                outcome.witness,
                stage=Stage.BAB,
                backend="bab",
                time_s=elapsed,
                reason=f"{outcome.reason}; witness confirmed by onnxruntime",
            )
        else:
            log.info("bab: query %d open (%s)", q.index, outcome.reason)
    log.info("bab stage: %d of %d decided", len(out), len(todo))
    return out


def exact_stage(
    queries: Sequence[Query],
    settings: ExactSettings,
    network: Network,
    model: ModelBytes,
    replayer: Replayer,
    resume: Mapping[int, BabState] | None = None,
) -> Generator[tuple[Query, Verdict], None, None]:
    """Exact verdicts for ``queries`` in completion order (see the module doc); in process,
    branch and bound resumes from ``resume`` (by query index; pool workers start afresh)."""
    if not queries:
        return
    if settings.in_process:
        decider = PointDecider(
            network,
            replayer,
            settings.backend.value,
            isolate=settings.isolate,
            bab_share=settings.bab_share,
            resume=resume,
        )
        for query in queries:
            yield query, _decide_here(decider, query, settings)
        return
    spec = WorkerSpec(model, settings.backend.value, bab_share=settings.bab_share)
    pool: WorkerPool | RayPool
    if settings.executor is Executor.RAY:
        pool = RayPool(spec, settings.jobs, settings.address)
    else:
        pool = WorkerPool(spec, settings.jobs)
    with pool:
        yield from pool.map(queries, settings.timeout_s, settings.deadline)


def _decide_here(decider: PointDecider, query: Query, settings: ExactSettings) -> Verdict:
    """One query in this process; an error costs the query, as in a pool worker."""
    backend = settings.backend.value
    try:
        return decider.decide(query, settings.budget())
    except InputError:
        raise  # bad input (a missing solver package): every query would fail alike
    except RobustpropError as err:
        return Verdict(Status.UNKNOWN, Stage.NONE, backend, 0.0, reason=f"error: {err}")
    except Exception as err:  # a solver bug: one query, not the run
        log.exception("query %d failed", query.index)
        reason = f"internal error: {type(err).__name__}: {err}"
        return Verdict(Status.UNKNOWN, Stage.NONE, backend, 0.0, reason=reason)


#: An attack stage: verdicts (``violated``, replayed) for some of the open queries.
Attack = Callable[[Sequence[Query]], dict[int, Verdict]]


def run_stages(
    queries: Sequence[Query],
    network: Network,
    model: ModelBytes,
    replayer: Replayer,
    settings: ExactSettings,
    *,
    strategy: Strategy = Strategy.STAGED,
    attacks: tuple[Attack, ...] = (),
    centers_y: FloatArray | None = None,
    device: str = "cpu",
    lookup: Callable[[Query], Verdict | None] | None = None,
    on_verdict: Callable[[Query, Verdict, Origin], None] | None = None,
) -> dict[int, Verdict]:
    """The staged pipeline on ``queries``; returns every verdict by query index.

    With :attr:`Strategy.STAGED`: ``attacks[0]``, the bounds, the other attacks, then the exact
    stage; :attr:`Strategy.PLAIN` skips all but the exact stage. ``lookup`` may answer a query
    from a store before the exact stage; ``on_verdict(query, verdict, origin)`` is called for
    each verdict as it is reached (the store's writer, a progress bar).
    """
    verdicts: dict[int, Verdict] = {}
    by_index = {q.index: q for q in queries}

    def reached(found: dict[int, Verdict], origin: Origin) -> None:
        for index, verdict in sorted(found.items()):
            verdicts[index] = verdict
            if on_verdict is not None:
                on_verdict(by_index[index], verdict, origin)

    def out_of_time(left: Sequence[Query]) -> bool:
        if not settings.expired():
            return False
        backend = settings.backend.value
        limit = Verdict(Status.UNKNOWN, Stage.NONE, backend, 0.0, reason=RUN_TIME_LIMIT)
        reached({q.index: limit for q in left}, Origin.LIMIT)
        return True

    open_queries = list(queries)
    states: dict[int, BabState] = {}  # where the quick round of branch and bound stopped

    def bounds() -> None:
        nonlocal open_queries
        proved, open_queries = bound_stage(
            network, open_queries, centers_y=_rows(centers_y, open_queries), device=device
        )
        reached(proved, Origin.BOUNDS)

    def bab(budget_s: float) -> None:
        nonlocal open_queries
        found = bab_stage(
            network,
            open_queries,
            replayer,
            budget_s,
            deadline=settings.deadline,
            device=device,
            states=states,
        )
        reached(found, Origin.BAB)
        open_queries = [q for q in open_queries if q.index not in verdicts]

    def attack(run: Attack) -> None:
        nonlocal open_queries
        reached(run(open_queries), Origin.ATTACK)
        open_queries = [q for q in open_queries if q.index not in verdicts]

    if strategy is Strategy.STAGED:
        later = list(attacks)
        if len(later) >= 2:  # a first cheap attack (PGD at the centres) before the bounds
            if out_of_time(open_queries):
                return verdicts
            attack(later.pop(0))
        steps: list[Callable[[], None]] = [bounds]
        # One query (verify vnnlib): a short round of branch and bound here, before the longer
        # attacks. The rest of branch and bound runs in the exact stage (PointDecider), in the
        # pool's workers, `jobs` at a time, under the per-query limit.
        share = bab_share_for(network, settings.bab_share) * settings.timeout_s
        quick = min(settings.bab_quick_s, share) if later and len(open_queries) == 1 else 0.0
        if quick > 0.0:
            steps.append(lambda: bab(quick))
        steps.extend(lambda run=run: attack(run) for run in later)  # type: ignore[misc]
        for step in steps:
            if not open_queries:
                break
            if out_of_time(open_queries):
                return verdicts
            step()
    todo = []
    for q in open_queries:
        hit = None if lookup is None else lookup(q)
        if hit is None:
            todo.append(q)
            continue
        verdicts[q.index] = hit
        if on_verdict is not None:
            on_verdict(q, hit, Origin.STORE)
    if out_of_time(todo):
        return verdicts
    if strategy is Strategy.PLAIN:  # the baseline: the exact backend alone
        settings = dataclasses.replace(settings, bab_share=0.0)
    # closing() kills the workers at once when this frame is left by an exception
    exact_run = exact_stage(todo, settings, network, model, replayer, resume=states)
    with contextlib.closing(exact_run) as exact:
        for q, verdict in exact:
            verdicts[q.index] = verdict
            if on_verdict is not None:
                on_verdict(q, verdict, Origin.EXACT)
    return verdicts


def _rows(centers_y: FloatArray | None, queries: Sequence[Query]) -> FloatArray | None:
    """The centre outputs of ``queries`` (``centers_y`` is indexed by query index)."""
    if centers_y is None or not queries:
        return None
    return np.asarray(centers_y[[q.index for q in queries]])
