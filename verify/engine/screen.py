"""Screening a linear query before an exact backend sees it.

A solver is trusted with neither of two things that ``benchmarks/numeric_range.py`` measures
(its output is ``benchmarks/results/numeric_range.txt``): numbers outside the range where its
floating-point arithmetic gives right answers (Marabou answers "unsat" to ``y ≤ 1e17`` on a
network whose outputs never leave ``[−3, 3]``), and work that sound bounds already do.
:func:`screen` takes one query (disjuncts sharing one input box) and

1. bounds every atom ``c·y + k·d ≥ rhs`` over the box with the network's sound interval bounds
   (CROWN bounds when the network is seeded, :func:`robustprop.verify.engine.bounds.seeded`)
   and ``d`` in ``[0, ε]``:

   - an atom whose upper bound stays below ``rhs`` (beyond a rounding slack) is *refuted*: its
     disjunct is empty and is dropped (nothing with a point is ever dropped);
   - an atom whose lower bound reaches ``rhs`` is *implied* and leaves its disjunct (the query
     gets weaker, so a solver's "unsat" stays sound);
   - a disjunct left without atoms is a *candidate*: if the bounds are right, every point of
     its box is a point of the negation, so the caller replays one
     (:attr:`Screened.candidates`) before it asks a solver.

   A huge constant is therefore decided here and never reaches a solver;
2. normalises each atom that is left: scaled by a power of two (exact in float64) so that its
   largest coefficient is about 1, and terms that never exceed :data:`TERM_FLOOR` on the box
   relaxed into ``rhs`` by their bound (a weaker atom: sound for "unsat");
3. measures what the backend would get — the weights of the network, the input box and neuron
   bounds, and the width of each atom's range over the box — against the backend's calibrated
   :class:`NumericRange` (:data:`RANGES`). Beyond it :attr:`Screened.out_of_range` says why and
   the caller answers ``unknown``; the portfolio falls back to the one racer whose range holds.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from robustprop.properties.spec import Atom, Disjunct, FloatArray, Negation
from robustprop.verify.engine.backends.base import BackendName, query_box
from robustprop.verify.engine.network import Affine, Network

__all__ = ["RANGES", "TERM_FLOOR", "NumericRange", "Screened", "box_point", "screen"]

#: Relative rounding slack of an atom's bounds (its terms summed in float64).
_ROUNDING = 1e-12
#: Terms of a normalised atom that never exceed this in magnitude on the box are relaxed into
#: its right-hand side (a solver would see a negligible coefficient beside one of about 1).
TERM_FLOOR = 1e-12


@dataclass(frozen=True)
class NumericRange:
    """The numbers a backend decides correctly, from ``benchmarks/numeric_range.py``.

    ``max_weight``: largest ``|W|``, ``|b|`` of an affine layer (a coefficient next to the unit
    coefficient of the layer's output); ``max_bound``: largest ``|bound|`` of an input or a
    neuron; ``resolution``: the narrowest range (absolute, over the box) an atom may have.
    """

    max_weight: float
    max_bound: float
    resolution: float


#: Each backend's range, from ``benchmarks/results/numeric_range.txt``: the last magnitude at
#: which every calibration query was answered right (or unknown), divided by 10.
RANGES: dict[BackendName, NumericRange] = {
    # Wrong "unsat" from weights of 1e8 (right up to 1e7); none from bounds up to 1e300 (capped
    # at 1e12 here all the same). Margins below 1e-5 are missed even at unit scale: Marabou
    # answers a query relaxed by RELAXATION = 1e-4 (backends/marabou.py), and an atom narrower
    # than that is not asked of it.
    BackendName.MARABOU: NumericRange(max_weight=1e6, max_bound=1e12, resolution=1e-4),
    # Wrong "unsat" from bounds and weights of 1e7 (big-M rows; right up to 1e6), and when a
    # whole query lives at the scale of its 1e-9 tolerance (an atom ranging over 4.5e-9 on the
    # box; right at 4.5e-8).
    BackendName.MILP: NumericRange(max_weight=1e5, max_bound=1e5, resolution=1e-6),
    # Exact rational arithmetic: right at every magnitude; only non-finite numbers are out.
    BackendName.Z3: NumericRange(max_weight=math.inf, max_bound=math.inf, resolution=0.0),
}


@dataclass(frozen=True, eq=False)
class Screened:
    """What :func:`screen` made of a query.

    ``negation``: what is left for a solver (``None``: every disjunct refuted by the bounds);
    ``candidates``: one point of each disjunct whose atoms the bounds all imply; ``backend``:
    the backend to ask (the portfolio may fall back to one of its racers); ``out_of_range``:
    why no backend should be asked (empty when one may).
    """

    negation: Negation | None
    candidates: tuple[FloatArray, ...]
    refuted: int
    implied: int
    backend: BackendName
    out_of_range: str = ""


def screen(network: Network, negation: Negation, backend: BackendName) -> Screened:
    """Screen a linear ``negation`` for ``backend`` (see the module doc)."""
    lower, upper = query_box(negation)
    if np.any(lower > upper):  # the distance ball misses every box
        return Screened(None, (), len(negation.disjuncts), 0, backend)
    with np.errstate(all="ignore"):
        layers = network.interval_bounds(lower, upper)
    y_lo, y_hi = layers[-1] if layers else (lower, upper)
    d_range = (0.0, 0.0)
    if negation.distance is not None:
        d_range = (0.0, float(negation.distance.eps))
    kept: list[Disjunct] = []
    candidates: list[FloatArray] = []
    refuted = implied = 0
    for disjunct in negation.disjuncts:
        atoms: list[Atom] = []
        empty = bool(np.any(disjunct.lower > disjunct.upper))
        for atom in disjunct.atoms if not empty else ():
            lo, hi, mag = _atom_range(atom, y_lo, y_hi, d_range, negation.distance is not None)
            slack = _ROUNDING * mag
            if hi + slack < atom.rhs:
                empty = True
                break
            if lo - slack >= atom.rhs:
                implied += 1
                continue
            atoms.append(_normalised(atom, y_lo, y_hi))
        if empty:
            refuted += 1
            continue
        if not atoms:
            candidates.append(box_point(disjunct, negation))
        kept.append(Disjunct(disjunct.lower, disjunct.upper, tuple(atoms)))
    if not kept:
        return Screened(None, (), refuted, implied, backend)
    left = dataclasses.replace(negation, disjuncts=tuple(kept))
    chosen, reason = _choose(backend, network, left, layers, (lower, upper), (y_lo, y_hi))
    return Screened(left, tuple(candidates), refuted, implied, chosen, reason)


def box_point(disjunct: Disjunct, negation: Negation) -> FloatArray:
    """A point of the disjunct's box (within the distance ball, if any): its centre."""
    lo, hi = disjunct.lower, disjunct.upper
    if negation.distance is not None:
        center, eps = negation.distance.center, negation.distance.eps
        lo, hi = np.maximum(lo, center - eps), np.minimum(hi, center + eps)
    return np.clip(lo / 2.0 + hi / 2.0, lo, hi)


def _atom_range(
    atom: Atom,
    y_lo: FloatArray,
    y_hi: FloatArray,
    d_range: tuple[float, float],
    has_distance: bool,
) -> tuple[float, float, float]:
    """Bounds of ``c·y + k·d`` and the magnitude of what was summed (for the slack)."""
    coeffs: dict[int, float] = {}
    for j, c in atom.terms:
        coeffs[j] = coeffs.get(j, 0.0) + float(c)
    lo = hi = 0.0
    mag = abs(float(atom.rhs))
    with np.errstate(all="ignore"):
        for j, c in coeffs.items():
            if c == 0.0:
                continue
            a, b = c * float(y_lo[j]), c * float(y_hi[j])
            lo, hi = lo + min(a, b), hi + max(a, b)
            mag += max(abs(a), abs(b))
        k = float(atom.dist_coeff)
        if k != 0.0:
            if not has_distance:
                return -math.inf, math.inf, math.inf  # the backend refuses it
            a, b = k * d_range[0], k * d_range[1]
            lo, hi = lo + min(a, b), hi + max(a, b)
            mag += max(abs(a), abs(b))
    if math.isnan(lo) or math.isnan(hi):
        return -math.inf, math.inf, math.inf
    return lo, hi, mag


def _normalised(atom: Atom, y_lo: FloatArray, y_hi: FloatArray) -> Atom:
    """``atom`` scaled by a power of two to a largest coefficient in ``[1, 2)``, its negligible
    terms relaxed into the right-hand side (a weaker atom, never a stronger one)."""
    coeffs: dict[int, float] = {}
    for j, c in atom.terms:
        coeffs[j] = coeffs.get(j, 0.0) + float(c)
    top = max([abs(c) for c in coeffs.values()] + [abs(float(atom.dist_coeff))])
    if top == 0.0 or not math.isfinite(top):
        return atom
    shift = 1 - math.frexp(top)[1]  # top * 2**shift lies in [1, 2)
    values = [float(atom.rhs), float(atom.dist_coeff), *coeffs.values()]
    try:
        scaled_values = [math.ldexp(v, shift) for v in values]
    except OverflowError:
        return atom
    if any(math.ldexp(t, -shift) != v for t, v in zip(scaled_values, values, strict=True)):
        return atom  # a value would underflow: scaling would not be exact
    rhs, dist = scaled_values[0], scaled_values[1]
    scaled = dict(zip(coeffs, scaled_values[2:], strict=True))
    terms: list[tuple[int, float]] = []
    for j, c in scaled.items():
        if c == 0.0:
            continue
        most = max(c * float(y_lo[j]), c * float(y_hi[j]))  # c·y_j ≤ most on the box
        least = min(c * float(y_lo[j]), c * float(y_hi[j]))
        if not (math.isfinite(most) and math.isfinite(least)):
            return atom
        if max(abs(most), abs(least)) >= TERM_FLOOR:
            terms.append((j, c))
            continue
        rhs = float(np.nextafter(rhs - most, -math.inf))
    if not math.isfinite(rhs):
        return atom
    return Atom(tuple(terms), rhs, dist)


def _choose(
    backend: BackendName,
    network: Network,
    negation: Negation,
    layers: list[tuple[FloatArray, FloatArray]],
    box: tuple[FloatArray, FloatArray],
    outputs: tuple[FloatArray, FloatArray],
) -> tuple[BackendName, str]:
    """The backend to ask (the portfolio's racer whose range holds), or why none."""
    if backend is not BackendName.PORTFOLIO:
        return backend, _out_of_range(backend, network, negation, layers, box, outputs)
    marabou = _out_of_range(BackendName.MARABOU, network, negation, layers, box, outputs)
    milp = _out_of_range(BackendName.MILP, network, negation, layers, box, outputs)
    if not marabou and not milp:
        return backend, ""
    if not marabou:
        return BackendName.MARABOU, ""
    if not milp:
        return BackendName.MILP, ""
    return backend, f"{marabou}; {milp}"


def _out_of_range(
    backend: BackendName,
    network: Network,
    negation: Negation,
    layers: list[tuple[FloatArray, FloatArray]],
    box: tuple[FloatArray, FloatArray],
    outputs: tuple[FloatArray, FloatArray],
) -> str:
    """Why ``backend`` cannot be trusted with the (screened) ``negation``, or ``""``."""
    limits = RANGES[backend]
    where = f"benchmarks/results/numeric_range.txt calibrated {backend.value}"
    weight = 0.0
    for layer in network.layers:
        if isinstance(layer, Affine) and layer.W.size + layer.b.size:
            weight = max(weight, float(np.max(np.abs(layer.W))), float(np.max(np.abs(layer.b))))
    bound = max(
        (float(np.max(np.abs(a))) for pair in (box, *layers) for a in pair if a.size),
        default=0.0,
    )
    numbers = [weight, bound] + [
        v
        for d in negation.disjuncts
        for a in d.atoms
        for v in (a.rhs, a.dist_coeff, *(c for _, c in a.terms))
    ]
    if negation.distance is not None:
        numbers.append(float(negation.distance.eps))
    if not all(math.isfinite(v) for v in numbers):
        return f"{backend.value}: the query has non-finite numbers (weights, bounds or atoms)"
    if weight > limits.max_weight:
        return (
            f"{backend.value}: a weight of magnitude {weight:.3g} is beyond the "
            f"{limits.max_weight:.0e} that {where} for"
        )
    if bound > limits.max_bound:
        return (
            f"{backend.value}: an input or neuron bound of magnitude {bound:.3g} is beyond the "
            f"{limits.max_bound:.0e} that {where} for"
        )
    d_range = (0.0, 0.0 if negation.distance is None else float(negation.distance.eps))
    for d in negation.disjuncts:
        for a in d.atoms:
            lo, hi, _ = _atom_range(a, outputs[0], outputs[1], d_range, True)
            if hi - lo < limits.resolution:
                return (
                    f"{backend.value}: an atom ranges over only {hi - lo:.3g} on the box, "
                    f"below the resolution {limits.resolution:.0e} that {where} for"
                )
    return ""
