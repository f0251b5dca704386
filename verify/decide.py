"""Decide a :class:`Negation` with an exact backend, trusting only replayed witnesses.

:func:`decide` splits the negation by input box, runs one isolated solver query per box (each
in a worker process with a hard time limit, see :mod:`verify.isolation`) and replays every
solver ``sat`` point through onnxruntime (:mod:`verify.replay`):

- ``sat`` as soon as one query gives a confirmed witness;
- ``unsat`` only if every query is ``unsat``;
- ``unknown`` otherwise, with the reasons.

A solver point that fails replay (typically a point on the boundary of the unsafe set, accepted
by the solver's tolerances) is logged and the query is retried with the atoms shifted inwards by
a small margin; if no retry gives a confirmed point, the query counts as ``unknown``.

:func:`check_vnnlib` is the whole ``verify vnnlib`` instance: load, parse, decide.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from properties.errors import InputError
from properties.spec import Atom, Disjunct, FloatArray, Negation
from verify.backends.base import BackendName, SolverOutcome, Status, get_backend, group_by_box
from verify.falsify import FalsifyConfig, falsify
from verify.isolation import Failure, run_isolated
from verify.network import Network, check_against_onnxruntime, network_from_bytes
from verify.replay import Replay, Replayer
from verify.vnnlib import read_vnnlib

__all__ = [
    "DEFAULT_MARGINS",
    "STRATEGIES",
    "Decision",
    "QueryRecord",
    "VnnlibResult",
    "check_vnnlib",
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
    """The verdict on a negation; ``replay`` holds the confirmed witness when ``sat``."""

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
    records: list[QueryRecord] = []
    unknown: list[str] = []
    for index, group in enumerate(groups):
        attempts = (0.0, *margins)
        for attempt, margin in enumerate(attempts):
            remaining = timeout_s - (time.monotonic() - start)
            if remaining <= 0:
                unknown.append(f"box {index + 1}: not tried, time limit reached")
                break
            budget = remaining / (len(groups) - index)
            query = group if margin == 0.0 else _shift_atoms(group, margin, replayer)
            outcome = _run(backend, network, query, budget, isolate, grace_s)
            records.append(
                QueryRecord(index, margin, outcome.status, outcome.reason, outcome.time_s)
            )
            if outcome.status == "unsat":
                if margin == 0.0:
                    break
                unknown.append(
                    f"box {index + 1}: the solver's point failed replay and the query with "
                    f"margin {margin:g} is unsat (only boundary points?)"
                )
                break
            if outcome.status == "unknown":
                unknown.append(f"box {index + 1}: {outcome.reason}")
                break
            assert outcome.x is not None
            replay = replayer.replay(outcome.x, group)
            if replay.confirmed:
                return Decision(
                    "sat",
                    replay,
                    f"{outcome.reason}; witness confirmed by onnxruntime",
                    time.monotonic() - start,
                    tuple(records),
                )
            log.warning(
                "box %d: %s point failed replay (%s)%s",
                index + 1,
                backend.value,
                replay.note,
                "; retrying with a margin" if attempt + 1 < len(attempts) else "",
            )
            y_max = float(np.max(np.abs(replay.y32)))
            records[-1] = dataclasses.replace(
                records[-1],
                status="unknown",
                reason=f"{outcome.reason}; witness failed replay (|y| max {y_max:.6g})",
            )
            if attempt + 1 == len(attempts):
                unknown.append(f"box {index + 1}: solver points failed replay ({replay.note})")
    elapsed = time.monotonic() - start
    if unknown:
        return Decision("unknown", None, "; ".join(unknown), elapsed, tuple(records))
    return Decision("unsat", None, f"{backend.value}: unsat", elapsed, tuple(records))


def _resolve(backend: BackendName | str, network: Network, plain: bool) -> BackendName:
    from verify.point_query import choose_backend

    return choose_backend(str(getattr(backend, "value", backend)), network, plain=plain)


def _shift_atoms(group: Negation, margin: float, replayer: Replayer) -> Negation:
    """The group with every atom's rhs raised by ``margin * (1 + scale)``.

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
                rhs=a.rhs + margin * (1.0 + sum(abs(c * y[j]) for j, c in a.terms) + abs(a.rhs)),
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
        return SolverOutcome("unknown", None, f"{backend.value}: {result.reason}", result.time_s)
    return result


