"""Marabou backend: queries built directly from the IR with ``maraboupy.MarabouCore``.

maraboupy's own ONNX parser is not used (it has no Clip and mishandles broadcast Sub).

Encoding of one query (all disjuncts share one input box):

- inputs: one variable each, bounded by the box (intersected with the distance ball for LR);
- affine layers: one variable per output, ``z_i - sum_j W_ij h_j = b_i``;
- ReLU: ``addReluConstraint`` (skipped where the interval bounds fix its phase);
- Clip(lo, hi): ``c = lo + relu(z - lo) - relu(z - hi)`` (one ReLU where one side cannot clip);
- LR distance: ``d`` in ``[0, eps]`` with ``x_i - d <= center_i`` and ``-x_i - d <= -center_i``;
- atoms ``sum c_j y_j + c_d d >= rhs`` as GE equations, *relaxed* by :data:`RELAXATION`
  (``>= rhs − RELAXATION``); several conjunctions become one disjunction constraint.

Why the relaxation: Marabou's floating-point simplex answers "unsat" when the only points lie
within about 1e-6 (absolute) of an atom's threshold, even at unit scale
(``benchmarks/results/numeric_range.txt``: a margin of 1e-6 is missed, 1e-5 is found). Asked
the weaker question, its "unsat" means no point comes within ``RELAXATION`` of the threshold,
which is sound for the original query; its points are replayed against the original atoms, and
:func:`robustprop.verify.engine.decide.decide` retries with shifted atoms when they fail.

Every variable carries interval bounds (with outward slack) from
:meth:`robustprop.verify.engine.network.Network.interval_bounds`. A negation whose disjuncts have
different boxes is
solved as one query per box, in order, stopping at the first point (``Status.VIOLATED``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robustprop.properties.spec import Atom, FloatArray, Negation
from robustprop.verify.engine.backends.base import (
    BackendName,
    SolverOutcome,
    ceil_seconds,
    check_query,
    group_by_box,
    import_solver,
    query_box,
)
from robustprop.verify.engine.network import Affine, Network, Relu
from robustprop.verify.engine.verdict import Status

__all__ = ["RELAXATION", "MarabouBackend", "MarabouQuery", "encode"]

log = logging.getLogger(__name__)

_EQ, _LE, _GE = "eq", "le", "ge"

#: How much each atom is weakened before Marabou sees it (10x the smallest margin it resolved
#: in the calibration; see the module doc).
RELAXATION = 1e-4


@dataclass
class MarabouQuery:
    """A solver-independent record of one Marabou query (built first, then handed over).

    ``equations`` entries are ``(addends, scalar, kind)`` with addends ``[(coeff, var)]``.
    """

    lower: list[float] = field(default_factory=list)
    upper: list[float] = field(default_factory=list)
    equations: list[tuple[list[tuple[float, int]], float, str]] = field(default_factory=list)
    relus: list[tuple[int, int]] = field(default_factory=list)
    disjunctions: list[list[list[tuple[list[tuple[float, int]], float, str]]]] = field(
        default_factory=list
    )
    inputs: list[int] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)

    def var(self, lo: float, hi: float) -> int:
        self.lower.append(float(lo))
        self.upper.append(float(hi))
        return len(self.lower) - 1

    @property
    def n_vars(self) -> int:
        return len(self.lower)


@dataclass(frozen=True)
class _Const:
    """A network value fixed by the bounds (e.g. a ReLU that is always off).

    Kept out of the query: Marabou 2.0 fails ("Unknown error") on variables fixed by bounds.
    """

    value: float


_Term = int | _Const
_Addends = list[tuple[float, int]]


def _linear(terms: list[tuple[float, _Term]]) -> tuple[_Addends, float]:
    """``sum c * t`` as addends over variables plus a constant."""
    addends: _Addends = []
    constant = 0.0
    for coeff, term in terms:
        if coeff == 0.0:
            continue
        if isinstance(term, _Const):
            constant += coeff * term.value
        else:
            addends.append((coeff, term))
    return addends, constant


def encode(
    network: Network, negation: Negation, relaxation: float = RELAXATION
) -> MarabouQuery | None:
    """Encode a negation whose disjuncts share one box; ``None`` if it is trivially empty.

    Each atom's right-hand side is lowered by ``relaxation`` (see the module doc)."""
    lower, upper = query_box(negation)
    if np.any(lower > upper):
        return None
    q = MarabouQuery()
    q.inputs = [q.var(lo, hi) for lo, hi in zip(lower, upper, strict=True)]
    h: list[_Term] = list(q.inputs)
    h_lo, h_hi = lower, upper
    for layer, (lo, hi) in zip(network.layers, network.interval_bounds(lower, upper), strict=True):
        if isinstance(layer, Affine):
            z: list[_Term] = []
            for i in range(layer.out_size):
                row = layer.W[i]
                addends, constant = _linear([(-float(row[j]), h[j]) for j in np.flatnonzero(row)])
                v = q.var(lo[i], hi[i])
                q.equations.append(([(1.0, v), *addends], float(layer.b[i]) + constant, _EQ))
                z.append(v)
            h = z
        elif isinstance(layer, Relu):
            h = [_relu(q, t, float(a), float(b)) for t, a, b in zip(h, h_lo, h_hi, strict=True)]
        else:
            h = [
                _clip(q, t, float(a), float(b), layer.lo, layer.hi)
                for t, a, b in zip(h, h_lo, h_hi, strict=True)
            ]
        h_lo, h_hi = lo, hi
    q.outputs = [t for t in h if isinstance(t, int)]

    d: int | None = None
    if negation.distance is not None:
        center, eps = negation.distance.center, float(negation.distance.eps)
        d = q.var(0.0, eps)
        for xi, ci in zip(q.inputs, center, strict=True):
            q.equations.append(([(1.0, xi), (-1.0, d)], float(ci), _LE))
            q.equations.append(([(-1.0, xi), (-1.0, d)], -float(ci), _LE))

    conjunctions: list[list[tuple[_Addends, float, str]]] = []
    for disjunct in negation.disjuncts:
        eqs = [_atom(atom, h, d, relaxation) for atom in disjunct.atoms]
        if any(eq is False for eq in eqs):
            continue  # an atom that never holds: this alternative is empty
        conj = [eq for eq in eqs if not isinstance(eq, bool) and eq is not None]
        if not conj:
            return q  # an alternative without output condition: the box alone is the negation
        conjunctions.append(conj)
    if not conjunctions:
        return None
    if len(conjunctions) == 1:
        q.equations.extend(conjunctions[0])
    else:
        q.disjunctions.append(conjunctions)
    return q


