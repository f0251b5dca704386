"""Z3 backend: exact rational linear arithmetic, ReLU and Clip as ``If``.

Every float64 weight is converted exactly (``fractions.Fraction``), so Z3 decides the float64 IR
as a real-valued network with no rounding. Meant for small networks and for cross-checking
Marabou (a 16-16-10 network decides in seconds, 64-32-10 does not).

Encoding: one Real per input, bounded by the hull of the disjuncts' boxes (intersected with the
distance ball for LR); one Real per affine output, ``z == sum W_ij h_j + b_i``; ReLU
``If(z >= 0, z, 0)`` and Clip ``If(z <= lo, lo, If(z >= hi, hi, z))``, both skipped where the
interval bounds fix them; the interval bounds themselves are added as (redundant, sound) hints.
The negation is one ``Or`` over its disjuncts, each the conjunction of its own box and atoms.
The module is named ``z3_backend`` so that it does not shadow the ``z3`` package.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from robustprop.properties.spec import Negation
from robustprop.verify.engine.backends.base import (
    BackendName,
    SolverOutcome,
    check_query,
    import_solver,
    query_box,
)
from robustprop.verify.engine.network import Affine, Network, Relu
from robustprop.verify.engine.verdict import Status

__all__ = ["Z3Backend", "build_solver"]

log = logging.getLogger(__name__)


def _q(z3: Any, value: float) -> Any:
    return z3.RealVal(Fraction(float(value)))


def build_solver(z3: Any, network: Network, negation: Negation) -> tuple[Any, list[Any]] | None:
    """A Z3 solver holding the query, and the input variables; ``None`` if trivially empty."""
    lower, upper = query_box(negation)
    if np.any(lower > upper):
        return None
    s = z3.Solver()
    xs = [z3.Real(f"x{i}") for i in range(network.n)]
    for xi, lo, hi in zip(xs, lower, upper, strict=True):
        s.add(xi >= _q(z3, lo), xi <= _q(z3, hi))
    h: list[Any] = list(xs)
    h_lo, h_hi = lower, upper
    for k, (layer, (lo, hi)) in enumerate(
        zip(network.layers, network.interval_bounds(lower, upper), strict=True)
    ):
        if isinstance(layer, Affine):
            z = []
            for i in range(layer.out_size):
                row = layer.W[i]
                expr = z3.Sum(
                    [_q(z3, row[j]) * h[j] for j in np.flatnonzero(row)] + [_q(z3, layer.b[i])]
                )
                v = z3.Real(f"z{k}_{i}")
                s.add(v == expr, v >= _q(z3, lo[i]), v <= _q(z3, hi[i]))
                z.append(v)
            h = z
        else:
            out = []
            c_lo, c_hi = (0.0, np.inf) if isinstance(layer, Relu) else (layer.lo, layer.hi)
            for t, a, b in zip(h, h_lo, h_hi, strict=True):
                if a >= c_lo and b <= c_hi:
                    out.append(t)
                elif b <= c_lo:
                    out.append(_q(z3, c_lo))
                elif a >= c_hi:
                    out.append(_q(z3, c_hi))
                else:
                    expr = t
                    if np.isfinite(c_hi) and b > c_hi:
                        expr = z3.If(t >= _q(z3, c_hi), _q(z3, c_hi), expr)
                    if np.isfinite(c_lo) and a < c_lo:
                        expr = z3.If(t <= _q(z3, c_lo), _q(z3, c_lo), expr)
                    out.append(expr)
            h = out
        h_lo, h_hi = lo, hi
    ys = h

    d = None
    if negation.distance is not None:
        d = z3.Real("d")
        s.add(d >= 0, d <= _q(z3, negation.distance.eps))
        for xi, ci in zip(xs, negation.distance.center, strict=True):
            s.add(xi - _q(z3, ci) <= d, _q(z3, ci) - xi <= d)

    alternatives = []
    for disjunct in negation.disjuncts:
        parts = []
        for i, (lo, hi) in enumerate(zip(disjunct.lower, disjunct.upper, strict=True)):
            if lo > lower[i]:
                parts.append(xs[i] >= _q(z3, lo))
            if hi < upper[i]:
                parts.append(xs[i] <= _q(z3, hi))
        for atom in disjunct.atoms:
            lhs = [_q(z3, c) * ys[j] for j, c in atom.terms if c != 0.0]
            if atom.dist_coeff != 0.0:
                if d is None:
                    raise ValueError("an atom uses the distance d but the negation has no Distance")
                lhs.append(_q(z3, atom.dist_coeff) * d)
            parts.append(z3.Sum([*lhs, z3.RealVal(0)]) >= _q(z3, atom.rhs))
        alternatives.append(z3.And(parts) if parts else z3.BoolVal(True))
    s.add(z3.Or(alternatives))
    return s, xs


@dataclass(frozen=True)
class Z3Backend:
    """Z3's default solver on the exact rational encoding."""

    @property
    def name(self) -> BackendName:
        return BackendName.Z3

    def solve(self, network: Network, negation: Negation, timeout_s: float) -> SolverOutcome:
        check_query(network, negation)
        z3 = import_solver("z3", "z3-solver")
        start = time.monotonic()
        built = build_solver(z3, network, negation)
        if built is None:
            return SolverOutcome(Status.HOLDS, None, "empty input box", time.monotonic() - start)
        s, xs = built
        remaining_ms = max(1, int(1000 * (timeout_s - (time.monotonic() - start))))
        s.set("timeout", remaining_ms)
        result = s.check()
        elapsed = time.monotonic() - start
        if result == z3.sat:
            model = s.model()
            x = np.array(
                [float(model.eval(xi, model_completion=True).as_fraction()) for xi in xs],
                dtype=np.float64,
            )
            return SolverOutcome(Status.VIOLATED, x, "z3: sat", elapsed)
        if result == z3.unsat:
            return SolverOutcome(Status.HOLDS, None, "z3: unsat", elapsed)
        return SolverOutcome(
            Status.UNKNOWN, None, f"z3: {s.reason_unknown() or 'unknown'}", elapsed
        )
