"""One ReLU-splitting search (branch and bound for high-dimensional inputs, MNIST: 784).

What is bounded on each sub-domain is a :class:`~robustprop.verify.engine.bab_common.Target`:
a group's linear atoms (:class:`~robustprop.verify.engine.bab_common.GroupSpec`, below), or
SCR's chord bounds of the softmax (:mod:`~robustprop.verify.engine.bab_scr`).

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
few sign-gradient steps while they take at most
:data:`~robustprop.verify.engine.relu_attack.PGD_SHARE` of the time; on a search's first
:data:`ATTACK_ALWAYS` batches, then on every :data:`ATTACK_EVERY`-th) and split on
one unstable free ReLU chosen by a BaBSR-like score:
``|min(λ, 0)| · (−l·u / (u − l))``, the loss of the bound through that neuron's upper line,
with ``λ`` the coefficient of its output in the target atoms' bound. ``holds`` when the stack
is empty (the two children of a split cover their parent); ``violated`` only with a replayed
candidate; ``unknown`` at the deadline or at the domain limit. An open sub-domain without a
free unstable ReLU (all fixed, yet β's few steps did not close it) is decided exactly by
:class:`~robustprop.verify.engine.backends.milp_leaf.LeafSolver` (a linear program over the
group's box with the splits fixed); its candidate, like any, counts only once replayed.

With one hidden ReLU layer and no other activation but the output clamp, so is an open
sub-domain whose free unstable ReLUs all enter the atoms' bound through their lower lines (no
score; :func:`_choose`'s ``lossless``): the linear relaxation is then exact, so a real
violation or short-of-optimal slopes keep it open. (Split on by the tie-breaker instead,
Fashion-MNIST adversarial SR at ε = 0.1, points 63 and 90, stalled at the leaf limit; now 63
holds in 5.4 s, 90 is violated in 4.1 s.)

A :class:`Search` holds its stack between calls: run until one deadline, it can be run again
later and goes on from the sub-domains it left open (:mod:`~robustprop.verify.engine.bab_relu`
shares time among the disjuncts of a query this way).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import torch
from torch import Tensor

from robustprop.properties.spec import Negation
from robustprop.verify.engine.alpha import AlphaConfig, Warm, alpha_spec_lower
from robustprop.verify.engine.bab_common import (
    BabOutcome,
    Confirm,
    Target,
)
from robustprop.verify.engine.backends.milp_leaf import LeafSolver
from robustprop.verify.engine.crown import Crown, LayerBounds, Slopes
from robustprop.verify.engine.network import Affine, Clip, Network, Relu
from robustprop.verify.engine.relaxation import clamp_split
from robustprop.verify.engine.relu_attack import AttackClock, attack
from robustprop.verify.engine.torch_net import to_torch
from robustprop.verify.engine.verdict import Status

__all__ = ["STALLED", "ReluSplitConfig", "Search", "relu_split"]

log = logging.getLogger(__name__)

#: A search attacks the open sub-domains of each of its first ATTACK_ALWAYS batches that leave
#: some open (:attr:`Search.batches` counts those), then of every ATTACK_EVERY-th: the hits
#: come early (Fashion-MNIST constraint-sr, SR at ε = 0.1, 15 points: all within a search's
#: first 9 batches), and on a query that holds the attack is spent in vain.
ATTACK_ALWAYS = 16
ATTACK_EVERY = 4

#: How a search ended when it gave up before its deadline (the reason starts with it, and its
#: outcome is ``stalled``): more sub-domains than ``max_domains`` or more fully split ones than
#: ``max_leaves``. Such a disjunct is not searched again; the exact backend gets it.
STALLED = "ReLU splitting: stalled"


@dataclass(frozen=True)
class ReluSplitConfig:
    """Sub-domains per batch, α/β effort, attack effort, stack limit, and how many fully split
    sub-domains one search decides by LP before it gives up (:data:`STALLED`).

    ``batch``: the tree does not depend on it; a bigger batch costs less per sub-domain. 512
    against 256: Fashion-MNIST constraint-sr, SR at ε = 0.1, 5 points twice, 26.7 s against
    29.5 s; GTSRB augment-FGSM, SR at ε = 0.05, 5 points, even; 1024 no better.

    ``max_leaves``: on MNIST-FC 256x2/prop_10 (disjunct 8, unsat) the search reached 230
    fully split sub-domains at depth 67 after 7.5 s and their LPs took 0.05 s each (12 s per
    batch) without an end in sight, while the MILP decides that disjunct alone in 5.8 s.

    ``alpha``: two Adam steps of learning rate 0.15 per sub-domain, from its parent's best
    slopes and multipliers. Against 0.3, the same queries proved with fewer sub-domains:
    Fashion-MNIST constraint-sr, SR at ε = 0.1, points 3, 48, 15, 49: 86.7 k, 143.6 k,
    136.3 k, 170.7 k against 88.7 k, 153.6 k, 141.3 k, 179.0 k; adversarial SR points 63, 2,
    5: 2-7 % fewer; GTSRB augment-FGSM, SR at ε = 0.05, points 0-3: 2-3 % fewer. 0.1 and 0.05
    took more than 0.15, 0.6 far more; one step instead of two, more on point 48 (215.7 k).
    MNIST-FC (VNN-COMP, 30 s): even.
    """

    batch: int = 512
    alpha: AlphaConfig = field(default_factory=lambda: AlphaConfig(steps=2, lr=0.15))
    attack_rows: int = 16
    attack_steps: int = 8
    max_domains: int = 20_000
    max_leaves: int = 64


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
    spec: Target,
    confirm: Confirm,
    deadline: float,
    config: ReluSplitConfig | None = None,
    group: Negation | None = None,
    *,
    root: LayerBounds | None = None,
    warm: bool = True,
) -> BabOutcome:
    """Decide one group (or another :class:`Target`) by ReLU splitting before ``deadline``
    (see the module doc); ``group``, the negation a :class:`GroupSpec` was made of, lets
    fully split sub-domains be decided exactly (without it, and unless the target splits its
    own part, they end the search as unknown); ``root``: CROWN's bounds over the group's
    box, if the caller has them; ``warm``: whether a sub-domain's slopes and multipliers start
    from its parent's best (else from CROWN's)."""
    return Search(crown, spec, confirm, config, group, root=root, warm=warm).run(deadline)


class Search:
    """One ReLU-splitting search, resumable: :meth:`run` until a deadline, and again later
    from the sub-domains it left open (none is lost or bounded twice)."""

    def __init__(
        self,
        crown: Crown,
        spec: Target,
        confirm: Confirm,
        config: ReluSplitConfig | None,
        group: Negation | None,
        *,
        root: LayerBounds | None,
        warm: bool,
        clock: AttackClock | None = None,
        model: torch.nn.Module | None = None,
    ) -> None:
        self.cfg = config or ReluSplitConfig()
        self.clock = clock or AttackClock()
        self.crown, self.spec, self.confirm, self.group, self.warm = (
            crown, spec, confirm, group, warm
        )  # fmt: skip
        network = crown.network
        self.layout = _Layout.of(network)
        # the float64 torch network for the attacks (callers with many searches share one)
        self.model = model if model is not None else to_torch(network, torch.float64)
        self.box_lo, self.box_hi = spec.lower[None], spec.upper[None]
        if root is None:
            with torch.no_grad():
                root = crown.layer_bounds(self.box_lo, self.box_hi)
        self.final_mag = root.magnitude[-1] if root.magnitude else None
        self.pre_lo, self.pre_hi = crown.affine_bounds(root)
        self.signs = torch.zeros_like(self.pre_lo, dtype=torch.int8)
        self.aux = spec.start()  # per sub-domain: the target's own data
        self.stack: Tensor | None = None  # warm: per sub-domain, its parent's best
        self.packing: _Packing | None = None
        self.leaf: LeafSolver | None = None  # made on the first fully split sub-domain
        # a sub-domain whose free ReLUs all enter losslessly is a leaf too (module doc)
        self.exact_leaves = group is not None and _one_relu_layer(network)
        self.done = 0
        self.batches = 0
        self.fully_split = 0
        # whether run() may go on: only after it stopped at its deadline. Any other ending
        # may have dropped the sub-domains of its last batch (a fully split one left
        # undecided, and those behind it), so a later run would prove only what is left.
        self.resumable = True
        self.pace = 0.0  # seconds per sub-domain of the last batch

    @property
    def open(self) -> int:
        """Sub-domains on the stack."""
        return int(self.signs.shape[0])

    def run(self, deadline: float) -> BabOutcome:
        """Search on until ``deadline``. Only a search stopped there (unknown, "time up") is
        :attr:`resumable`; running any other again is an error."""
        if not self.resumable:
            raise RuntimeError("this ReLU-splitting search has ended and cannot go on")
        while self.signs.shape[0]:
            if time.monotonic() >= deadline:
                return BabOutcome(Status.UNKNOWN, f"ReLU splitting: time up, "
                                  f"{self.signs.shape[0]} sub-domains open after {self.done}",
                                  self.done)  # fmt: skip
            before, began = self.done, time.monotonic()
            outcome = self._batch(deadline)
            self.pace = (time.monotonic() - began) / max(1, self.done - before)
            if outcome is not None:
                self.resumable = False
                return outcome
        self.resumable = False
        return BabOutcome(
            Status.HOLDS, f"ReLU splitting: {self.done} sub-domains, all proved", self.done
        )

    def _batch(self, deadline: float) -> BabOutcome | None:
        """Bound, attack and split one batch from the top of the stack: the search's outcome
        when it ends here, else None."""
        cfg, spec, layout, network = self.cfg, self.spec, self.layout, self.crown.network
        # at most what the time left allows at the last batch's pace (GTSRB SCR: 85 rows per
        # sub-domain, 15 ms each: a full batch of 512 would overrun a 10 s query by 8 s)
        fits = (deadline - time.monotonic()) / self.pace if self.pace > 0.0 else cfg.batch
        take = max(1, min(cfg.batch, self.signs.shape[0], int(fits)))
        lo, hi, sg, ax = (
            self.pre_lo[-take:], self.pre_hi[-take:], self.signs[-take:], self.aux[-take:]
        )  # fmt: skip
        self.pre_lo, self.pre_hi = self.pre_lo[:-take], self.pre_hi[:-take]
        self.signs, self.aux = self.signs[:-take], self.aux[:-take]
        start = None
        if self.stack is not None and self.packing is not None:  # only when warm
            start = self.packing.unpack(self.stack[-take:])
            self.stack = self.stack[:-take]
        self.done += take
        bounds = _rebuild(network, layout, self.box_lo, self.box_hi, lo, hi, sg, self.final_mag)
        split_signs = {  # every splittable layer, so that the multipliers keep their shape
            layout.affine[k] + 1: layout.part(sg, k)
            for k in range(len(layout.affine))
            if layout.splittable[k]
        }
        trace: dict[int, Tensor] = {}
        neg_lower, lam, found = alpha_spec_lower(
            self.crown, bounds, spec.rows_for(ax), cfg.alpha, signs=split_signs, trace=trace,
            start=start,
        )  # fmt: skip
        if self.warm and (found[0] or found[1]):  # a net without ReLUs has nothing to pass on
            self.packing = self.packing or _Packing.of(found)
        slack, ax = spec.assess(neg_lower, ax)
        open_ = ~spec.closed(slack)
        if not bool(open_.any()):
            return None
        self.batches += 1
        due = self.batches <= ATTACK_ALWAYS or self.batches % ATTACK_EVERY == 0
        hit = None
        if due:
            hit = attack(
                self.model, spec, self.box_lo, self.box_hi, lam[open_], cfg.attack_rows,
                cfg.attack_steps, self.confirm, self.clock,
            )  # fmt: skip
        if hit is not None:
            reason = f"ReLU splitting: counterexample after {self.done} sub-domains"
            return BabOutcome(Status.VIOLATED, reason, self.done, hit)
        lo, hi, sg, slack, ax = lo[open_], hi[open_], sg[open_], slack[open_], ax[open_]
        best = self.packing.pack(found)[open_] if self.packing is not None else None
        trace = {j: t[open_] for j, t in trace.items()}
        column, lossless = _choose(layout, spec, slack, trace, lo, hi, sg)
        if self.exact_leaves:  # one ReLU layer: nothing left to gain by splitting (module doc)
            column = torch.where(lossless, torch.full_like(column, -1), column)
        fixed = column < 0
        if bool(fixed.any()):
            halves = spec.split_aux(ax[fixed])
            if halves is not None:  # the target splits its own part instead
                f_lo, f_hi, f_sg = lo[fixed], hi[fixed], sg[fixed]
                f_best = best[fixed] if best is not None else None
                self._push([f_lo, f_lo], [f_hi, f_hi], [f_sg, f_sg], list(halves), f_best)
            elif self.group is None:
                reason = "ReLU splitting: an open sub-domain with every ReLU fixed"
                return BabOutcome(Status.UNKNOWN, reason, self.done)
            else:
                self.fully_split += int(fixed.sum())
                if self.fully_split > cfg.max_leaves:
                    reason = (
                        f"{STALLED}: {self.fully_split} fully split sub-domains after {self.done}"
                    )
                    return BabOutcome(Status.UNKNOWN, reason, self.done, stalled=True)
                if self.leaf is None:
                    self.leaf = LeafSolver(network, self.group)
                outcome = _decide_leaves(
                    self.leaf, layout, sg[fixed], self.confirm, deadline, self.done
                )
                if outcome is not None:
                    return outcome
            lo, hi, sg, column = lo[~fixed], hi[~fixed], sg[~fixed], column[~fixed]
            ax = ax[~fixed]
            best = best[~fixed] if best is not None else None
        rows = torch.arange(sg.shape[0], device=sg.device)
        active, inactive = sg.clone(), sg.clone()
        active[rows, column] = 1
        inactive[rows, column] = -1
        self._push([lo, lo], [hi, hi], [inactive, active], [ax, ax], best)
        if self.signs.shape[0] > cfg.max_domains:
            reason = f"{STALLED}: more than {cfg.max_domains} sub-domains open"
            return BabOutcome(Status.UNKNOWN, reason, self.done, stalled=True)
        return None

    def _push(
        self,
        lo: list[Tensor],
        hi: list[Tensor],
        signs: list[Tensor],
        aux: list[Tensor],
        best: Tensor | None,
    ) -> None:
        """Put two children per parent on top of the stack (their parent's best slopes and
        multipliers beside them when warm)."""
        self.pre_lo = torch.cat([self.pre_lo, *lo])
        self.pre_hi = torch.cat([self.pre_hi, *hi])
        self.signs = torch.cat([self.signs, *signs])
        self.aux = torch.cat([self.aux, *aux])
        if best is not None:
            parts = [best, best] if self.stack is None else [self.stack, best, best]
            self.stack = torch.cat(parts)


@dataclass(frozen=True)
class _Packing:
    """How one search's slopes and multipliers (:data:`~robustprop.verify.engine.alpha.Warm`)
    lie side by side in one ``(B, K, S)`` float32 tensor, to travel with the sub-domains."""

    slopes: tuple[tuple[int, tuple[int, ...]], ...]  # layer, the width of each of its tensors
    betas: tuple[tuple[int, int], ...]  # layer, width

    @classmethod
    def of(cls, warm: Warm) -> _Packing:
        slopes = tuple((j, tuple(t.shape[2] for t in warm[0][j])) for j in sorted(warm[0]))
        return cls(slopes, tuple((j, warm[1][j].shape[2]) for j in sorted(warm[1])))

    def pack(self, warm: Warm) -> Tensor:
        parts = [t for j, _ in self.slopes for t in warm[0][j]]
        parts += [warm[1][j] for j, _ in self.betas]
        return torch.cat(parts, dim=2).to(torch.float32)

    def unpack(self, flat: Tensor) -> Warm:
        widths = [w for _, ws in self.slopes for w in ws] + [w for _, w in self.betas]
        parts = iter(torch.split(flat.to(torch.float64), widths, dim=2))
        slopes: Slopes = {j: tuple(next(parts) for _ in ws) for j, ws in self.slopes}
        return slopes, {j: next(parts) for j, _ in self.betas}


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
            cur_lo, cur_hi = clamp_split(cur_lo, cur_hi, layout.part(signs, k))
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


def _one_relu_layer(network: Network) -> bool:
    """One ReLU layer and no other activation but a final clamp (the output's ±100)."""
    layers = network.layers
    body = layers[:-1] if layers and isinstance(layers[-1], Clip) else layers
    return sum(isinstance(layer, Relu) for layer in body) == 1 and not any(
        isinstance(layer, Clip) for layer in body
    )


def _choose(
    layout: _Layout,
    spec: Target,
    slack: Tensor,
    trace: dict[int, Tensor],
    lo: Tensor,
    hi: Tensor,
    signs: Tensor,
) -> tuple[Tensor, Tensor]:
    """Per open sub-domain, the column (in the layout's rows) of the ReLU to split (−1 when
    none is left), and whether no free unstable ReLU has a score but the tie-breaker's
    (each enters the target atoms' bound through its lower line: ``λ ≥ 0``)."""
    weight = spec.targets(slack)  # (N, K)
    scores = []
    lossy = torch.zeros(lo.shape[0], dtype=torch.bool, device=lo.device)
    for k, i in enumerate(layout.affine):
        low, u, s = layout.part(lo, k), layout.part(hi, k), layout.part(signs, k)
        free = (low < 0.0) & (u > 0.0) & (s == 0)
        if not layout.splittable[k] or (i + 1) not in trace:
            scores.append(torch.full_like(low, -1.0))
            continue
        coeff = (weight[:, :, None] * trace[i + 1]).sum(dim=1)  # (N, w)
        width = torch.where(free, u - low, torch.ones_like(u))
        intercept = torch.where(free, -low * u / width, torch.zeros_like(u))
        loss = (-coeff).clamp(min=0.0) * intercept
        lossy |= (free & (loss > 0.0)).any(dim=1)
        score = loss + 1e-6 * coeff.abs() * (u - low)
        scores.append(torch.where(free, score, torch.full_like(score, -1.0)))
    table = torch.cat(scores, dim=1)
    best, column = table.max(dim=1)
    return torch.where(best < 0.0, torch.full_like(column, -1), column), ~lossy
