"""One run: satisfaction, security and accuracy of one property on one network.

Per point, with :attr:`Strategy.STAGED` (the default), in order (each step only for what the
previous left open; the stages are :mod:`robustprop.verify.run.stages`):

1. **center** — the data point itself, replayed through onnxruntime;
2. **attack** — batched PGD (:mod:`robustprop.verify.run.empirical`: the property's own
   attack objectives, all in one batch); a candidate counts only after replay. The same attack
   gives the *security* metric;
3. **bounds** — batched CROWN bound propagation over all open points: ``holds`` when it proves
   the negation empty; otherwise the disjuncts it refutes are dropped and the rest goes on
   seeded with CROWN's neuron bounds;
4. **solver** — the exact backend (``jobs`` worker processes; ``timeout_s`` bounds each
   point's wall time there); ``auto`` is Z3 for tiny networks, else the Marabou/MILP
   portfolio. A store may answer a query first, under the rules of
   :mod:`robustprop.verify.run.reuse` (an untrusted cache).

Attack and bounds never both decide a point (one proves, the other refutes), so their order
only changes the time spent: without the security metric a short attack (``QUICK_STEPS``
steps, one run) goes first, then the bounds, then the full attack on what is left.

:attr:`Strategy.PLAIN` is the baseline a user could script: every point goes straight to the
exact backend (``auto``: Marabou), without the center, attack and bound stages (the attack
still runs, for the security metric only, when that metric is asked for).

*Accuracy* is the fraction of uniform samples of the region on which the predicate holds; it
is measured before the points are decided, so that ``max_time_s`` (``--max-time``) bounds the
run: after it no stage starts, running queries stop, and the points left are ``unknown``
("run time limit"). A run interrupted by SIGINT or SIGTERM (:mod:`robustprop.verify.run.signals`)
raises :class:`~robustprop.verify.run.signals.Interrupted` carrying what it had decided.
The invariants of DESIGN.md §3 are checked on every run: a point proved ``holds`` never has a
confirmed attack or sample violation; every ``violated`` carries a witness.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from robustprop.lazy import load
from robustprop.properties import Domain, PGDConfig, References
from robustprop.properties.errors import InputError
from robustprop.properties.spec import Negation
from robustprop.verify.engine.backends.base import BackendName
from robustprop.verify.engine.backends.registry import choose_backend
from robustprop.verify.engine.network import Network, network_from_bytes
from robustprop.verify.engine.point_query import Query
from robustprop.verify.engine.replay import Replayer
from robustprop.verify.engine.revision import engine_revision
from robustprop.verify.engine.torch_net import to_torch
from robustprop.verify.engine.verdict import Stage, Status, Verdict
from robustprop.verify.run.checks import invariants, overrule_stored
from robustprop.verify.run.config import RunConfig
from robustprop.verify.run.empirical import ATTACK_BATCH, attack_points, sample_points
from robustprop.verify.run.points import Points, PointSelection, domain_from_metadata, load_points
from robustprop.verify.run.result import PointResult, RunResult
from robustprop.verify.run.reuse import StoreReport, StoreSession
from robustprop.verify.run.signals import Interrupted, signal_name
from robustprop.verify.run.stages import (
    Attack,
    ExactSettings,
    Origin,
    Strategy,
    confirm,
    run_stages,
    torch_threads,
)
from robustprop.verify.run.store import point_key, property_key
from robustprop.verify.run.vnnlib_export import export_vnnlib

if TYPE_CHECKING:
    import torch

__all__ = [
    "QUICK_STEPS",
    "Progress",
    "RunInputs",
    "RunState",
    "attack_stage",
    "center_stage",
    "decide_stage",
    "prepare",
    "run",
    "sampling_stage",
]

log = logging.getLogger(__name__)

#: Steps of the short attack that runs before the bound stage.
QUICK_STEPS = 20

#: Called once per point as soon as its verdict (or, without satisfaction, its row) is known.
Progress = Callable[[PointResult], None]


@dataclass(frozen=True, eq=False)
class RunInputs:
    """What every stage reads: loaded once, from the run's one copy of the model."""

    config: RunConfig
    network: Network
    replayer: Replayer
    points: Points
    domain: Domain
    refs: References
    negations: tuple[Negation, ...]
    torch_model: torch.nn.Module
    attack_model: torch.nn.Module
    generator: torch.Generator

    @property
    def everything(self) -> list[int]:
        return list(range(len(self.points.x)))

    @property
    def staged(self) -> bool:
        return self.config.strategy is Strategy.STAGED

    def wants(self, metric: str) -> bool:
        return metric in self.config.metrics


