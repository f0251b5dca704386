"""Branch and bound by input splitting, for low-dimensional inputs (ACAS Xu: 5).

The group's box is the first sub-domain. Sub-domains are kept on a stack (``(N, n)`` tensors
of lower and upper corners) and processed in batches of ``config.batch`` (``batch / 2n`` with
strong branching, below) from its top (depth first, so memory stays bounded): CROWN bounds
of every layer, intersected with its parent's
(valid on the smaller box too; CROWN over a child is looser than over its parent for some
neurons, and tighter layers make tighter relaxations below them: ACAS Xu 1_8/prop_2 takes
3635 sub-domains instead of 11375, 1_1/prop_6 12630 instead of 12984, but 4_9/prop_1 23967
instead of 13987, as the split choice follows the changed coefficients; the 17 unsat ACAS Xu
instances of the shared set 43.9 s instead of 46.9 s in all), then the atoms' bounds
(:func:`~robustprop.verify.engine.alpha.alpha_spec_lower`; with ``config.alpha.steps = 0``, the
default, that is CROWN's own bound). A closed sub-domain is
dropped (the negation is empty there); the others are attacked — the centre and, per atom,
the corner that maximises the atom's linear bound, then a few sign-gradient steps from the
best of them — and split in two at the midpoint of one dimension (where the target atoms'
linear bound varies most, ``Σ |λ_k,i| · (u_i − l_i)`` over the open disjuncts' closest atoms,
and the sub-domain is widest relative to the box, both as shares; for a group of one
disjunct and at most ``config.strong_dims`` inputs, the dimension whose worse half is clearly
better bounded instead, :func:`_lookahead`), pushed back on the stack.

``holds`` when the stack is empty: the sub-domains closed cover the box (each split covers
its parent), and each was closed with a sound bound. ``violated`` only with a candidate the
caller's ``confirm`` replayed. Otherwise ``unknown`` at the deadline or when a sub-domain
becomes too narrow to split.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import torch
from torch import Tensor

from robustprop.verify.engine.alpha import AlphaConfig, alpha_spec_lower
from robustprop.verify.engine.bab_common import (
    BabOutcome,
    BabState,
    Confirm,
    GroupSpec,
    first_confirmed,
    pgd_candidates,
)
from robustprop.verify.engine.crown import Crown, LayerBounds
from robustprop.verify.engine.network import Affine
from robustprop.verify.engine.torch_net import to_torch
from robustprop.verify.engine.verdict import Status, Verdict

__all__ = ["InputSplitConfig", "bound_boxes", "input_split"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InputSplitConfig:
    """Sub-domains per batch, α-CROWN effort, attack effort per batch, stack limit."""

    batch: int = 1024
    # α steps: 0 (CROWN's slopes) measured best here: 1241 sub-domains on ACAS Xu 1_1/prop_2
    # with 0 steps, still open after 5135 with 4 (its bounds are no looser, but the split
    # choice then follows the optimised coefficients); ReLU splitting keeps α and β.
    alpha: AlphaConfig = field(default_factory=lambda: AlphaConfig(steps=0))
    attack_rows: int = 64  # sub-domains of a batch attacked with PGD (the most open ones)
    # strong branching (:func:`_lookahead`) for groups of one disjunct with at most this
    # many inputs (0: never): both halves of every dimension bounded before choosing
    strong_dims: int = 8
    lookahead_boxes: int = 1024  # half-boxes bounded in one call
    attack_steps: int = 6
    max_domains: int = 4_000_000
    min_width: float = 1e-9  # relative to the group's box width


def input_split(
    crown: Crown,
    spec: GroupSpec,
    confirm: Confirm,
    deadline: float,
    config: InputSplitConfig | None = None,
    *,
    group: int = 0,
    resume: BabState | None = None,
) -> BabOutcome:
    """Decide one group by input splitting before ``deadline`` (see the module doc); at the
    deadline the outcome's state holds the open sub-domains (``group`` numbers it), from which
    ``resume`` (the state of an earlier call on the same group) continues."""
    cfg = config or InputSplitConfig()
    model = to_torch(crown.network, torch.float64)
    if resume is not None and resume.lower is not None and resume.upper is not None:
        lows, highs = resume.lower, resume.upper
    else:
        lows, highs = spec.lower[None].clone(), spec.upper[None].clone()
    # per sub-domain, its parent's bounds of every affine layer (none for the root)
    total = sum(layer.out_size for layer in crown.network.layers if isinstance(layer, Affine))
    unbounded = torch.full((lows.shape[0], total), torch.inf, dtype=lows.dtype, device=lows.device)
    p_lo, p_hi = resume.prior if resume is not None and resume.prior else (-unbounded, unbounded)
    full = (spec.upper - spec.lower).clamp(min=1e-300)
    n = lows.shape[1]
    strong = spec.member.shape[1] == 1 and n <= cfg.strong_dims
    batch = max(1, cfg.batch // (2 * n)) if strong else cfg.batch  # lookahead bounds 2n each
    done = 0
    while lows.shape[0]:
        if time.monotonic() >= deadline:
            state = BabState(group, lows, highs, prior=(p_lo, p_hi))
            return BabOutcome(Status.UNKNOWN, f"input splitting: time up, {lows.shape[0]} "
                              f"sub-domains open after {done}", done, state=state)  # fmt: skip
        take = min(batch, lows.shape[0])
        lo, hi, prior = lows[-take:], highs[-take:], (p_lo[-take:], p_hi[-take:])
        lows, highs, p_lo, p_hi = lows[:-take], highs[:-take], p_lo[:-take], p_hi[:-take]
        done += take
        slack, lam, bounds = bound_boxes(crown, spec, lo, hi, cfg.alpha, prior)
        open_ = ~spec.closed(slack)
        if not bool(open_.any()):
            continue
        lo, hi, slack, lam = lo[open_], hi[open_], slack[open_], lam[open_]
        b_lo, b_hi = (t[open_] for t in crown.affine_bounds(bounds))
        hit = _attack(model, spec, lo, hi, slack, lam, confirm, cfg)
        if hit is not None:
            reason = f"input splitting: counterexample after {done} sub-domains"
            return BabOutcome(Status.VIOLATED, reason, done, hit)
        width = hi - lo
        if bool(((width / full).max(dim=1).values < cfg.min_width).any()):
            return BabOutcome(Status.UNKNOWN, "input splitting: a sub-domain too narrow", done)
        dim = _choose(spec, slack, lam, width, full)
        if strong:
            dim = _lookahead(crown, spec, cfg, lo, hi, (b_lo, b_hi), dim, full)
        left_hi, right_lo = hi.clone(), lo.clone()
        rows = torch.arange(lo.shape[0], device=lo.device)
        mid = (lo[rows, dim] + hi[rows, dim]) / 2.0
        left_hi[rows, dim] = mid
        right_lo[rows, dim] = mid
        lows = torch.cat([lows, lo, right_lo])
        highs = torch.cat([highs, left_hi, hi])
        p_lo, p_hi = torch.cat([p_lo, b_lo, b_lo]), torch.cat([p_hi, b_hi, b_hi])
        if lows.shape[0] > cfg.max_domains:
            return BabOutcome(Status.UNKNOWN, "input splitting: too many sub-domains", done)
    return BabOutcome(Status.HOLDS, f"input splitting: {done} sub-domains, all proved", done)


def bound_boxes(
    crown: Crown,
    spec: GroupSpec,
    lo: Tensor,
    hi: Tensor,
    alpha: AlphaConfig,
    prior: tuple[Tensor, Tensor] | None = None,
) -> tuple[Tensor, Tensor, LayerBounds]:
    """``(slack, lam, bounds)`` over the boxes ``[lo, hi]`` (``(N, n)``): per atom, a sound
    upper bound of ``C_k·y − rhs_k`` (:meth:`GroupSpec.slack`: the box is closed where
    :meth:`GroupSpec.closed` says so) and the input coefficients of its linear bound, and
    every layer's bounds; ``prior``: bounds of larger boxes around them
    (:meth:`Crown.layer_bounds`)."""
    with torch.no_grad():
        bounds = crown.layer_bounds(lo, hi, prior=prior)
    neg_lower, lam, _ = alpha_spec_lower(crown, bounds, spec.spec(lo.shape[0]), alpha)
    return spec.slack(neg_lower), lam, bounds


def _choose(spec: GroupSpec, slack: Tensor, lam: Tensor, width: Tensor, full: Tensor) -> Tensor:
    """Per sub-domain, the dimension to split: the largest sum of two shares, each summing
    to 1 over the dimensions — of the target atoms' bound variation ``Σ |λ_k,i| · (u_i − l_i)``
    and of the width relative to the group's box. (On ACAS Xu 1_1/prop_3: 751 sub-domains,
    against 927 with the first share alone and 2203 with the widest dimension.)"""
    weight = spec.targets(slack)  # (N, K)
    score = (weight[:, :, None] * lam.abs()).sum(dim=1) * width  # (N, n)
    score = score / score.sum(dim=1, keepdim=True).clamp(min=1e-300)
    relative = width / full
    relative = relative / relative.sum(dim=1, keepdim=True).clamp(min=1e-300)
    return (score + relative).argmax(dim=1)


#: How much smaller the worse half's slack must be than under the default split.
_CLEARLY = 0.01
#: Lookahead splits no dimension narrower than the widest's share divided by this.
_NARROWEST = 256.0


def _lookahead(
    crown: Crown,
    spec: GroupSpec,
    cfg: InputSplitConfig,
    lo: Tensor,
    hi: Tensor,
    prior: tuple[Tensor, Tensor],
    default: Tensor,
    full: Tensor,
) -> Tensor:
    """Per sub-domain of a one-disjunct group, the dimension whose split leaves the better
    worse half: both halves of every dimension are bounded (with the sub-domain's own layer
    bounds as their prior), a half scored by its smallest slack (closed where negative), a
    dimension by its worse half; unless clearly better, ``default`` stands. (The search takes
    batches of ``batch / 2n`` sub-domains here, so that a lookahead costs about one batch.)
    It bounds ``n`` times the halves the search goes on with, and on ACAS Xu it
    pays (in-process, one thread, boxes bounded with the lookahead's against without it):
    4_9/prop_1 5.6 s against 23.2 s (6193 boxes against 23967), 2_7/prop_1 4.0 s against
    7.0 s, 1_8/prop_2 1.5 s against 3.2 s; the 17 unsat instances 22.5 s against 43.9 s.
    The halves' bounds are float32 estimates (:func:`_estimate_slack`; a choice needs no
    proof): ``benchmarks/vnncomp.py --timeout 30``, its 31 ACAS Xu instances 19.2 s against
    25.2 s with sound float64 bounds here (2_7/prop_1 1.7 s against 4.2 s, 1_1/prop_2 0.7 s
    against 1.5 s).
    (Not for several disjuncts: on 1_1/prop_6, four, scoring a half by its most open
    disjunct chose badly.)"""
    count, n = lo.shape
    chosen = default.clone()
    eye = torch.eye(n, dtype=torch.bool, device=lo.device)
    step = max(1, cfg.lookahead_boxes // (2 * n))
    for start in range(0, count, step):
        part = slice(start, start + step)
        low, high = lo[part], hi[part]
        size = low.shape[0]
        mid = ((low + high) / 2.0)[:, None, :]
        # half d of the left halves: high with coordinate d at the midpoint; right: low so
        left = (low[:, None, :].expand(size, n, n), torch.where(eye, mid, high[:, None, :]))
        right = (torch.where(eye, mid, low[:, None, :]), high[:, None, :].expand(size, n, n))
        c_lo = torch.cat([left[0], right[0]], dim=1).reshape(-1, n)
        c_hi = torch.cat([left[1], right[1]], dim=1).reshape(-1, n)
        p = (prior[0][part].repeat_interleave(2 * n, 0), prior[1][part].repeat_interleave(2 * n, 0))
        slack = _estimate_slack(crown, spec, c_lo, c_hi, p)
        worse = slack.min(dim=1).values.reshape(size, 2, n).max(dim=1).values  # (size, n)
        # never a dimension far narrower than the widest (relative to the group's box): the
        # halves of a sliver can score better by a hair forever (a 2-input net: 65 k
        # sub-domains in 3 s on widths like 0.5 × 0.001, 349 in all with this; ACAS Xu
        # needs narrow splits: 1/16 left 4_9/prop_1 open after 60 s)
        rel = (high - low) / full
        worse = worse.masked_fill(rel < rel.max(dim=1, keepdim=True).values / _NARROWEST, torch.inf)
        best = worse.argmin(dim=1)
        rows = torch.arange(size, device=lo.device)
        # the default stands unless the best is clearly better: where no split helps, the
        # least worse half may sit on an ever narrower dimension
        base = worse[rows, chosen[part]]
        keep = worse[rows, best] >= base - _CLEARLY * base.abs()
        chosen[part] = torch.where(keep, chosen[part], best)
    return chosen


def _estimate_slack(
    crown: Crown, spec: GroupSpec, lo: Tensor, hi: Tensor, prior: tuple[Tensor, Tensor]
) -> Tensor:
    """``(N, K)``: :func:`bound_boxes`'s slack over the boxes, *estimated* in float32 without
    safety margins (:meth:`Crown.layer_bounds` with ``sound=False``), for choosing a split
    only: about 2.5 times faster than the sound bound."""
    f32 = torch.float32
    with torch.no_grad():
        bounds = crown.layer_bounds(
            lo.to(f32), hi.to(f32), prior=(prior[0].to(f32), prior[1].to(f32)), sound=False
        )
        rows = spec.spec(lo.shape[0]).to(f32)
        upto = len(crown.network.layers)
        neg_lower, _ = crown.backward(
            bounds, upto, rows, rows.new_zeros(rows.shape[:2]), margin=False
        )
    return spec.slack(neg_lower.double())


def _attack(
    model: torch.nn.Module,
    spec: GroupSpec,
    lo: Tensor,
    hi: Tensor,
    slack: Tensor,
    lam: Tensor,
    confirm: Confirm,
    cfg: InputSplitConfig,
) -> Verdict | None:
    """A confirmed violation among the open sub-domains' centres, bound-maximising corners
    and a short PGD from the best of them, or None."""
    # the corner maximising C_k·y's linear bound minimises the bound of −C_k·y: lam > 0 → lo
    corners = torch.where(lam > 0.0, lo[:, None, :], hi[:, None, :])  # (N, K, n)
    points = torch.cat([((lo + hi) / 2.0)[:, None, :], corners], dim=1)  # (N, K+1, n)
    count, per, n = points.shape
    flat = points.reshape(-1, n)
    with torch.no_grad():
        score = spec.score(model(flat)).reshape(count, per)
    best, which = score.max(dim=1)
    start = points[torch.arange(count), which]
    if float(best.max()) >= 0.0:
        hit = first_confirmed(model, spec, start, confirm)
        if hit is not None:
            return hit
    # PGD from the starts of the most promising (least closed) sub-domains
    order = torch.argsort(best, descending=True)[: cfg.attack_rows]
    found = pgd_candidates(model, spec, start[order], lo[order], hi[order], cfg.attack_steps)
    return first_confirmed(model, spec, found, confirm)
