"""The bound stage: prove negations empty with CROWN, batched over points and atoms.

For every atom ``c·y + k·d ≥ rhs`` of a negation, :func:`bound_negations` bounds ``c·y`` from
above over the disjunct's input box with :class:`robustprop.verify.engine.crown.Crown` (the atom's
row of the
specification matrix, so each atom is bounded as one linear function). An atom whose upper
bound stays below ``rhs`` is impossible, and so is its disjunct; a negation whose disjuncts are
all impossible is empty: the property **holds**. Otherwise the impossible disjuncts are dropped
and what is left goes to the exact stage, with a :class:`Seed` — the CROWN bounds of every
layer over the remaining query box, which the exact backends use instead of interval bounds
(fewer unstable ReLUs). Everything here only removes sets proved empty, so it never changes
an answer.

**LR's distance term** (``c·y − L·d ≥ rhs`` with ``‖x − x̂‖∞ ≤ d ≤ ε``). Bounding ``c·y``
over the whole ball while taking ``d ≥ 0`` proves nothing (at ``x̂`` both sides meet). We split
``d`` into shells ``[a_s, b_s]``: any violation with ``d`` in the shell has ``x`` in the box
``B(x̂, b_s)``, so the atom is impossible there when ``ub_s(c·y) + max(k·a_s, k·b_s) < rhs``
with ``ub_s`` the CROWN bound over ``B(x̂, b_s)`` ∩ domain. The innermost ball ``d ≤ d0`` is
decided exactly by :mod:`robustprop.verify.engine.lr_local` (the network is linear there); shells
then grow
geometrically from ``d0`` to ``ε`` (ratio about 1.15, at most :data:`MAX_SHELLS`). A disjunct
whose shells are not all proved keeps only its unproved ``d``-range (``d ≥ a``, ``d ≤ b`` added
as distance atoms), and the distance radius shrinks to the largest remaining ``b``.

**SCR** (``Σ_{j≠c} exp(g_j) > 1/η − 1`` with ``g_j = y_j − y_c``): the rows ``±(e_j − e_c)``
bound every margin ``g_j`` directly; if ``Σ exp(ub g_j) ≤ (1/η − 1)(1 − 1e-9)`` the property
holds, else the ``g`` bounds go to :func:`robustprop.verify.engine.scr_encoding.decide_scr` as its
first cell.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import torch

from robustprop.properties.spec import Atom, Disjunct, Distance, FloatArray, Negation
from robustprop.verify.engine.backends.base import group_by_box, query_box
from robustprop.verify.engine.crown import Crown
from robustprop.verify.engine.lr_local import analyse
from robustprop.verify.engine.network import Network

__all__ = [
    "MAX_SHELLS",
    "BoundResult",
    "Seed",
    "SeededNetwork",
    "bound_negations",
    "compute_seeds",
    "seeded",
]

MAX_SHELLS = 40
SHELL_RATIO = 1.15
_SCR_SAFETY = 1e-9
# Boxes per CROWN call (memory: about chunk × atoms × n × 16 bytes).
CHUNK = 128


@dataclass(frozen=True, eq=False)
class Seed:
    """Sound bounds of every layer's output for inputs in ``[lower, upper]``."""

    lower: FloatArray
    upper: FloatArray
    layers: tuple[tuple[FloatArray, FloatArray], ...]

    def covers(self, lower: FloatArray, upper: FloatArray) -> bool:
        """Whether the box ``[lower, upper]`` lies inside the seed's box."""
        lo = np.asarray(lower, dtype=np.float64).reshape(-1)
        hi = np.asarray(upper, dtype=np.float64).reshape(-1)
        return lo.shape == self.lower.shape and bool(
            np.all(lo >= self.lower) and np.all(hi <= self.upper)
        )