@dataclass(eq=False)
class RunState:
    """What the stages have found so far, by point position (the only mutable state)."""

    verdicts: dict[int, Verdict] = field(default_factory=dict)
    attack_violated: dict[int, bool] = field(default_factory=dict)
    attack_margin: dict[int, float] = field(default_factory=dict)
    center_violated: set[int] = field(default_factory=set)
    from_store: set[int] = field(default_factory=set)
    replayed: set[int] = field(default_factory=set)  # reused violated, witness replayed now
    evidence: dict[int, Verdict] = field(default_factory=dict)  # this run's replayed violations
    sampling: dict[int, tuple[float, bool]] = field(default_factory=dict)
    store: StoreReport | None = None

    def row(self, inputs: RunInputs, i: int) -> PointResult:
        """Point ``i`` as the run reports it."""
        sampled = self.sampling.get(i)
        return PointResult(
            index=int(inputs.points.indices[i]),
            label=int(inputs.points.y[i]),
            verdict=self.verdicts.get(i),
            attack_violated=self.attack_violated.get(i),
            attack_margin=self.attack_margin.get(i),
            sampling_fraction=None if sampled is None else sampled[0],
            reused=i in self.from_store,
            replayed=i in self.replayed,
        )


def run(config: RunConfig, progress: Progress | None = None) -> RunResult:
    """Measure the requested metrics; the stages run in the module docstring's order.

    Raises :class:`Interrupted` (SIGINT, or SIGTERM within
    :func:`~robustprop.verify.run.signals.stop_on_signals`) with the partial result."""
    start = time.monotonic()
    deadline = None if config.max_time_s is None else start + config.max_time_s
    state = RunState()
    inputs: RunInputs | None = None
    backend = BackendName.Z3
    try:
        inputs = prepare(config)
        backend = choose_backend(config.backend, inputs.network, plain=not inputs.staged)
        _measure(inputs, state, backend, deadline, progress)
    except KeyboardInterrupt as err:
        signum = err.signum if isinstance(err, Interrupted) else signal.SIGINT
        if inputs is None:
            raise Interrupted(signum) from None
        why = f"interrupted by {signal_name(signum)}"
        partial = _result(inputs, state, backend.value, time.monotonic() - start, why)
        raise Interrupted(signum, partial) from None
    return _result(inputs, state, backend.value, time.monotonic() - start)


def _measure(
    inputs: RunInputs,
    state: RunState,
    backend: BackendName,
    deadline: float | None,
    progress: Progress | None,
) -> None:
    """The stages, in order, into ``state``.

    ``progress`` hears of a point as soon as its verdict is known (with satisfaction: after the
    center and its attack batch, else from the exact stages) or, without satisfaction, as soon
    as its row is complete. The security attack runs in batches of :data:`ATTACK_BATCH` points
    with progress after each; without satisfaction, sampling (fast) goes before the attack so
    that a row is complete when its batch is. The random streams are those of one call (the
    attack's generator is used batch after batch either way; sampling has its own), so the
    numbers do not depend on the batching or on ``progress``.
    """
    config = inputs.config
    satisfaction = inputs.wants("satisfaction")
    decides_early = satisfaction and inputs.staged
    if decides_early or inputs.wants("security"):
        center_stage(inputs, state)
    if inputs.wants("accuracy") and not satisfaction:
        sampling_stage(inputs, state)
    reported: set[int] = set()

    def report(indices: Sequence[int]) -> None:
        for i in indices:
            if (
                progress is not None
                and i not in reported
                and (i in state.verdicts or not satisfaction)
            ):
                reported.add(i)
                progress(state.row(inputs, i))

    if inputs.wants("security"):
        everything = inputs.everything
        for lo in range(0, len(everything), ATTACK_BATCH):
            batch = everything[lo : lo + ATTACK_BATCH]
            found = attack_stage(inputs, state, batch, config.attack)
            if decides_early:
                state.verdicts.update({i: v for i, v in found.items() if i not in state.verdicts})
            report(batch)
    if inputs.wants("accuracy") and satisfaction:
        sampling_stage(inputs, state)  # after the attack: its witnesses are the evidence first
    report(sorted(state.verdicts) if satisfaction else inputs.everything)
    if satisfaction:
        decide_stage(inputs, state, backend, progress, deadline)


