"""Deciding SCR (``softmax(f(x))_c ≥ η`` on a region) with linear queries only.

Softmax is not piecewise linear, so no solver decides SCR directly (Marabou 2.0's softmax
constraint answers UNKNOWN). With ``g_j = y_j − y_c`` and ``T = 1/η − 1`` the property fails at
``x`` iff ``S(x) = Σ_{j≠c} exp(g_j(x)) > T``. We decide it by branch and refine in g-space:

1. ``g`` lies in a box ``[l, u]`` (interval bounds of the outputs). If ``Σ exp(u_j) ≤ T`` the
   property holds (fast path).
2. If some ``g_j > log T`` is reachable, that point alone violates the property: one linear
   query ``g_j ≥ log T + τ`` per class; ``HOLDS`` (unsat) for all lowers every ``u_j`` to
   ``log T + τ``.
3. A *cell* is a box in g-space. On a cell ``exp`` lies below its chord, so
   ``S ≤ Σ_j chord_j(g_j)``, a linear function of ``y``. The linear query
   "``g`` in the cell and ``Σ chord_j(g_j) ≥ T'``" (``T' = T(1 − 1e-9)``, a safety factor
   for rounding) is unsat ⇒ the property holds on that cell. Sat gives a point ``x*``: if
   ``S(x*) > T`` after replay it is a counterexample; otherwise the point is spurious and
   the cell is split at ``g(x*)`` along the class with the largest chord gap.
4. The property holds when every cell is closed. The method is sound, and complete up to
   a stated tolerance: a spurious point with ``S(x*) ≥ T(1 − tol)`` sits on the boundary, where
   chords cannot separate; then the cell is asked for a *clear* violation
   (``Σ chord ≥ T_τ(1 + deep)``): sat and confirmed → violated; unsat → the cell holds up to
   the relative tolerance ``deep`` and the verdict is ``unknown`` if nothing else decides it.
   Running out of refinements or time also gives ``unknown``. A witness must break the property by
   more than τ (``p_c < η − τ``, see :class:`SoftmaxBelow`), so points with ``p_c`` in
   ``[η − τ, η)`` are reported as within tolerance, never as violated.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from robustprop.properties.spec import Atom, Disjunct, Negation, SoftmaxBelow
from robustprop.verify.engine.verdict import Status

__all__ = [
    "Confirm",
    "Evaluate",
    "ScrOutcome",
    "ScrSettings",
    "Solve",
    "box_project",
    "decide_scr",
    "exp_chord",
]

FloatArray = npt.NDArray[np.float64]

# Relative safety factor on the threshold of the chord query, covering float64 rounding in
# the chord coefficients; it only makes "holds" harder to prove.
_SAFETY = 1e-9


@dataclass(frozen=True)
class ScrSettings:
    """Limits of the refinement loop."""

    max_cells: int = 2000  # queries on cells, in all
    tol: float = 1e-6  # a spurious point this close to T (relative) is a boundary point
    deep: float = 1e-4  # then ask for S ≥ T_τ(1 + deep): a clear violation, or none
    tau: float = 1e-6  # margin of the "g_j ≥ log T + τ" queries


@dataclass(frozen=True)
class ScrOutcome:
    """The answer on the whole region; ``x`` a candidate for ``Status.VIOLATED``."""

    status: Status
    x: FloatArray | None
    queries: int
    refinements: int
    reason: str


Solve = Callable[[Negation, float], tuple[Status, FloatArray | None, str]]
"""``solve(negation, timeout_s) -> (status, x or None, reason)`` for a linear negation:
``Status.VIOLATED`` with a candidate point (the solver's "sat"), ``Status.HOLDS`` (empty,
"unsat") or ``Status.UNKNOWN``."""

Confirm = Callable[[FloatArray, Negation], FloatArray | None]
"""``confirm(x, negation) -> y`` when ``x`` is a replay-confirmed witness of ``negation``."""

Evaluate = Callable[[FloatArray], FloatArray]
"""``evaluate(x) -> y``: the network's outputs at one input (float64)."""


def exp_chord(a: float, b: float) -> tuple[float, float]:
    """``(slope, intercept)`` of a line ``≥ exp`` on ``[a, b]`` (the chord; exact at the ends)."""
    ea, eb = math.exp(a), math.exp(b)
    if b - a <= 1e-12:
        return 0.0, eb
    slope = (eb - ea) / (b - a)
    return slope, ea - slope * a