def _atom(
    atom: Atom, outputs: list[_Term], d: int | None, relaxation: float
) -> tuple[_Addends, float, str] | bool | None:
    """The atom as a GE equation; ``None`` if it always holds, ``False`` if it never does."""
    terms: list[tuple[float, _Term]] = [(float(c), outputs[j]) for j, c in atom.terms]
    if atom.dist_coeff != 0.0:
        if d is None:
            raise ValueError("an atom uses the distance d but the negation has no Distance")
        terms.append((float(atom.dist_coeff), d))
    addends, constant = _linear(terms)
    rhs = float(atom.rhs) - constant
    if not addends:
        return None if rhs <= 0.0 else False
    return addends, rhs - relaxation, _GE


def _relu(q: MarabouQuery, z: _Term, lo: float, hi: float) -> _Term:
    if isinstance(z, _Const):
        return _Const(max(z.value, 0.0))
    if lo >= 0.0:
        return z
    if hi <= 0.0:
        return _Const(0.0)
    r = q.var(0.0, hi)
    q.relus.append((z, r))
    return r


def _shifted_relu(q: MarabouQuery, z: int, lo: float, hi: float, shift: float) -> _Term:
    """``relu(z - shift)`` for ``z`` in ``[lo, hi]``."""
    t = q.var(lo - shift, hi - shift)
    q.equations.append(([(1.0, t), (-1.0, z)], -shift, _EQ))  # t = z - shift
    return _relu(q, t, lo - shift, hi - shift)


def _clip(q: MarabouQuery, z: _Term, lo: float, hi: float, c_lo: float, c_hi: float) -> _Term:
    """``min(max(z, c_lo), c_hi)`` for ``z`` in ``[lo, hi]``, exactly."""
    if isinstance(z, _Const):
        return _Const(min(max(z.value, c_lo), c_hi))
    if lo >= c_lo and hi <= c_hi:
        return z
    if hi <= c_lo:
        return _Const(c_lo)
    if lo >= c_hi:
        return _Const(c_hi)
    # out = [c_lo + relu(z - c_lo) if the floor can act, else z] - [relu(z - c_hi) if the
    # ceiling can act]
    terms: list[tuple[float, _Term]] = []
    constant = 0.0
    if lo < c_lo:
        terms.append((1.0, _shifted_relu(q, z, lo, hi, c_lo)))
        constant = c_lo
    else:
        terms.append((1.0, z))
    if hi > c_hi:
        terms.append((-1.0, _shifted_relu(q, z, lo, hi, c_hi)))
    addends, extra = _linear(terms)
    out = q.var(max(lo, c_lo), min(hi, c_hi))
    q.equations.append(([(1.0, out)] + [(-c, v) for c, v in addends], constant + extra, _EQ))
    return out