def _result(
    inputs: RunInputs, state: RunState, backend: str, time_s: float, incomplete: str = ""
) -> RunResult:
    """The run's result from ``state``; ``incomplete``: why it stopped early (undecided points
    are then ``unknown`` with that reason)."""
    if incomplete and inputs.wants("satisfaction"):
        for i in inputs.everything:
            if i not in state.verdicts:
                reason = f"{incomplete} before it was decided"
                state.verdicts[i] = Verdict(Status.UNKNOWN, Stage.NONE, backend, 0.0, reason=reason)
    overruled = overrule_stored(state.verdicts, state.from_store, state.evidence)
    for i, verdict in sorted(overruled.items()):
        log.warning(
            "point %d: the stored %s is contradicted by a violation found in this run; "
            "the store is wrong",
            int(inputs.points.indices[i]),
            state.verdicts[i].status.value,
        )
        state.verdicts[i] = verdict
        state.from_store.discard(i)
    if overruled and state.store is not None:
        state.store = dataclasses.replace(
            state.store,
            reused=state.store.reused - len(overruled),
            contradicted=len(overruled),
        )
    rows = tuple(state.row(inputs, i) for i in inputs.everything)
    breaches = invariants(rows, {i: bad for i, (_, bad) in state.sampling.items()})
    for breach in breaches:
        log.error("invariant broken: %s", breach)
    return RunResult(
        inputs.config,
        inputs.network,
        backend,
        rows,
        tuple(breaches),
        time_s,
        len(state.from_store),
        state.store,
        incomplete,
    )


def prepare(config: RunConfig) -> RunInputs:
    """Load the network, the points and their references and negations (the run's inputs)."""
    torch = load("torch")
    model = config.model
    domain = config.domain or domain_from_metadata(model.metadata(), model.source)
    network = network_from_bytes(model.data, source=model.source)
    note = model.assumptions(domain_given=config.domain is not None)
    if note:
        log.warning("%s", note)
    points = _points(config.points, network.n)
    replayer = Replayer(model.data, source=model.source)
    prop = config.prop
    y_center = replayer.evaluate64(points.x)
    labels = torch.from_numpy(points.y) if bool(np.all(points.y >= 0)) else None
    try:
        refs = prop.references(torch.from_numpy(y_center), labels)
    except InputError as err:
        raise InputError(f"data {points.source!r} with reference {prop.reference}: {err}") from err
    negations = tuple(
        prop.negation(points.x[i], y_center[i], int(refs.classes[i]), domain, config.tau)
        for i in range(len(points.x))
    )
    if config.export_vnnlib is not None:
        export_vnnlib(config, points, list(negations))
    torch_model = to_torch(network)
    attack_model = torch_model if config.device == "cpu" else to_torch(network).to(config.device)
    generator = torch.Generator(device=config.device).manual_seed(config.seed)
    return RunInputs(
        config,
        network,
        replayer,
        points,
        domain,
        refs,
        negations,
        torch_model,
        attack_model,
        generator,
    )


def center_stage(inputs: RunInputs, state: RunState) -> None:
    """1. The data point itself: a violation there decides the point (and its security)."""
    for i in inputs.everything:
        hit = confirm(inputs.replayer, inputs.points.x[i], inputs.negations[i])
        if hit is not None:
            state.center_violated.add(i)
            state.evidence.setdefault(i, dataclasses.replace(hit, stage=Stage.CENTER))
            if inputs.wants("satisfaction") and inputs.staged:
                state.verdicts[i] = state.evidence[i]


def attack_stage(
    inputs: RunInputs, state: RunState, indices: Sequence[int], pgd: PGDConfig
) -> dict[int, Verdict]:
    """2. PGD on ``indices``: security data into ``state``; returns the replayed violations."""
    if not indices:
        return {}
    torch = load("torch")
    prop, config = inputs.config.prop, inputs.config
    t0 = time.monotonic()
    with torch_threads(1):
        found = attack_points(
            prop,
            inputs.attack_model,
            inputs.points.x,
            inputs.refs,
            indices,
            inputs.domain,
            pgd,
            inputs.generator,
            config.device,
        )
    per_point = (time.monotonic() - t0) / len(indices)
    out: dict[int, Verdict] = {}
    for i, best in zip(indices, found, strict=True):
        state.attack_margin[i] = best.margin
        hit = None
        if prop.violated(torch.tensor(best.margin)).item():
            hit = confirm(inputs.replayer, best.x, inputs.negations[i])
        state.attack_violated[i] = hit is not None or i in state.center_violated
        if hit is not None:
            out[i] = dataclasses.replace(hit, stage=Stage.ATTACK, backend="pgd", time_s=per_point)
            state.evidence.setdefault(i, out[i])
    return out


