"""Decide a :class:`Negation` with an exact backend, trusting only replayed witnesses.

:func:`decide` splits the negation by input box, runs one isolated solver query per box (each
in a worker process with a hard time limit, see :mod:`robustprop.verify.engine.isolation`) and
replays every solver point (a ``Status.VIOLATED`` candidate, the solver's "sat") through
onnxruntime (:mod:`robustprop.verify.engine.replay`):

- ``VIOLATED`` as soon as one query gives a confirmed witness;
- ``HOLDS`` only if every query shows its part of the negation empty (the solver's "unsat");
- ``UNKNOWN`` otherwise, with the reasons.

A solver point that fails replay (typically a point on the boundary of the unsafe set, accepted
by the solver's tolerances) is logged and the query is retried with the atoms shifted inwards by
a small margin; if no retry gives a confirmed point, the query counts as ``UNKNOWN``.

Before any solver call each box's query is screened (:mod:`robustprop.verify.engine.screen`):
disjuncts the sound output bounds refute are dropped, atoms they imply are removed, a disjunct
left without atoms is decided by replaying a point of its box, and a query beyond the backend's
calibrated numerical range is ``UNKNOWN`` with the reason instead of a solver's guess. Marabou
answers a relaxed query (:data:`~robustprop.verify.engine.backends.marabou.RELAXATION`: it
misses margins below about 1e-5); when every point it finds lies within that tolerance of the
threshold and fails replay, the HiGHS MILP (tolerance 1e-9) referees the box, within its range.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass

import numpy as np

from robustprop.properties.spec import Atom, Disjunct, Negation
from robustprop.verify.engine.backends.base import BackendName, SolverOutcome, group_by_box
from robustprop.verify.engine.backends.marabou import RELAXATION
from robustprop.verify.engine.backends.portfolio import racer_reason
from robustprop.verify.engine.backends.registry import get_backend
from robustprop.verify.engine.isolation import Failure, run_isolated
from robustprop.verify.engine.network import Network
from robustprop.verify.engine.replay import Replay, Replayer
from robustprop.verify.engine.screen import screen
from robustprop.verify.engine.verdict import Status

__all__ = [
    "DEFAULT_MARGINS",
    "STRATEGIES",
    "Decision",
    "QueryRecord",
    "decide",
    "solve_query",
]

log = logging.getLogger(__name__)

# ``plain``: the exact backend alone (the baseline); ``staged``: search, bounds, then the solver.
STRATEGIES = ("staged", "plain")

# Relative margins for re-solving after a spurious solver point: rhs += margin * (1 + |y|max).
DEFAULT_MARGINS = (1e-5, 1e-3)


@dataclass(frozen=True)
class QueryRecord:
    """One solver call: which input box, the margin used, and what came of it."""

    box: int
    margin: float
    status: Status
    reason: str
    time_s: float


@dataclass(frozen=True)
class Decision:
    """The verdict on a negation; ``replay`` holds the confirmed witness when ``VIOLATED``."""

    status: Status
    replay: Replay | None
    reason: str
    time_s: float
    queries: tuple[QueryRecord, ...]


def solve_query(
    backend: BackendName, network: Network, negation: Negation, timeout_s: float
) -> SolverOutcome:
    """One backend call (module level so that worker processes can run it)."""
    return get_backend(backend).solve(network, negation, timeout_s)


def decide(
    network: Network,
    negation: Negation,
    replayer: Replayer,
    *,
    backend: BackendName,
    timeout_s: float,
    isolate: bool = True,
    grace_s: float = 2.0,
    margins: tuple[float, ...] = DEFAULT_MARGINS,
) -> Decision:
    """Decide ``negation`` within about ``timeout_s`` seconds in total (see the module doc).

    ``isolate=False`` runs the solver in this process (no hard kill; for tests and debugging).
    """
    start = time.monotonic()
    groups = group_by_box(negation)
    ctx = _Context(network, replayer, timeout_s, isolate, grace_s, margins, start, len(groups))
    records: list[QueryRecord] = []
    unknown: list[str] = []
    for index, group in enumerate(groups):
        screened = screen(network, group, backend)
        for x in screened.candidates:
            replay = replayer.replay(x, group)
            if replay.confirmed:
                return Decision(
                    Status.VIOLATED,
                    replay,
                    "the sound output bounds imply every atom of a disjunct; a point of its "
                    "box confirmed by onnxruntime",
                    time.monotonic() - start,
                    tuple(records),
                )
            log.warning(
                "box %d: a point the bounds imply failed replay (%s)", index + 1, replay.note
            )
        if screened.negation is None:
            continue  # every disjunct refuted by the sound bounds: no solver needed
        if screened.out_of_range:
            unknown.append(f"box {index + 1}: {screened.out_of_range}")
            continue
        solver, base = screened.backend, screened.negation
        found = _solve_box(ctx, index, group, base, solver, records)
        # Marabou's points lie within its tolerance of the threshold and never replay: it
        # cannot tell this box apart. The MILP (tolerance 1e-9) referees, within its range.
        if (
            isinstance(found, _Boundary)
            and solver is BackendName.MARABOU
            and not screen(network, group, BackendName.MILP).out_of_range
        ):
            log.info("box %d: Marabou undecided at its tolerance; the MILP referees", index + 1)
            found = _solve_box(ctx, index, group, base, BackendName.MILP, records)
        if isinstance(found, Decision):
            return found
        if found is not None:
            unknown.append(f"box {index + 1}: {found}")
    elapsed = time.monotonic() - start
    if unknown:
        return Decision(Status.UNKNOWN, None, "; ".join(unknown), elapsed, tuple(records))
    if not records:
        reason = "the sound output bounds refute every disjunct"
        return Decision(Status.HOLDS, None, reason, elapsed, ())
    return Decision(Status.HOLDS, None, f"{backend.value}: unsat", elapsed, tuple(records))


@dataclass(frozen=True)
class _Context:
    """What every solver call of one :func:`decide` shares."""

    network: Network
    replayer: Replayer
    timeout_s: float
    isolate: bool
    grace_s: float
    margins: tuple[float, ...]
    start: float
    boxes: int


class _Boundary(str):
    """Why a box is undecided when every solver point failed replay (boundary points)."""


def _solve_box(
    ctx: _Context,
    index: int,
    group: Negation,
    base: Negation,
    solver: BackendName,
    records: list[QueryRecord],
) -> Decision | str | None:
    """One box with ``solver``: a ``VIOLATED`` decision, ``None`` (unsat) or why unknown (a
    :class:`_Boundary` when only points that fail replay were found). ``base`` is the screened
    query; points are replayed against ``group``, the box's part of the original negation."""
    # Marabou answers a relaxed query (see its module doc); its retries undo the relaxation
    extra = RELAXATION if solver in (BackendName.MARABOU, BackendName.PORTFOLIO) else 0.0
    attempts = (0.0, *ctx.margins)
    for attempt, margin in enumerate(attempts):
        remaining = ctx.timeout_s - (time.monotonic() - ctx.start)
        if remaining <= 0:
            return "not tried, time limit reached"
        budget = remaining / (ctx.boxes - index)
        query = base if margin == 0.0 else _shift_atoms(base, margin, ctx.replayer, extra)
        outcome = _run(solver, ctx.network, query, budget, ctx.isolate, ctx.grace_s)
        records.append(QueryRecord(index, margin, outcome.status, outcome.reason, outcome.time_s))
        if outcome.status is Status.HOLDS:
            if margin == 0.0:
                return None
            return _Boundary(
                f"the solver's point failed replay and the query with margin {margin:g} is "
                "unsat (only boundary points?)"
            )
        if outcome.status is Status.UNKNOWN:
            return outcome.reason
        assert outcome.x is not None
        replay = ctx.replayer.replay(outcome.x, group)
        if replay.confirmed:
            return Decision(
                Status.VIOLATED,
                replay,
                f"{outcome.reason}; witness confirmed by onnxruntime",
                time.monotonic() - ctx.start,
                tuple(records),
            )
        log.warning(
            "box %d: %s point failed replay (%s)%s",
            index + 1,
            solver.value,
            replay.note,
            "; retrying with a margin" if attempt + 1 < len(attempts) else "",
        )
        y_max = float(np.max(np.abs(replay.y32)))
        records[-1] = dataclasses.replace(
            records[-1],
            status=Status.UNKNOWN,
            reason=f"{outcome.reason}; witness failed replay (|y| max {y_max:.6g})",
        )
    return _Boundary(f"solver points failed replay ({replay.note})")