def decide_scr(
    negation: Negation,
    y_lower: FloatArray,
    y_upper: FloatArray,
    solve: Solve,
    confirm: Confirm,
    evaluate: Evaluate,
    deadline: float,
    settings: ScrSettings = ScrSettings(),
    g_bounds: tuple[FloatArray, FloatArray] | None = None,
) -> ScrOutcome:
    """Decide an SCR negation (``negation.softmax`` set) on its single input box.

    ``y_lower``/``y_upper`` are sound bounds of the outputs over the box; ``deadline`` is a
    ``time.monotonic()`` value after which the answer is ``UNKNOWN``. ``g_bounds`` (optional,
    e.g. from :mod:`robustprop.verify.engine.bounds`) are sound bounds of the margins ``y_j − y_c``
    (``j ≠ c``,
    in class order), intersected with those derived from the output bounds.
    """
    soft = negation.softmax
    if soft is None or len(negation.disjuncts) != 1:
        raise ValueError("decide_scr takes an SCR negation with one input box")
    box = negation.disjuncts[0]
    c = soft.label
    others = [j for j in range(y_lower.size) if j != c]
    log_t = math.log(soft.threshold)
    lo = np.array([y_lower[j] - y_upper[c] for j in others])
    hi = np.array([y_upper[j] - y_lower[c] for j in others])
    if g_bounds is not None:
        lo = np.maximum(lo, g_bounds[0])
        hi = np.minimum(hi, g_bounds[1])
    queries = 0

    # 1. Fast path: the bounds alone prove it.
    if _log_sum_exp(hi) <= log_t + math.log1p(-_SAFETY):
        return ScrOutcome(Status.HOLDS, None, 0, 0, "interval bounds")

    # 2. A single class beating log T is a counterexample on its own (with room to spare for
    # the witness margin: the replay asks for p_c < η − τ).
    cut = math.log(soft.threshold_with_margin(negation.tau)) + settings.tau
    for k, j in enumerate(others):
        if hi[k] <= cut:
            continue
        atom = Atom(terms=((j, 1.0), (c, -1.0)), rhs=cut)
        query = _linear(negation, box, (atom,), f"g_{j} >= log T + tau")
        status, x, reason = solve(query, _left(deadline))
        queries += 1
        if status is Status.VIOLATED and x is not None:
            if confirm(x, _as_softmax(negation, box)) is not None:
                return ScrOutcome(Status.VIOLATED, x, queries, 0, f"g_{j} beyond log T")
            return ScrOutcome(Status.UNKNOWN, None, queries, 0, "unconfirmed solver point")
        if status is not Status.HOLDS:
            return ScrOutcome(Status.UNKNOWN, None, queries, 0, reason or "solver undecided")
        hi[k] = cut
    lo = np.minimum(lo, hi)

    # 3. Branch and refine over cells in g-space.
    cells: list[tuple[FloatArray, FloatArray]] = [(lo, hi)]
    refinements = 0
    near_boundary = 0
    t_safe = soft.threshold * (1.0 - _SAFETY)
    t_deep = soft.threshold_with_margin(negation.tau) * (1.0 + settings.deep)
    while cells:
        if time.monotonic() >= deadline:
            return ScrOutcome(
                Status.UNKNOWN, None, queries, refinements, "timeout during refinement"
            )
        if queries >= settings.max_cells:
            return ScrOutcome(
                Status.UNKNOWN, None, queries, refinements, "refinement limit reached"
            )
        a, b = cells.pop()
        if _log_sum_exp(b) <= math.log(t_safe):
            continue  # this cell cannot reach the threshold
        status, x, reason = solve(
            _cell_query(negation, box, others, c, a, b, t_safe), _left(deadline)
        )
        queries += 1
        if status is Status.HOLDS:
            continue
        if status is not Status.VIOLATED or x is None:
            return ScrOutcome(
                Status.UNKNOWN, None, queries, refinements, reason or "solver undecided"
            )
        if confirm(x, _as_softmax(negation, box)) is not None:
            return ScrOutcome(Status.VIOLATED, x, queries, refinements, "chord refinement")
        g_star = _g(evaluate(box_project(x, box)), others, c)
        if _log_sum_exp(g_star) >= log_t + math.log1p(-settings.tol):
            # The relaxation is tight at a boundary point: ask for a clear violation instead.
            status, x, reason = solve(
                _cell_query(negation, box, others, c, a, b, t_deep), _left(deadline)
            )
            queries += 1
            if status is Status.HOLDS:
                near_boundary += 1  # only violations within the tolerance can remain here
                continue
            if status is not Status.VIOLATED or x is None:
                return ScrOutcome(Status.UNKNOWN, None, queries, refinements, reason or "undecided")
            if confirm(x, _as_softmax(negation, box)) is not None:
                return ScrOutcome(Status.VIOLATED, x, queries, refinements, "chord refinement")
            g_star = _g(evaluate(box_project(x, box)), others, c)
        split = _split_dim(a, b, g_star)
        if split is None:
            return ScrOutcome(Status.UNKNOWN, None, queries, refinements, "cell cannot be split")
        k, at = split
        left_b, right_a = b.copy(), a.copy()
        left_b[k], right_a[k] = at, at
        cells.append((a, left_b))
        cells.append((right_a, b))
        refinements += 1
    if near_boundary:
        return ScrOutcome(
            Status.UNKNOWN,
            None,
            queries,
            refinements,
            f"no violation beyond relative tolerance {settings.deep:g} of 1/eta - 1 exists, "
            "but points within it may",
        )
    return ScrOutcome(Status.HOLDS, None, queries, refinements, "all chord cells closed")


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