def decide_stage(
    inputs: RunInputs,
    state: RunState,
    backend: BackendName,
    progress: Progress | None,
    deadline: float | None = None,
) -> None:
    """3, 4. Bounds and the exact stage (:func:`run_stages`) on the points still open, after a
    short attack when the security attack did not already run; the store may answer a point
    first (:class:`StoreSession`), and verdicts from the exact stage go to it as they arrive."""
    config = inputs.config
    attacks: tuple[Attack, ...] = ()
    if not inputs.wants("security"):
        quick = dataclasses.replace(
            config.attack, steps=min(config.attack.steps, QUICK_STEPS), restarts=1
        )
        attacks = (
            functools.partial(_attack_queries, inputs, state, quick),
            functools.partial(_attack_queries, inputs, state, config.attack),
        )
    settings = ExactSettings(
        backend, config.timeout_s, config.jobs, config.executor, config.address, deadline=deadline
    )
    keys = (
        inputs.network.sha256,
        property_key(config.prop.name, config.prop.params(), config.tau),
        # an unknown is reused only from the same backend *and* engine revision
        f"{backend.value}@{engine_revision()}",
        config.timeout_s,
    )
    with contextlib.ExitStack() as stack:
        store = None
        if config.store_path is not None:
            store = stack.enter_context(
                StoreSession(config.store_path, keys, config.reuse, config.store_trusted)
            )
            stack.callback(lambda: setattr(state, "store", store.report()))

        def key(q: Query) -> str:
            return point_key(inputs.points.x[q.index], int(inputs.points.y[q.index]))

        def replay(q: Query, stored: Verdict) -> Verdict | None:
            witness = stored.witness
            n = inputs.network.n
            if witness is None or witness.shape != (n,) or not np.all(np.isfinite(witness)):
                return None
            hit = confirm(inputs.replayer, witness, inputs.negations[q.index])
            if hit is None:
                return None
            return dataclasses.replace(
                stored, witness=hit.witness, witness_output=hit.witness_output
            )

        def lookup(q: Query) -> Verdict | None:
            if store is None:
                return None
            taken = store.take(key(q), functools.partial(replay, q))
            if taken is None:
                return None
            verdict, replayed = taken
            if replayed:
                state.replayed.add(q.index)
            return verdict

        def reached(q: Query, verdict: Verdict, origin: Origin) -> None:
            state.verdicts[q.index] = verdict
            if origin is Origin.STORE:
                state.from_store.add(q.index)
            elif store is not None and origin is Origin.EXACT:
                store.put(key(q), verdict)
            if progress is not None:
                progress(state.row(inputs, q.index))

        run_stages(
            [Query(i, inputs.negations[i]) for i in inputs.everything if i not in state.verdicts],
            inputs.network,
            config.model,
            inputs.replayer,
            settings,
            strategy=config.strategy,
            attacks=attacks,
            centers_y=inputs.network.evaluate(inputs.points.x),
            device=config.device,
            lookup=lookup,
            on_verdict=reached,
        )
    if state.from_store:
        log.info("reused %d stored verdict(s) from %s", len(state.from_store), config.store_path)


def _attack_queries(
    inputs: RunInputs, state: RunState, pgd: PGDConfig, queries: Sequence[Query]
) -> dict[int, Verdict]:
    return attack_stage(inputs, state, [q.index for q in queries], pgd)


def sampling_stage(inputs: RunInputs, state: RunState) -> None:
    """Accuracy: uniform samples of each region; a failing sample is replayed (a confirmed one
    next to a ``holds`` verdict is an invariant breach)."""
    config = inputs.config
    sampled = sample_points(
        config.prop,
        inputs.torch_model,
        inputs.points.x,
        inputs.refs,
        inputs.domain,
        config.samples,
        config.seed + 1,
    )
    for i, (fraction, bad) in enumerate(sampled):
        hit = None if bad is None else confirm(inputs.replayer, bad, inputs.negations[i])
        if hit is not None:
            state.evidence.setdefault(i, dataclasses.replace(hit, backend="sampling"))
        state.sampling[i] = (fraction, hit is not None)


def _points(points: PointSelection | Points, n_inputs: int) -> Points:
    if isinstance(points, PointSelection):
        return load_points(points, n_inputs)
    if points.x.ndim != 2 or points.x.shape[1] != n_inputs:
        raise InputError(
            f"points {points.source!r}: expected shape (N, {n_inputs}), got {points.x.shape}"
        )
    return points
