"""Branch and bound by ReLU splitting, for high-dimensional inputs (MNIST: 784).

The input box stays whole; a sub-domain is the set of its inputs on which some ReLUs are fixed
active (``z ≥ 0``, sign ``+1``) or inactive (``z ≤ 0``, sign ``−1``). Every sub-domain keeps
the pre-activation bounds of its parent (CROWN's over the box at the root: sound for every
sub-domain, which is a subset), clamped at 0 for its split neurons, so a split neuron's
relaxation becomes exact; the split constraints themselves enter the atoms' bounds with
optimised multipliers (β-CROWN, :func:`~robustprop.verify.engine.alpha.alpha_spec_lower`
with ``signs``), together with α-optimised slopes. Intermediate bounds are not recomputed
(that back-substitution to a 784-wide input per sub-domain is what costs on a CPU).

Sub-domains are processed in batches from the top of a stack (depth first). A closed one is
dropped; each open one is attacked (the corners maximising the atoms' linear bounds, then a
few sign-gradient steps) and split on one unstable free ReLU chosen by a BaBSR-like score:
``|min(λ, 0)| · (−l·u / (u − l))``, the loss of the bound through that neuron's upper line,
with ``λ`` the coefficient of its output in the target atoms' bound. ``holds`` when the stack
is empty (the two children of a split cover their parent); ``violated`` only with a replayed
candidate; ``unknown`` at the deadline or at the domain limit. An open sub-domain without a
free unstable ReLU (all fixed, yet β's few steps did not close it) is decided exactly by
:class:`~robustprop.verify.engine.backends.milp_leaf.LeafSolver` (a linear program over the
group's box with the splits fixed); its candidate, like any, counts only once replayed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import Tensor

from robustprop.properties.spec import Negation
from robustprop.verify.engine.alpha import AlphaConfig, alpha_spec_lower
from robustprop.verify.engine.bab_common import (
    BabOutcome,
    Confirm,
    GroupSpec,
    first_confirmed,
    pgd_candidates,
)
from robustprop.verify.engine.backends.milp_leaf import LeafSolver
from robustprop.verify.engine.crown import Crown, LayerBounds
from robustprop.verify.engine.network import Affine, Clip, Network, Relu
from robustprop.verify.engine.torch_net import to_torch
from robustprop.verify.engine.verdict import Status, Verdict

__all__ = ["ReluSplitConfig", "relu_split"]


@dataclass(frozen=True)
class ReluSplitConfig:
    """Sub-domains per batch, α/β effort, attack effort, stack limit."""

    batch: int = 256
    alpha: AlphaConfig = field(default_factory=lambda: AlphaConfig(steps=6, lr=0.2))
    attack_rows: int = 16
    attack_steps: int = 8
    max_domains: int = 20_000


@dataclass(frozen=True, eq=False)
class _Layout:
    """Where each affine layer's outputs sit in the concatenated per-domain rows."""

    affine: tuple[int, ...]  # layer indices of the affine layers
    offsets: tuple[int, ...]
    widths: tuple[int, ...]
    splittable: tuple[bool, ...]  # a Relu follows

    @classmethod
    def of(cls, network: Network) -> _Layout:
        affine, offsets, widths, split = [], [], [], []
        total = 0
        layers = network.layers
        for i, layer in enumerate(layers):
            if isinstance(layer, Affine):
                affine.append(i)
                offsets.append(total)
                widths.append(layer.out_size)
                split.append(i + 1 < len(layers) and isinstance(layers[i + 1], Relu))
                total += layer.out_size
        return cls(tuple(affine), tuple(offsets), tuple(widths), tuple(split))

    @property
    def total(self) -> int:
        return self.offsets[-1] + self.widths[-1] if self.offsets else 0

    def part(self, rows: Tensor, k: int) -> Tensor:
        return rows[:, self.offsets[k] : self.offsets[k] + self.widths[k]]


