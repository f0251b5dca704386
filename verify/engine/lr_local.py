"""LR near its center, decided exactly by linear algebra; the solver gets only ``d ≥ d0``.

LR's negation ``±(y_j − r_j) − L·d ≥ τ`` is degenerate at the center: at ``d = 0`` both sides
are 0, and a floating-point solver accepts points there within its tolerance (seen with
Marabou 2.0: "sat" points at ``d ≈ 1e-16`` that never replay). We remove the degeneracy:

1. ``d0`` is a radius such that on ``B(x̂, d0)`` (∩ the input box) every ReLU and Clip keeps
   its state (checked with sound interval bounds), and every coordinate either sits on its
   domain bound or is at least ``d0`` from it. There ``f(x) = r + J (x − x̂)`` exactly, with
   ``J`` the Jacobian of the active pattern at ``x̂``.
2. For each atom ``Σ c_j y_j + k·d ≥ rhs`` the largest value on the small ball is reached at
   ``d = d0``: ``A + d0 (g + k)`` with ``A = Σ c_j r_j − rhs`` and ``g`` the largest
   ``(cᵀJ)·u`` over unit-ball directions ``u`` allowed by the domain. If it is ≤ 0 for every atom,
   no violation lies within ``d0``; otherwise ``x̂ + d0·u*`` is a candidate witness.
3. The solver is then asked only for ``d ≥ d0`` (an extra atom on every disjunct).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from robustprop.properties.spec import Atom, Disjunct, FloatArray, Negation
from robustprop.verify.engine.network import Affine, Clip, Network, Relu

__all__ = ["LocalLR", "analyse", "stable_radius"]


@dataclass(frozen=True)
class LocalLR:
    """Outcome of the small-ball analysis.

    ``witness`` is set when the small ball holds a violation; else ``outer`` is the negation
    restricted to ``d ≥ d0`` (``None`` when no stable radius exists, ``d0 = 0``).
    """

    d0: float
    witness: FloatArray | None
    outer: Negation | None


def stable_radius(network: Network, center: FloatArray, box: Disjunct, limit: float) -> float:
    """Largest ``d ≤ limit`` (to a factor 2) on which no ReLU or Clip changes state."""
    pattern = _pattern(network, center)
    lo_dom, hi_dom = box.lower, box.upper
    interior = (center > lo_dom) & (center < hi_dom)
    room = np.minimum(center - lo_dom, hi_dom - center)[interior]
    # strictly inside: center ± d must stay within eps of the center after rounding
    d = (min(limit, float(room.min())) if room.size else limit) * (1.0 - 1e-9)
    for _ in range(60):
        if d <= 0.0:
            return 0.0
        lower = np.maximum(center - d, lo_dom)
        upper = np.minimum(center + d, hi_dom)
        if _stable(network, lower, upper, pattern):
            return d
        d /= 2.0
    return 0.0


def analyse(network: Network, negation: Negation, y_center: FloatArray) -> LocalLR | None:
    """The small-ball analysis of an LR negation (one box, one atom per disjunct); else None."""
    dist = negation.distance
    if dist is None or negation.softmax is not None:
        return None
    boxes = {d.lower.tobytes() + d.upper.tobytes() for d in negation.disjuncts}
    if len(boxes) != 1 or any(len(d.atoms) != 1 for d in negation.disjuncts):
        return None
    box = negation.disjuncts[0]
    center = dist.center
    d0 = stable_radius(network, center, box, dist.eps)
    if d0 <= 0.0:
        return LocalLR(0.0, None, None)
    jac = _jacobian(network, center)
    # unit directions allowed by the domain: a coordinate on its bound moves one way only
    down = np.where(center > box.lower, -1.0, 0.0)
    up = np.where(center < box.upper, 1.0, 0.0)
    for disjunct in negation.disjuncts:
        atom = disjunct.atoms[0]
        v = np.zeros(network.n)
        base = -atom.rhs
        for j, c in atom.terms:
            v += c * jac[j]
            base += c * y_center[j]
        u = np.where(v > 0, up, down)
        gain = float(v @ u)
        if base + d0 * (gain + atom.dist_coeff) > 0.0:
            return LocalLR(d0, np.clip(center + d0 * u, box.lower, box.upper), None)
    floor = Atom(terms=(), rhs=d0, dist_coeff=1.0)
    outer = dataclasses.replace(
        negation,
        disjuncts=tuple(Disjunct(d.lower, d.upper, (*d.atoms, floor)) for d in negation.disjuncts),
        description=f"{negation.description} (d >= {d0:.3g}; the ball within is linear)",
    )
    return LocalLR(d0, None, outer)


def _pattern(network: Network, x: FloatArray) -> list[FloatArray]:
    """Per nonlinear layer: 1 where the unit passes its input through, 0 where it is flat."""
    h = np.asarray(x, dtype=np.float64)
    out: list[FloatArray] = []
    for layer in network.layers:
        if isinstance(layer, Affine):
            h = layer.W @ h + layer.b
        elif isinstance(layer, Relu):
            out.append((h > 0).astype(np.float64))
            h = np.maximum(h, 0.0)
        else:
            out.append(((h > layer.lo) & (h < layer.hi)).astype(np.float64))
            h = np.clip(h, layer.lo, layer.hi)
    return out


def _stable(
    network: Network, lower: FloatArray, upper: FloatArray, pattern: list[FloatArray]
) -> bool:
    bounds = network.interval_bounds(lower, upper)
    k = 0
    for i, layer in enumerate(network.layers):
        if isinstance(layer, Affine):
            continue
        pre_lo, pre_hi = bounds[i - 1] if i > 0 else (lower, upper)
        if isinstance(layer, Relu):
            ok = np.where(pattern[k] > 0, pre_lo > 0, pre_hi < 0)
        else:
            assert isinstance(layer, Clip)
            inside = (pre_lo > layer.lo) & (pre_hi < layer.hi)
            flat = (pre_hi < layer.lo) | (pre_lo > layer.hi)
            ok = np.where(pattern[k] > 0, inside, flat)
        if not bool(np.all(ok)):
            return False
        k += 1
    return True


def _jacobian(network: Network, x: FloatArray) -> FloatArray:
    """``∂f/∂x`` at ``x`` for the activation pattern there, shape (m, n)."""
    pattern = _pattern(network, x)
    jac = np.eye(network.n)
    k = 0
    for layer in network.layers:
        if isinstance(layer, Affine):
            jac = layer.W @ jac
        else:
            jac = pattern[k][:, None] * jac
            k += 1
    return jac
