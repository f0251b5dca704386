"""The attack on ReLU splitting's open sub-domains: the corners of the input box that maximise
the target's linear bounds on every batch, and a short PGD from the best of them while it has
taken at most :data:`PGD_SHARE` of the time (:class:`AttackClock`)."""

from __future__ import annotations

import time

import torch
from torch import Tensor

from robustprop.verify.engine.bab_common import (
    Confirm,
    Target,
    first_confirmed,
    pgd_candidates,
)
from robustprop.verify.engine.verdict import Verdict

__all__ = ["PGD_SHARE", "AttackClock", "attack"]

#: The most of a run's time that PGD on open sub-domains may take (the corners are tried on
#: every batch). On a query that holds it is spent in vain: GTSRB augment-FGSM, SR at ε = 0.05,
#: test point 2 (86 disjuncts, 29 k sub-domains) spent 1.7 of 7.7 s in it. Its hits come early
#: in a search (Fashion-MNIST constraint-sr, SR at ε = 0.1, 15 points: 2 by PGD, 2 by the
#: corners, all within a search's first 9 batches), which a share measured from the start keeps.
PGD_SHARE = 0.1


class AttackClock:
    """The time PGD on sub-domains has taken since a run began; it may run while that is at
    most :data:`PGD_SHARE` of the time elapsed (one clock may serve many searches)."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.spent = 0.0

    def allows(self) -> bool:
        return self.spent <= PGD_SHARE * (time.monotonic() - self.start)


def attack(
    model: torch.nn.Module,
    spec: Target,
    box_lo: Tensor,
    box_hi: Tensor,
    lam: Tensor,
    rows: int,
    steps: int,
    confirm: Confirm,
    clock: AttackClock,
) -> Verdict | None:
    """A confirmed violation among the corners of the box that maximise the atoms' linear
    bounds (``lam``: their input coefficients, ``(N, K, n)``; the best ``rows`` of them), or
    from a ``steps``-step PGD started there when ``clock`` allows; None if none replays."""
    corners = torch.where(lam > 0.0, box_lo[:, None, :], box_hi[:, None, :]).reshape(
        -1, box_lo.shape[1]
    )
    with torch.no_grad():
        score = spec.score(model(corners))
    order = torch.argsort(score, descending=True)[:rows]
    start = corners[order]
    hit = first_confirmed(model, spec, start, confirm)
    if hit is not None or not clock.allows():
        return hit
    began = time.monotonic()
    count = start.shape[0]
    found = pgd_candidates(
        model,
        spec,
        start,
        box_lo.expand(count, -1),
        box_hi.expand(count, -1),
        steps,
    )
    hit = first_confirmed(model, spec, found, confirm)
    clock.spent += time.monotonic() - began
    return hit