def relu_split(
    crown: Crown,
    spec: GroupSpec,
    confirm: Confirm,
    deadline: float,
    config: ReluSplitConfig | None = None,
    group: Negation | None = None,
) -> BabOutcome:
    """Decide one group by ReLU splitting before ``deadline`` (see the module doc);
    ``group``, the negation ``spec`` was made of, lets fully split sub-domains be decided
    exactly (without it they end the search as unknown)."""
    cfg = config or ReluSplitConfig()
    network = crown.network
    layout = _Layout.of(network)
    model = to_torch(network, torch.float64)
    box_lo, box_hi = spec.lower[None], spec.upper[None]
    with torch.no_grad():
        root = crown.layer_bounds(box_lo, box_hi)
    final_mag = root.magnitude[-1] if root.magnitude else None
    pre_lo = torch.cat([root.lower[i] for i in layout.affine], dim=1)
    pre_hi = torch.cat([root.upper[i] for i in layout.affine], dim=1)
    signs = torch.zeros_like(pre_lo, dtype=torch.int8)
    leaves: list[LeafSolver] = []  # made on the first fully split sub-domain
    done = 0
    while signs.shape[0]:
        if time.monotonic() >= deadline:
            return BabOutcome(Status.UNKNOWN, f"ReLU splitting: time up, {signs.shape[0]} "
                              f"sub-domains open after {done}", done)  # fmt: skip
        take = min(cfg.batch, signs.shape[0])
        lo, hi, sg = pre_lo[-take:], pre_hi[-take:], signs[-take:]
        pre_lo, pre_hi, signs = pre_lo[:-take], pre_hi[:-take], signs[:-take]
        done += take
        bounds = _rebuild(network, layout, box_lo, box_hi, lo, hi, sg, final_mag)
        split_signs = {
            layout.affine[k] + 1: layout.part(sg, k)
            for k in range(len(layout.affine))
            if layout.splittable[k] and bool(layout.part(sg, k).any())
        }
        trace: dict[int, Tensor] = {}
        neg_lower, lam = alpha_spec_lower(
            crown, bounds, spec.spec(take), cfg.alpha, signs=split_signs, trace=trace
        )
        slack = spec.slack(neg_lower)
        open_ = ~spec.closed(slack)
        if not bool(open_.any()):
            continue
        hit = _attack(model, spec, box_lo, box_hi, lam[open_], cfg, confirm)
        if hit is not None:
            reason = f"ReLU splitting: counterexample after {done} sub-domains"
            return BabOutcome(Status.VIOLATED, reason, done, hit)
        lo, hi, sg, slack = lo[open_], hi[open_], sg[open_], slack[open_]
        trace = {j: t[open_] for j, t in trace.items()}
        column = _choose(layout, spec, slack, trace, lo, hi, sg)
        fixed = column < 0
        if bool(fixed.any()):
            if group is None:
                reason = "ReLU splitting: an open sub-domain with every ReLU fixed"
                return BabOutcome(Status.UNKNOWN, reason, done)
            if not leaves:
                leaves.append(LeafSolver(network, group))
            outcome = _decide_leaves(leaves[0], layout, sg[fixed], confirm, deadline, done)
            if outcome is not None:
                return outcome
            lo, hi, sg, column = lo[~fixed], hi[~fixed], sg[~fixed], column[~fixed]
        rows = torch.arange(sg.shape[0], device=sg.device)
        active, inactive = sg.clone(), sg.clone()
        active[rows, column] = 1
        inactive[rows, column] = -1
        pre_lo = torch.cat([pre_lo, lo, lo])
        pre_hi = torch.cat([pre_hi, hi, hi])
        signs = torch.cat([signs, inactive, active])
        if signs.shape[0] > cfg.max_domains:
            return BabOutcome(Status.UNKNOWN, "ReLU splitting: too many sub-domains", done)
    return BabOutcome(Status.HOLDS, f"ReLU splitting: {done} sub-domains, all proved", done)


def _decide_leaves(
    leaf: LeafSolver,
    layout: _Layout,
    signs: Tensor,
    confirm: Confirm,
    deadline: float,
    done: int,
) -> BabOutcome | None:
    """Decide fully split sub-domains exactly: None when every one is closed, else the
    search's outcome (a replayed violation, or unknown)."""
    for row in signs.cpu().numpy():
        parts = [row[layout.offsets[k] : layout.offsets[k] + layout.widths[k]]
                 for k in range(len(layout.affine))]  # fmt: skip
        status, x, reason = leaf.solve(parts, deadline)
        if status is Status.HOLDS:
            continue
        if status is Status.VIOLATED and x is not None:
            hit = confirm(x)
            if hit is not None:
                reason = f"ReLU splitting: counterexample (LP) after {done} sub-domains"
                return BabOutcome(Status.VIOLATED, reason, done, hit)
            reason = "the LP's point failed replay"
        return BabOutcome(
            Status.UNKNOWN, f"ReLU splitting: a fully split sub-domain: {reason}", done
        )
    return None