@dataclass(frozen=True, eq=False)
class SeededNetwork(Network):
    """A network whose :meth:`interval_bounds` also uses precomputed (CROWN) bounds.

    For a box inside ``seed``'s box the interval bounds are intersected with the seed's bounds
    (both are sound there); for any other box they are plain interval bounds.
    """

    seed: Seed | None = None

    def interval_bounds(
        self, lower: npt.ArrayLike, upper: npt.ArrayLike
    ) -> list[tuple[FloatArray, FloatArray]]:
        base = super().interval_bounds(lower, upper)
        lo = np.asarray(lower, dtype=np.float64).reshape(-1)
        hi = np.asarray(upper, dtype=np.float64).reshape(-1)
        if self.seed is None or not self.seed.covers(lo, hi):
            return base
        out = []
        for (b_lo, b_hi), (s_lo, s_hi) in zip(base, self.seed.layers, strict=True):
            new_lo, new_hi = np.maximum(b_lo, s_lo), np.minimum(b_hi, s_hi)
            if np.any(new_lo > new_hi):  # cannot happen for sound bounds; stay safe
                return base
            out.append((new_lo, new_hi))
        return out


def seeded(network: Network, seed: Seed | None) -> Network:
    """``network`` using ``seed`` in its interval bounds (``network`` itself if no seed)."""
    if seed is None:
        return network
    base = {f.name: getattr(network, f.name) for f in dataclasses.fields(Network)}
    return SeededNetwork(**base, seed=seed)


@dataclass(frozen=True, eq=False)
class BoundResult:
    """What the bound stage made of one negation.

    ``holds``: proved empty. Else ``negation`` is what is left for the exact stage (disjuncts
    proved empty removed, LR's ``d`` ranges narrowed) and, for SCR, ``g_bounds`` bound the
    margins ``y_j − y_c`` (j ≠ c, in class order). ``seed`` is set by :func:`compute_seeds`.
    """

    holds: bool
    negation: Negation | None
    reason: str
    pruned: int = 0
    g_bounds: tuple[FloatArray, FloatArray] | None = None
    seed: Seed | None = field(default=None)


@dataclass
class _Task:
    """One box to bound, with the rows of its specification (upper bounds of ``c·y``)."""

    lower: FloatArray
    upper: FloatArray
    rows: FloatArray  # (K, m): bound max rows @ y


def bound_negations(
    network: Network,
    negations: list[Negation],
    crown: Crown | None = None,
    *,
    centers_y: FloatArray | None = None,
) -> list[BoundResult]:
    """The bound stage for every negation (see the module doc).

    ``centers_y`` (``(N, m)``, optional) are the float64 outputs at the LR centers; computed
    when missing.
    """
    crown = crown or Crown(network)
    plans: list[_Plan] = []
    tasks: list[_Task] = []
    for i, negation in enumerate(negations):
        y_c = None if centers_y is None else centers_y[i]
        plan = _plan(network, negation, y_c)
        plan.first_task = len(tasks)
        tasks.extend(plan.tasks)
        plans.append(plan)
    upper = _upper_bounds(crown, tasks)
    return [
        plan.finish(upper[plan.first_task : plan.first_task + len(plan.tasks)]) for plan in plans
    ]


def compute_seeds(
    network: Network, results: list[BoundResult], crown: Crown | None = None
) -> list[BoundResult]:
    """``results`` with :attr:`BoundResult.seed` set for every negation left open."""
    crown = crown or Crown(network)
    open_rows: list[int] = []
    boxes: list[tuple[FloatArray, FloatArray]] = []
    for i, result in enumerate(results):
        if result.negation is None:
            continue
        lo, hi = query_box(result.negation)
        if np.any(lo > hi):
            continue
        open_rows.append(i)
        boxes.append((lo, hi))
    out = list(results)
    for start in range(0, len(boxes), CHUNK):
        part = boxes[start : start + CHUNK]
        lower = crown.tensor(np.stack([b[0] for b in part]))
        upper = crown.tensor(np.stack([b[1] for b in part]))
        with torch.no_grad():
            layer_bounds = crown.layer_bounds(lower, upper)
        for k, (lo, hi) in enumerate(part):
            seed = Seed(lo, hi, tuple(layer_bounds.numpy(k)))
            i = open_rows[start + k]
            out[i] = dataclasses.replace(out[i], seed=seed)
    return out


# --------------------------------------------------------------------------------------------