@dataclass(frozen=True)
class MarabouBackend:
    """maraboupy 2.0 with its default search options, one worker, quiet; atoms relaxed by
    ``relaxation`` (:data:`RELAXATION`; 0 asks Marabou the query as it is)."""

    verbosity: int = 0
    relaxation: float = RELAXATION

    @property
    def name(self) -> BackendName:
        return BackendName.MARABOU

    def solve(self, network: Network, negation: Negation, timeout_s: float) -> SolverOutcome:
        check_query(network, negation)
        core = import_solver("maraboupy.MarabouCore", "maraboupy")
        start = time.monotonic()
        reasons: list[str] = []
        for group in group_by_box(negation):
            remaining = timeout_s - (time.monotonic() - start)
            if remaining <= 0:
                reasons.append("time limit reached before all input boxes were tried")
                break
            status, x, reason = self._solve_group(core, network, group, remaining)
            if status is Status.VIOLATED:
                return SolverOutcome(Status.VIOLATED, x, reason, time.monotonic() - start)
            if status is Status.UNKNOWN:
                reasons.append(reason)
        elapsed = time.monotonic() - start
        if reasons:
            return SolverOutcome(Status.UNKNOWN, None, "; ".join(reasons), elapsed)
        return SolverOutcome(Status.HOLDS, None, "marabou: unsat", elapsed)

    def _solve_group(
        self, core: Any, network: Network, group: Negation, timeout_s: float
    ) -> tuple[Status, FloatArray | None, str]:
        query = encode(network, group, self.relaxation)
        if query is None:
            return Status.HOLDS, None, "empty input box"
        ipq = _input_query(core, query)
        options = core.Options()
        options._timeoutInSeconds = ceil_seconds(timeout_s)
        options._verbosity = self.verbosity
        options._numWorkers = 1
        options._numSimulations = 10  # maraboupy's createOptions default
        options._milpSolverTimeout = 0.0
        options._lpSolver = ""
        log.debug(
            "marabou query: %d variables, %d equations, %d relus, %d disjunctions",
            query.n_vars,
            len(query.equations),
            len(query.relus),
            len(query.disjunctions),
        )
        with _stdout_to_devnull(), _in_scratch_directory():
            exit_code, values, _stats = core.solve(ipq, options, "")
        code = str(exit_code)
        if code == "sat":
            x = np.array([values[v] for v in query.inputs], dtype=np.float64)
            return Status.VIOLATED, x, "marabou: sat"
        if code == "unsat":
            return Status.HOLDS, None, "marabou: unsat"
        return Status.UNKNOWN, None, f"marabou: {code or 'no answer'}"


@contextlib.contextmanager
def _stdout_to_devnull() -> Iterator[None]:
    """Silence Marabou's C++ prints on file descriptor 1 and restore it afterwards.

    (Marabou's own ``redirect`` argument re-opens stdout for the rest of the process.)
    """
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


@contextlib.contextmanager
def _in_scratch_directory() -> Iterator[None]:
    """Run in a temporary directory: on an internal error Marabou writes
    ``failedMarabouQuery.ipq`` into the working directory, which is not ours to write to."""
    saved = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="robustprop-marabou-") as scratch:
        os.chdir(scratch)
        try:
            yield
        finally:
            os.chdir(saved)


def _input_query(core: Any, query: MarabouQuery) -> Any:
    ipq = core.InputQuery()
    ipq.setNumberOfVariables(query.n_vars)
    kinds = {_EQ: core.Equation.EQ, _LE: core.Equation.LE, _GE: core.Equation.GE}

    def equation(addends: list[tuple[float, int]], scalar: float, kind: str) -> Any:
        eq = core.Equation(kinds[kind])
        for coeff, var in addends:
            eq.addAddend(coeff, var)
        eq.setScalar(scalar)
        return eq

    for i, v in enumerate(query.inputs):
        ipq.markInputVariable(v, i)
    for i, v in enumerate(query.outputs):
        ipq.markOutputVariable(v, i)
    for addends, scalar, kind in query.equations:
        ipq.addEquation(equation(addends, scalar, kind))
    for b, f in query.relus:
        core.addReluConstraint(ipq, b, f)
    for disjunction in query.disjunctions:
        core.addDisjunctionConstraint(ipq, [[equation(*e) for e in conj] for conj in disjunction])
    for v, (lo, hi) in enumerate(zip(query.lower, query.upper, strict=True)):
        ipq.setLowerBound(v, lo)
        ipq.setUpperBound(v, hi)
    return ipq