def _rebuild(
    network: Network,
    layout: _Layout,
    box_lo: Tensor,
    box_hi: Tensor,
    lo: Tensor,
    hi: Tensor,
    signs: Tensor,
    final_mag: Tensor | None,
) -> LayerBounds:
    """The sub-domains' bounds of every layer from their stored pre-activation bounds,
    clamped at 0 for split neurons. (Magnitudes are only read for the output layer; the
    others are placeholders.)"""
    count = lo.shape[0]
    los: list[Tensor] = []
    his: list[Tensor] = []
    k = 0
    cur_lo = cur_hi = box_lo.expand(count, -1)
    for layer in network.layers:
        if isinstance(layer, Affine):
            cur_lo, cur_hi = layout.part(lo, k), layout.part(hi, k)
            s = layout.part(signs, k)
            cur_lo = torch.where(s > 0, cur_lo.clamp(min=0.0), cur_lo)
            cur_hi = torch.where(s < 0, cur_hi.clamp(max=0.0), cur_hi)
            k += 1
        elif isinstance(layer, Relu):
            cur_lo, cur_hi = cur_lo.clamp(min=0.0), cur_hi.clamp(min=0.0)
        elif isinstance(layer, Clip):
            cur_lo = cur_lo.clamp(min=layer.lo, max=layer.hi)
            cur_hi = cur_hi.clamp(min=layer.lo, max=layer.hi)
        los.append(cur_lo)
        his.append(cur_hi)
    mags = [torch.maximum(a.abs(), b.abs()) for a, b in zip(los, his, strict=True)]
    if final_mag is not None and mags:
        mags[-1] = torch.maximum(mags[-1], final_mag.expand(count, -1))
    return LayerBounds(
        box_lo.expand(count, -1), box_hi.expand(count, -1), tuple(los), tuple(his), tuple(mags)
    )


def _choose(
    layout: _Layout,
    spec: GroupSpec,
    slack: Tensor,
    trace: dict[int, Tensor],
    lo: Tensor,
    hi: Tensor,
    signs: Tensor,
) -> Tensor:
    """Per open sub-domain, the column (in the layout's rows) of the ReLU to split; −1 when
    none is left."""
    weight = spec.targets(slack)  # (N, K)
    scores = []
    for k, i in enumerate(layout.affine):
        low, u, s = layout.part(lo, k), layout.part(hi, k), layout.part(signs, k)
        free = (low < 0.0) & (u > 0.0) & (s == 0)
        if not layout.splittable[k] or (i + 1) not in trace:
            scores.append(torch.full_like(low, -1.0))
            continue
        coeff = (weight[:, :, None] * trace[i + 1]).sum(dim=1)  # (N, w)
        width = torch.where(free, u - low, torch.ones_like(u))
        intercept = torch.where(free, -low * u / width, torch.zeros_like(u))
        score = (-coeff).clamp(min=0.0) * intercept + 1e-6 * coeff.abs() * (u - low)
        scores.append(torch.where(free, score, torch.full_like(score, -1.0)))
    table = torch.cat(scores, dim=1)
    best, column = table.max(dim=1)
    return torch.where(best < 0.0, torch.full_like(column, -1), column)


def _attack(
    model: torch.nn.Module,
    spec: GroupSpec,
    box_lo: Tensor,
    box_hi: Tensor,
    lam: Tensor,
    cfg: ReluSplitConfig,
    confirm: Confirm,
) -> Verdict | None:
    """A confirmed violation among the corners maximising the open sub-domains' atom bounds
    and a short PGD from them, or None."""
    corners = torch.where(lam > 0.0, box_lo[:, None, :], box_hi[:, None, :]).reshape(
        -1, box_lo.shape[1]
    )
    with torch.no_grad():
        score = spec.score(model(corners))
    order = torch.argsort(score, descending=True)[: cfg.attack_rows]
    start = corners[order]
    hit = first_confirmed(model, spec, start, confirm)
    if hit is not None:
        return hit
    count = start.shape[0]
    found = pgd_candidates(
        model,
        spec,
        start,
        box_lo.expand(count, -1),
        box_hi.expand(count, -1),
        cfg.attack_steps,
    )
    return first_confirmed(model, spec, found, confirm)