def _log_sum_exp(v: FloatArray) -> float:
    top = float(np.max(v))
    return top + math.log(float(np.sum(np.exp(v - top))))


def _chord_atom(others: list[int], c: int, a: FloatArray, b: FloatArray, t: float) -> Atom:
    """``Σ_k chord_k(y_{j_k} − y_c) ≥ t`` as one linear atom over ``y``."""
    terms: list[tuple[int, float]] = []
    total_slope = 0.0
    total_intercept = 0.0
    for k, j in enumerate(others):
        slope, intercept = exp_chord(float(a[k]), float(b[k]))
        terms.append((j, slope))
        total_slope += slope
        total_intercept += intercept
    terms.append((c, -total_slope))
    return Atom(terms=tuple(terms), rhs=t - total_intercept)


def _split_dim(a: FloatArray, b: FloatArray, g: FloatArray) -> tuple[int, float] | None:
    """The class whose chord overestimates ``exp`` most at ``g``, and where to cut it."""
    best: tuple[float, int, float] | None = None
    for k in range(a.size):
        if b[k] - a[k] <= 1e-9:
            continue
        gk = float(np.clip(g[k], a[k], b[k]))
        slope, intercept = exp_chord(float(a[k]), float(b[k]))
        gap = slope * gk + intercept - math.exp(gk)
        # cut at the point, or mid-cell when the point sits on an edge
        at = gk if a[k] + 1e-9 < gk < b[k] - 1e-9 else 0.5 * (a[k] + b[k])
        if best is None or gap > best[0]:
            best = (gap, k, at)
    if best is None:
        return None
    return best[1], best[2]


def box_project(x: FloatArray, box: Disjunct) -> FloatArray:
    """``x`` clipped into the disjunct's input box."""
    return np.clip(np.asarray(x, np.float64).reshape(-1), box.lower, box.upper)


def _g(y: FloatArray, others: list[int], c: int) -> FloatArray:
    return np.array([y[j] - y[c] for j in others])


def _cell_query(
    negation: Negation,
    box: Disjunct,
    others: list[int],
    c: int,
    a: FloatArray,
    b: FloatArray,
    threshold: float,
) -> Negation:
    """``g`` in the cell ``[a, b]`` and ``Σ chord(g) ≥ threshold``."""
    atoms = [_chord_atom(others, c, a, b, threshold)]
    for k, j in enumerate(others):
        atoms.append(Atom(terms=((j, 1.0), (c, -1.0)), rhs=float(a[k])))
        atoms.append(Atom(terms=((j, -1.0), (c, 1.0)), rhs=-float(b[k])))
    return _linear(negation, box, tuple(atoms), "chord cell")


def _linear(negation: Negation, box: Disjunct, atoms: tuple[Atom, ...], what: str) -> Negation:
    return Negation(
        disjuncts=(Disjunct(box.lower, box.upper, atoms),),
        distance=negation.distance,
        tau=negation.tau,
        description=f"{negation.description}: {what}",
    )


def _as_softmax(negation: Negation, box: Disjunct) -> Negation:
    soft = negation.softmax
    assert soft is not None
    return Negation(
        disjuncts=(Disjunct(box.lower, box.upper, ()),),
        softmax=SoftmaxBelow(soft.label, soft.eta),
        tau=negation.tau,
        description=negation.description,
    )