def _upper_bounds(crown: Crown, tasks: list[_Task]) -> list[FloatArray]:
    """Per task, sound upper bounds of ``rows @ f(x)`` over its box, batched in chunks."""
    out: list[FloatArray] = []
    m = crown.network.m
    for start in range(0, len(tasks), CHUNK):
        part = tasks[start : start + CHUNK]
        k_max = max(1, max(t.rows.shape[0] for t in part))
        spec = np.zeros((len(part), k_max, m))
        for b, task in enumerate(part):
            spec[b, : task.rows.shape[0]] = -task.rows
        lower = crown.tensor(np.stack([t.lower for t in part]))
        upper = crown.tensor(np.stack([t.upper for t in part]))
        with torch.no_grad():
            bounds = crown.layer_bounds(lower, upper)
            lows = crown.spec_lower(bounds, crown.tensor(spec)).cpu().numpy()
        out.extend(-lows[b, : task.rows.shape[0]] for b, task in enumerate(part))
    return out


@dataclass
class _Plan:
    """How one negation's bound tasks are read back into a :class:`BoundResult`."""

    negation: Negation
    tasks: list[_Task]
    kind: str  # "linear", "lr", "scr", "skip"
    first_task: int = 0
    shells: list[tuple[float, float]] = field(default_factory=list)
    groups: list[Negation] = field(default_factory=list)
    scr_others: list[int] = field(default_factory=list)
    reason: str = ""

    def finish(self, upper: list[FloatArray]) -> BoundResult:
        if self.kind == "skip":
            return BoundResult(False, self.negation, self.reason)
        if self.kind == "scr":
            return _finish_scr(self, upper[0])
        if self.kind == "lr":
            return _finish_lr(self, upper)
        return _finish_linear(self, upper)


def _plan(network: Network, negation: Negation, y_center: FloatArray | None) -> _Plan:
    if negation.softmax is not None:
        box = negation.disjuncts[0]
        c = negation.softmax.label
        others = [j for j in range(network.m) if j != c]
        rows = np.zeros((2 * len(others), network.m))
        for k, j in enumerate(others):
            rows[2 * k, j], rows[2 * k, c] = 1.0, -1.0  # max g_j
            rows[2 * k + 1, j], rows[2 * k + 1, c] = -1.0, 1.0  # max -g_j
        plan = _Plan(negation, [_Task(box.lower, box.upper, rows)], "scr")
        plan.scr_others = others
        return plan
    if negation.distance is not None:
        return _plan_lr(network, negation, y_center)
    groups = group_by_box(negation)
    tasks = []
    for group in groups:
        box = group.disjuncts[0]
        tasks.append(_Task(box.lower, box.upper, _atom_rows(group, network.m)))
    plan = _Plan(negation, tasks, "linear")
    plan.groups = groups
    return plan


def _atom_rows(group: Negation, m: int) -> FloatArray:
    atoms = [a for d in group.disjuncts for a in d.atoms]
    rows = np.zeros((len(atoms), m))
    for i, atom in enumerate(atoms):
        for j, c in atom.terms:
            rows[i, j] += c
    return rows


def _impossible(atom: Atom, upper_cy: float, d_lo: float, d_hi: float) -> bool:
    """Whether ``c·y + k·d ≥ rhs`` fails for every ``c·y ≤ upper_cy`` and ``d`` in range."""
    if atom.dist_coeff != 0.0:
        upper_cy += max(atom.dist_coeff * d_lo, atom.dist_coeff * d_hi)
    return upper_cy < atom.rhs


def _finish_linear(plan: _Plan, upper: list[FloatArray]) -> BoundResult:
    kept: list[Disjunct] = []
    total = 0
    for group, ub in zip(plan.groups, upper, strict=True):
        k = 0
        box_empty = bool(np.any(group.disjuncts[0].lower > group.disjuncts[0].upper))
        for d in group.disjuncts:
            total += 1
            values = ub[k : k + len(d.atoms)]
            k += len(d.atoms)
            if box_empty or any(
                not a.terms and a.dist_coeff == 0.0 and a.rhs > 0.0 for a in d.atoms
            ):
                continue
            if any(
                _impossible(a, float(v), 0.0, 0.0) for a, v in zip(d.atoms, values, strict=True)
            ):
                continue
            kept.append(d)
    return _result(plan.negation, kept, total, "CROWN")


def _result(
    negation: Negation, kept: list[Disjunct], total: int, how: str, distance: Distance | None = None
) -> BoundResult:
    if not kept:
        return BoundResult(True, None, f"{how}: all {total} disjunct(s) proved empty", total)
    pruned = total - len(kept)
    remaining = dataclasses.replace(
        negation,
        disjuncts=tuple(kept),
        distance=distance if distance is not None else negation.distance,
        description=f"{negation.description} ({pruned} of {total} disjuncts proved empty by {how})"
        if pruned
        else negation.description,
    )
    return BoundResult(
        False, remaining, f"{how}: {pruned} of {total} disjunct(s) proved empty", pruned
    )


