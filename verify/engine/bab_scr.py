"""Branch and bound for SCR (``softmax(f(x))_c ≥ η``) by ReLU splitting, on chord bounds.

With ``g_j = y_j − y_c`` (``j ≠ c``) the property fails at ``x`` iff
``S(x) = Σ_j exp(g_j(x)) > T = 1/η − 1``. Where ``g_j ∈ [l_j, u_j]``, ``exp`` lies below its
chord ``s_j g_j + t_j`` (convexity), so ``S ≤ Σ_j (s_j g_j + t_j)``: a linear function of the
outputs, bounded like any specification row. :class:`SoftmaxTarget` makes that a
:class:`~robustprop.verify.engine.bab_common.Target` of
:func:`~robustprop.verify.engine.bab_relu.relu_split`: each sub-domain bounds ``2(m − 1) + 1``
rows, the ``g_j`` from below and above (its own, fresh bounds, which it hands to its children)
and the chord sum on the ``g`` bounds its parent handed it (sound: the sub-domain's ``g`` lies
in its parent's range). A sub-domain is closed when

- the chord sum's upper bound is below ``T(1 − 10⁻⁹)`` (less a rounding margin of the chords'
  coefficients), or
- ``Σ_j exp(u_j)`` with its fresh bounds is, or
- its fresh bounds and its parent's do not meet (no input satisfies its splits).

As sub-domains shrink, the ``g`` ranges shrink and the chords approach ``exp``; where a search
ends (time, or a fully split sub-domain whose chords still do not close), the caller's g-space
refinement (:mod:`~robustprop.verify.engine.scr_encoding`) takes the query. Candidates are
points with ``log S`` above ``log`` of the witness threshold (``p_c < η − τ``), counted only
once the caller's ``confirm`` replays them.

Measured on Fashion-MNIST baseline (784-100-10), test point 9, SCR at ε = 0.03: the g-space
refinement alone (each cell a linear query for branch and bound and the MILP) needed 34 queries
and left it unknown after 30 s, re-splitting the same ReLUs for every cell (≈ 2000 sub-domains,
2–5 s, per hard cell).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from robustprop.properties.spec import Negation
from robustprop.verify.engine.bab_common import BabOutcome, Confirm
from robustprop.verify.engine.bab_relu import ReluSplitConfig, relu_split
from robustprop.verify.engine.crown import Crown, LayerBounds
from robustprop.verify.engine.verdict import Status

__all__ = ["SoftmaxTarget", "softmax_split"]

#: Relative safety on the threshold (as the g-space refinement's): only makes closing harder.
_SAFETY = 1e-9
#: Relative rounding margin of a chord's value (its slope and intercept are float64 results).
_CHORD_ROUNDING = 1e-10
#: Above this, ``exp`` overflows float64: such a margin's chord is left out (row 0, no close).
_EXP_MAX = 700.0


@dataclass(frozen=True, eq=False)
class SoftmaxTarget:
    """The SCR negation of one input box as a target of ReLU splitting (see the module doc);
    ``aux`` per sub-domain: the bounds of its ``g`` (``lo | hi``, ``(N, 2G)``)."""

    lower: Tensor  # (n,) the input box
    upper: Tensor
    G: Tensor  # (G, m): the rows e_j − e_c
    root: Tensor  # (1, 2G): the g bounds over the whole box
    t_safe: float  # T(1 − 1e-9): a sub-domain closes below it
    log_witness: float  # log of the sum beyond which p_c < η − τ

    @classmethod
    def of(cls, crown: Crown, negation: Negation, bounds: LayerBounds) -> SoftmaxTarget:
        """From an SCR negation and CROWN's bounds over its box."""
        soft = negation.softmax
        if soft is None:
            raise ValueError("a SoftmaxTarget needs an SCR negation")
        box = negation.disjuncts[0]
        m = crown.network.m
        others = [j for j in range(m) if j != soft.label]
        G = torch.zeros(len(others), m, dtype=torch.float64, device=crown.device)
        for k, j in enumerate(others):
            G[k, j], G[k, soft.label] = 1.0, -1.0
        with torch.no_grad():
            neg_lower = crown.spec_lower(bounds, torch.cat([-G, G])[None])
        g = len(others)
        root = torch.cat([neg_lower[:, g:], -neg_lower[:, :g]], dim=1)
        return cls(
            crown.tensor(box.lower),
            crown.tensor(box.upper),
            G,
            root,
            soft.threshold * (1.0 - _SAFETY),
            math.log(soft.threshold_with_margin(negation.tau)),
        )

    @property
    def _g(self) -> int:
        return int(self.G.shape[0])

    def start(self) -> Tensor:
        return self.root

    def rows_for(self, aux: Tensor) -> Tensor:
        slope, _ = _chords(aux[:, : self._g], aux[:, self._g :])
        chord = -(slope @ self.G)  # (N, m): its lower bound is −ub(Σ s_j g_j)
        margins = torch.cat([-self.G, self.G]).expand(aux.shape[0], -1, -1)
        return torch.cat([margins, chord[:, None, :]], dim=1)

    def assess(self, neg_lower: Tensor, aux: Tensor) -> tuple[Tensor, Tensor]:
        g = self._g
        lo, hi = aux[:, :g], aux[:, g:]
        new_lo = torch.maximum(lo, neg_lower[:, g : 2 * g])
        new_hi = torch.minimum(hi, -neg_lower[:, :g])
        slope, intercept = _chords(lo, hi)
        reach = torch.maximum(lo.abs(), hi.abs())
        rounding = _CHORD_ROUNDING * (slope * reach + intercept.abs()).sum(dim=1)
        chord = -neg_lower[:, 2 * g] + intercept.sum(dim=1) + rounding - self.t_safe
        interval = torch.exp(new_hi.clamp(max=_EXP_MAX)).sum(dim=1) * (1.0 + 1e-12) - self.t_safe
        interval = torch.where((new_hi > _EXP_MAX).any(dim=1), torch.inf, interval)
        slack = torch.minimum(chord, interval)
        empty = (new_lo > new_hi).any(dim=1)
        slack = torch.where(empty, torch.full_like(slack, -1.0), slack)
        return slack[:, None], torch.cat([new_lo, new_hi], dim=1)

    def closed(self, slack: Tensor) -> Tensor:
        return slack[:, 0] < 0.0

    def targets(self, slack: Tensor) -> Tensor:
        weight = slack.new_zeros((slack.shape[0], 2 * self._g + 1))
        weight[:, -1] = 1.0  # the chord row
        return weight

    def score(self, y: Tensor) -> Tensor:
        return torch.logsumexp(y @ self.G.T, dim=1) - self.log_witness

    def split_aux(self, aux: Tensor) -> tuple[Tensor, Tensor] | None:
        """Split each row's ``g`` range where its chord is furthest above ``exp`` (at
        ``log s``), along the margin with the largest such gap: the two children's chords are
        tighter, and inputs with ``g_k`` on either side of the cut are in one of them."""
        g = self._g
        lo, hi = aux[:, :g], aux[:, g:]
        slope, intercept = _chords(lo, hi)
        at = torch.log(slope.clamp(min=1e-300)).clamp(min=lo, max=hi)
        gap = slope * at + intercept - torch.exp(at.clamp(max=_EXP_MAX))
        gap = torch.where(torch.isfinite(gap), gap, torch.zeros_like(gap))
        best, k = gap.max(dim=1)
        if bool((best <= 1e-12 * self.t_safe).any()):
            return None  # the chords are exp already: splitting cannot tighten them
        rows = torch.arange(aux.shape[0], device=aux.device)
        cut = at[rows, k]
        mid = (lo[rows, k] + hi[rows, k]) / 2.0
        edge = (cut <= lo[rows, k]) | (cut >= hi[rows, k])
        cut = torch.where(edge, mid, cut)
        left, right = aux.clone(), aux.clone()
        left[rows, g + k] = cut  # g_k ≤ cut
        right[rows, k] = cut  # g_k ≥ cut
        return left, right