def _shift_atoms(group: Negation, margin: float, replayer: Replayer, extra: float) -> Negation:
    """The group with every atom's rhs raised by ``margin * (1 + scale) + extra``.

    ``scale`` is the magnitude of the atom's own terms at the box centre (a cheap, stable
    proxy for the size of the outputs involved).
    """
    d0 = group.disjuncts[0]
    y = replayer.evaluate64((d0.lower + d0.upper) / 2.0)[0]
    disjuncts = []
    for d in group.disjuncts:
        atoms = tuple(
            Atom(
                terms=a.terms,
                rhs=a.rhs
                + margin * (1.0 + sum(abs(c * y[j]) for j, c in a.terms) + abs(a.rhs))
                + extra,
                dist_coeff=a.dist_coeff,
            )
            for a in d.atoms
        )
        disjuncts.append(Disjunct(d.lower, d.upper, atoms))
    return dataclasses.replace(group, disjuncts=tuple(disjuncts))


def _run(
    backend: BackendName,
    network: Network,
    negation: Negation,
    budget: float,
    isolate: bool,
    grace_s: float,
) -> SolverOutcome:
    if not isolate or backend is BackendName.PORTFOLIO:  # the portfolio isolates its racers
        return solve_query(backend, network, negation, budget)
    result = run_isolated(
        solve_query, (backend, network, negation, budget), budget, grace_s=grace_s
    )
    if isinstance(result, Failure):
        return SolverOutcome(
            Status.UNKNOWN, None, racer_reason(backend.value, result.reason), result.time_s
        )
    return result