# -- LR --------------------------------------------------------------------------------------


def _plan_lr(network: Network, negation: Negation, y_center: FloatArray | None) -> _Plan:
    dist = negation.distance
    assert dist is not None
    boxes = {d.lower.tobytes() + d.upper.tobytes() for d in negation.disjuncts}
    if len(boxes) != 1:
        return _Plan(negation, [], "skip", reason="bounds: LR with several input boxes")
    y_c = network.evaluate(dist.center)[0] if y_center is None else y_center
    local = analyse(network, negation, y_c)
    base = negation
    d_min = 0.0
    if local is not None:
        if local.witness is not None:
            return _Plan(negation, [], "skip", reason="bounds: a violation near the center")
        if local.outer is not None:
            base, d_min = local.outer, local.d0
    shells = lr_shells(d_min, float(dist.eps))
    box = base.disjuncts[0]
    rows = _atom_rows(base, network.m)
    tasks = [
        _Task(
            np.maximum(box.lower, dist.center - b),
            np.minimum(box.upper, dist.center + b),
            rows,
        )
        for _, b in shells
    ]
    plan = _Plan(base, tasks, "lr")
    plan.shells = shells
    return plan


def lr_shells(d_min: float, eps: float) -> list[tuple[float, float]]:
    """``d`` ranges covering ``[d_min, eps]``: geometric from ``d_min`` (or from ``eps·1e-6``
    after a first shell ``[0, eps·1e-6]`` when ``d_min = 0``), at most :data:`MAX_SHELLS`."""
    shells: list[tuple[float, float]] = []
    start = d_min
    if start <= 0.0:
        start = eps * 1e-6
        shells.append((0.0, start))
    if start >= eps:
        return shells or [(0.0, eps)]
    count = min(MAX_SHELLS - len(shells), math.ceil(math.log(eps / start) / math.log(SHELL_RATIO)))
    count = max(1, count)
    edges = start * (eps / start) ** (np.arange(count + 1) / count)
    edges[0], edges[-1] = start, eps
    shells.extend((float(a), float(b)) for a, b in itertools.pairwise(edges))
    return shells


def _finish_lr(plan: _Plan, upper: list[FloatArray]) -> BoundResult:
    negation = plan.negation
    dist = negation.distance
    assert dist is not None
    kept: list[Disjunct] = []
    d_far = 0.0
    k = 0
    for d in negation.disjuncts:
        open_shells = []
        for s, (a, b) in enumerate(plan.shells):
            values = upper[s][k : k + len(d.atoms)]
            if not any(
                _impossible(atom, float(v) if atom.terms else 0.0, a, b)
                for atom, v in zip(d.atoms, values, strict=True)
            ):
                open_shells.append((a, b))
        k += len(d.atoms)
        if not open_shells:
            continue
        a, b = open_shells[0][0], open_shells[-1][1]
        extra = (Atom((), rhs=a, dist_coeff=1.0), Atom((), rhs=-b, dist_coeff=-1.0))
        kept.append(Disjunct(d.lower, d.upper, (*d.atoms, *extra)))
        d_far = max(d_far, b)
    distance = Distance(dist.center, min(float(dist.eps), d_far)) if kept else None
    return _result(negation, kept, len(negation.disjuncts), "CROWN over d-shells", distance)


# -- SCR -------------------------------------------------------------------------------------


def _finish_scr(plan: _Plan, upper: FloatArray) -> BoundResult:
    soft = plan.negation.softmax
    assert soft is not None
    g_hi = upper[0::2]
    g_lo = -upper[1::2]
    top = float(np.max(g_hi))
    lse = top + math.log(float(np.sum(np.exp(g_hi - top))))
    if lse <= math.log(soft.threshold) + math.log1p(-_SCR_SAFETY):
        return BoundResult(True, None, "CROWN: sum of exp(upper margins) below 1/eta - 1")
    return BoundResult(
        False, plan.negation, "CROWN: margins bounded", g_bounds=(g_lo.copy(), g_hi.copy())
    )