def _chords(lo: Tensor, hi: Tensor) -> tuple[Tensor, Tensor]:
    """Slopes and intercepts of lines ``≥ exp`` on ``[lo, hi]`` (element-wise): the chord; a
    constant ``exp(hi)`` where the range is too narrow for a chord; slope 0 and an infinite
    intercept where ``exp`` would overflow (that margin then closes nothing)."""
    big = hi > _EXP_MAX
    lo_c, hi_c = lo.clamp(max=_EXP_MAX), hi.clamp(max=_EXP_MAX)
    e_lo, e_hi = torch.exp(lo_c), torch.exp(hi_c)
    width = hi_c - lo_c
    narrow = width <= 1e-12
    chord = (e_hi - e_lo) / torch.where(narrow, 1.0, width)
    slope = torch.where(narrow, torch.zeros_like(width), chord)
    intercept = torch.where(narrow, e_hi, e_lo - slope * lo_c)
    slope = torch.where(big, torch.zeros_like(slope), slope)
    intercept = torch.where(big, torch.full_like(intercept, torch.inf), intercept)
    return slope, intercept


def softmax_split(
    crown: Crown,
    negation: Negation,
    confirm: Confirm,
    deadline: float,
    config: ReluSplitConfig | None = None,
) -> BabOutcome:
    """Decide an SCR negation (one input box) by ReLU splitting on chord bounds before
    ``deadline``: ``holds`` when every sub-domain closes, ``violated`` with a replayed
    candidate, else ``unknown`` (the g-space refinement is the caller's next step)."""
    if negation.softmax is None or len(negation.disjuncts) != 1:
        raise ValueError("softmax_split takes an SCR negation with one input box")
    box = negation.disjuncts[0]
    lower, upper = crown.tensor(box.lower)[None], crown.tensor(box.upper)[None]
    if bool((lower > upper).any()):
        return BabOutcome(Status.HOLDS, "an empty input box")
    with torch.no_grad():
        root = crown.layer_bounds(lower, upper)
        target = SoftmaxTarget.of(crown, negation, root)
    return relu_split(crown, target, confirm, deadline, config, root=root, warm=True)