# --------------------------------------------------------------------------------------------
# one VNN-LIB instance


@dataclass(frozen=True)
class VnnlibResult:
    """``verify vnnlib``'s answer. For ``sat``: the confirmed input ``x`` and onnxruntime's
    float32 output ``y`` at it."""

    status: Status
    x: FloatArray | None
    y: FloatArray | None
    reason: str
    time_s: float
    decision: Decision | None


def check_vnnlib(
    net_path: str | Path,
    spec_path: str | Path,
    *,
    backend: BackendName | str = BackendName.MARABOU,
    timeout_s: float = 60.0,
    isolate: bool = True,
    attack: bool = True,
    strategy: str = "staged",
) -> VnnlibResult:
    """Load the network, parse the property, check the IR on the property's box, decide.

    ``strategy="staged"``: with ``attack``, a short PGD search on the IR (:mod:`verify.falsify`,
    at most 5% of the budget, 2 s) runs first, its points counting only after onnxruntime
    replay like solver points; then bound propagation (:mod:`verify.bounds`) proves the
    property or removes the disjuncts it proves empty and seeds the solver with CROWN bounds.
    ``strategy="plain"``: the backend alone (no search, no bounds), the baseline.
    ``backend="auto"``: Marabou for the plain strategy; else Z3 for tiny networks and the
    Marabou/MILP portfolio beyond.
    """
    if strategy not in STRATEGIES:
        raise InputError(f"unknown strategy {strategy!r} (choose from {', '.join(STRATEGIES)})")
    start = time.monotonic()
    path = Path(net_path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise InputError(f"cannot read ONNX model {path}: {err.strerror or err}") from err
    network = network_from_bytes(data, source=str(path), check_points=0)
    prop = read_vnnlib(spec_path, network.n, network.m)
    if prop.negation is None:
        return VnnlibResult(
            "unsat",
            None,
            None,
            "every input box of the property is empty",
            time.monotonic() - start,
            None,
        )
    lower = np.min([d.lower for d in prop.negation.disjuncts], axis=0)
    upper = np.max([d.upper for d in prop.negation.disjuncts], axis=0)
    check_against_onnxruntime(network, data, lower, upper)
    replayer = Replayer(data, source=str(path))
    plain = strategy == "plain"
    solver = _resolve(backend, network, plain)
    if attack and not plain:
        config = FalsifyConfig(time_s=min(2.0, 0.05 * timeout_s))
        for x in falsify(network, prop.negation, config):
            replay = replayer.replay(x, prop.negation)
            if replay.confirmed:
                return VnnlibResult(
                    "sat",
                    replay.x,
                    replay.y32,
                    "found by the PGD search on the IR; witness confirmed by onnxruntime",
                    time.monotonic() - start,
                    None,
                )
            log.info("PGD candidate failed replay: %s", replay.note)
    negation = prop.negation
    if not plain:
        from verify.bounds import bound_negations, compute_seeds, seeded

        bound = compute_seeds(network, bound_negations(network, [negation]))[0]
        if bound.holds or bound.negation is None:
            return VnnlibResult(
                "unsat",
                None,
                None,
                f"proved by bound propagation ({bound.reason})",
                time.monotonic() - start,
                None,
            )
        negation = bound.negation
        network = seeded(network, bound.seed)
    remaining = timeout_s - (time.monotonic() - start)
    decision = decide(
        network, negation, replayer, backend=solver, timeout_s=remaining, isolate=isolate
    )
    elapsed = time.monotonic() - start
    if decision.status == "sat":
        assert decision.replay is not None
        return VnnlibResult(
            "sat", decision.replay.x, decision.replay.y32, decision.reason, elapsed, decision
        )
    return VnnlibResult(decision.status, None, None, decision.reason, elapsed, decision)
