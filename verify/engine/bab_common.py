"""What both branch-and-bound searches share: the output specification of one group of
disjuncts, its batched bounds and closing test, and the in-batch attack.

A *group* is a set of disjuncts with one input box (:func:`~robustprop.verify.engine.backends.
base.group_by_box`); its atoms, and atoms they imply (the means of pairs of atoms of one
disjunct), become the rows of a specification matrix ``C`` (``K × m``) with right-hand sides
``rhs`` and a membership matrix ``M`` (``K × D``, row ``k`` belongs to disjunct ``d``). Over a
sub-domain, row ``k`` is impossible when a sound upper bound of ``C_k·y`` is below ``rhs_k``;
a disjunct is impossible when one of its rows is; the sub-domain is *closed*
(holds there) when every disjunct is. A point is a *candidate* when its float64 IR output
satisfies every atom of one disjunct; candidates only count after onnxruntime replay (the
caller's ``confirm``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import Tensor, nn

from robustprop.properties.spec import FloatArray, Negation
from robustprop.verify.engine.verdict import Status, Verdict

__all__ = ["BabOutcome", "BabState", "Confirm", "GroupSpec", "Target", "pgd_candidates"]

#: Replays a candidate; a ``violated`` verdict when it is a real counterexample, else None.
Confirm = Callable[[FloatArray], Verdict | None]


@dataclass(frozen=True, eq=False)
class BabState:
    """Where an unfinished search of one negation stopped, to resume it in the same process
    on the same network and negation: the groups before ``group`` are proved; ``lower`` and
    ``upper`` (``(N, n)``) are the open sub-domains of ``group`` (input splitting; the closed
    ones and these cover its box), or None to start that group afresh, and ``prior`` their
    parents' bounds of every affine layer (``Crown.affine_bounds``); ``proved``: the
    disjuncts of ``group`` (positions in it) already proved (ReLU splitting)."""

    group: int
    lower: Tensor | None = None
    upper: Tensor | None = None
    proved: frozenset[int] = frozenset()
    prior: tuple[Tensor, Tensor] | None = None


@dataclass(frozen=True)
class BabOutcome:
    """What a branch-and-bound search made of one group (or negation)."""

    status: Status
    reason: str
    domains: int = 0  # sub-domains bounded
    witness: Verdict | None = None  # the confirmed violation, for VIOLATED
    state: BabState | None = None  # for UNKNOWN at the deadline: where to resume
    stalled: bool = False  # UNKNOWN before the deadline: searching on is not worth it


class Target(Protocol):
    """What ReLU splitting bounds and attacks on each sub-domain: ``K`` specification rows,
    whose lower bounds decide whether a sub-domain is closed. A target may carry ``A`` numbers
    per sub-domain (``aux``, ``(N, A)``) that its rows depend on and that a sub-domain hands to
    its children (:class:`GroupSpec`: none; SCR: its margins' bounds)."""

    @property
    def lower(self) -> Tensor:
        """``(n,)``: the input box's lower corner."""
        ...

    @property
    def upper(self) -> Tensor: ...

    def start(self) -> Tensor:
        """``(1, A)``: the root's ``aux``."""
        ...

    def rows_for(self, aux: Tensor) -> Tensor:
        """``(N, K, m)``: the rows to bound on ``N`` sub-domains."""
        ...

    def assess(self, neg_lower: Tensor, aux: Tensor) -> tuple[Tensor, Tensor]:
        """From the rows' lower bounds ``(N, K)``: the slack (for :meth:`closed` and
        :meth:`targets`) and the ``aux`` the sub-domains hand to their children."""
        ...

    def closed(self, slack: Tensor) -> Tensor:
        """``(N,)``: whether the sub-domain is proved to contain no violation."""
        ...

    def targets(self, slack: Tensor) -> Tensor:
        """``(N, K)``: the weight of each row in the branching heuristic."""
        ...

    def score(self, y: Tensor) -> Tensor:
        """``(N,)``: how far outputs ``y`` are into the violation (a candidate where ``≥ 0``)."""
        ...

    def split_aux(self, aux: Tensor) -> tuple[Tensor, Tensor] | None:
        """For sub-domains without a ReLU left to split: the ``aux`` of two children that
        together cover each of them, or None when the target cannot split its own part."""
        ...


@dataclass(frozen=True, eq=False)
class GroupSpec:
    """The atoms of one group as tensors (see the module doc)."""

    C: Tensor  # (K, m)
    rhs: Tensor  # (K,)
    member: Tensor  # (K, D) float 0/1
    lower: Tensor  # (n,) the group's input box
    upper: Tensor
    empty_disjunct: bool  # a disjunct without atoms: the whole box is in the negation

    @classmethod
    def of(cls, group: Negation, m: int, device: torch.device) -> GroupSpec:
        rows: list[tuple[int, FloatArray, float]] = []
        for d, disjunct in enumerate(group.disjuncts):
            own = []
            for atom in disjunct.atoms:
                c = np.zeros(m)
                for j, coeff in atom.terms:
                    c[j] += coeff
                own.append((c, atom.rhs))
            rows.extend((d, c, r) for c, r in own)
            rows.extend((d, c, r) for c, r in _combinations(own))
        C = np.zeros((max(1, len(rows)), m))
        rhs = np.full(max(1, len(rows)), np.inf)
        member = np.zeros((max(1, len(rows)), len(group.disjuncts)))
        for k, (d, c, r) in enumerate(rows):
            C[k], rhs[k], member[k, d] = c, r, 1.0
        box = group.disjuncts[0]

        def t(a: FloatArray) -> Tensor:
            return torch.tensor(np.array(a, dtype=np.float64), device=device)

        return cls(
            t(C),
            t(rhs),
            t(member),
            t(box.lower),
            t(box.upper),
            any(not d.atoms for d in group.disjuncts),
        )

    @property
    def rows(self) -> int:
        return int(self.C.shape[0])

    def spec(self, count: int) -> Tensor:
        """``(count, K, m)``: the rows ``−C`` whose lower bounds are ``−ub(C·y)``."""
        return (-self.C).expand(count, -1, -1)

    # -- as a :class:`Target` (no per-sub-domain data) --

    def start(self) -> Tensor:
        return self.C.new_zeros((1, 0))

    def rows_for(self, aux: Tensor) -> Tensor:
        return self.spec(aux.shape[0])

    def assess(self, neg_lower: Tensor, aux: Tensor) -> tuple[Tensor, Tensor]:
        return self.slack(neg_lower), aux

    def split_aux(self, aux: Tensor) -> tuple[Tensor, Tensor] | None:
        return None  # fully split sub-domains go to the LP

    def slack(self, neg_lower: Tensor) -> Tensor:
        """``(N, K)``: ``ub(C_k·y) − rhs_k`` from the lower bounds of ``−C·y``; an atom is
        impossible where this is ``< 0``."""
        return -neg_lower - self.rhs

    def impossible(self, slack: Tensor) -> Tensor:
        """``(N, D)``: whether each disjunct has an impossible atom."""
        return ((slack < 0.0).to(slack.dtype) @ self.member) > 0.0

    def closed(self, slack: Tensor) -> Tensor:
        """``(N,)``: whether every disjunct has an impossible atom."""
        return self.impossible(slack).all(dim=1)

    def score(self, y: Tensor) -> Tensor:
        """``(N,)``: ``max_d min_{k∈d} (C_k·y − rhs_k)``; a candidate where ``≥ 0``."""
        value = y @ self.C.T - self.rhs  # (N, K)
        big = torch.finfo(value.dtype).max
        per = torch.where(self.member[None] > 0, value[:, :, None], big)  # (N, K, D)
        return per.min(dim=1).values.max(dim=1).values

    def targets(self, slack: Tensor) -> Tensor:
        """``(N, K)`` 0/1: per open disjunct, its atom closest to impossible (the rows whose
        bounds a split should tighten)."""
        big = torch.finfo(slack.dtype).max
        per = torch.where(self.member[None] > 0, slack[:, :, None], big)  # (N, K, D)
        best = per.argmin(dim=1)  # (N, D)
        open_d = ~((slack[:, :, None] < 0.0) & (self.member[None] > 0)).any(dim=1)
        out = torch.zeros_like(slack)
        rows = torch.arange(slack.shape[0], device=slack.device)
        for d in range(self.member.shape[1]):
            keep = open_d[:, d]
            out[rows[keep], best[keep, d]] = 1.0
        return out


def _combinations(atoms: list[tuple[FloatArray, float]]) -> list[tuple[FloatArray, float]]:
    """Atoms implied by a conjunction: the means of every pair and of all (at most 6 atoms).

    ``c_a·y ≥ r_a`` and ``c_b·y ≥ r_b`` imply ``(c_a + c_b)/2·y ≥ (r_a + r_b)/2``; its upper
    bound can fall below its right side when neither atom's does (atoms that contradict each
    other only jointly, or whose binding atom changes inside a sub-domain)."""
    if len(atoms) < 2 or len(atoms) > 6:
        return []
    out = [((a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0) for a, b in itertools.combinations(atoms, 2)]
    if len(atoms) > 2:
        out.append((np.mean([a[0] for a in atoms], axis=0), float(np.mean([a[1] for a in atoms]))))
    return out


def pgd_candidates(
    model: nn.Module,
    spec: Target,
    start: Tensor,
    lower: Tensor,
    upper: Tensor,
    steps: int,
) -> Tensor:
    """Sign-gradient ascent of :meth:`GroupSpec.score` from ``start`` (``(N, n)``), each row
    kept in its box; returns the best point of each row."""
    x = start.clone()
    best_x = x.clone()
    with torch.no_grad():
        best = spec.score(model(x))
    step = (upper - lower) / 4.0
    for k in range(steps):
        x.requires_grad_(True)
        with torch.enable_grad():
            value = spec.score(model(x))
            (grad,) = torch.autograd.grad(value.sum(), x)
        with torch.no_grad():
            better = value.detach() > best
            best = torch.where(better, value.detach(), best)
            best_x = torch.where(better[:, None], x.detach(), best_x)
            x = torch.minimum(torch.maximum(x.detach() + step * grad.sign(), lower), upper)
        if k % 3 == 2:
            step = step / 2.0
    with torch.no_grad():
        value = spec.score(model(x))
        better = value > best
        return torch.where(better[:, None], x, best_x)


def first_confirmed(
    model: nn.Module, spec: Target, points: Tensor, confirm: Confirm, limit: int = 8
) -> Verdict | None:
    """The first of ``points`` (best IR score first, at most ``limit`` tried) that replays as
    a violation."""
    with torch.no_grad():
        score = spec.score(model(points))
    order = torch.argsort(score, descending=True)[:limit]
    for i in order.tolist():
        if float(score[i]) < 0.0:
            break
        hit = confirm(points[i].cpu().numpy().copy())
        if hit is not None:
            return hit
    return None
