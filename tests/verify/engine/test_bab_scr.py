"""SCR by ReLU splitting on chord bounds: the chords' algebra, the g-space split, and the
search's answers against the g-space refinement (the MILP) and sampling on random nets."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from robustprop.properties import Domain
from robustprop.properties.registry import make_property
from robustprop.properties.spec import Negation
from robustprop.verify.engine.bab_scr import (
    _CHORD_ROUNDING,
    SoftmaxTarget,
    _chords,
    softmax_split,
)
from robustprop.verify.engine.crown import Crown
from robustprop.verify.engine.point_query import PointDecider, Query
from robustprop.verify.engine.verdict import Status, Verdict
from robustprop.verify.run.stages import confirm
from tests.verify.engine.bab_nets import Net, make_net

finite = st.floats(-60.0, 60.0, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(finite, finite, st.floats(0.0, 1.0))
def test_a_chord_lies_above_exp_on_its_range(a: float, b: float, t: float) -> None:
    lo, hi = min(a, b), max(a, b)
    slope, intercept = _chords(
        torch.tensor([[lo]], dtype=torch.float64), torch.tensor([[hi]], dtype=torch.float64)
    )
    g = lo + t * (hi - lo)
    s, t0 = float(slope[0, 0]), float(intercept[0, 0])
    rounding = _CHORD_ROUNDING * (abs(s) * max(abs(lo), abs(hi)) + abs(t0))  # as assess adds
    assert s * g + t0 + rounding >= np.exp(g)


def test_overflowing_margins_close_nothing() -> None:
    slope, intercept = _chords(
        torch.tensor([[0.0, 0.0]], dtype=torch.float64),
        torch.tensor([[1.0, 800.0]], dtype=torch.float64),
    )
    assert float(slope[0, 1]) == 0.0 and float(intercept[0, 1]) == np.inf
    assert np.isfinite(float(intercept[0, 0]))


def scr_case(
    seed: int, eps: float, sizes: tuple[int, ...] = (20, 24, 24, 5)
) -> tuple[Net, Negation]:
    """SCR around a random centre with ``η`` 0.8 of the centre's own top probability (in
    ``[0.55, 0.9]``), so that the centre usually satisfies it and ``ε`` decides."""
    net = make_net(seed + 40, sizes, scale=2.0)
    center = np.random.default_rng(seed).random(sizes[0])
    y = net.replayer.evaluate64(center)[0]
    top = float(np.max(np.exp(y - y.max())) / np.exp(y - y.max()).sum())
    prop = make_property("scr", eps=eps, eta=min(0.9, max(0.55, 0.8 * top)))
    return net, prop.negation(center, y, int(np.argmax(y)), Domain())


def test_the_g_split_covers_its_parent() -> None:
    """Each split row's two children share the cut on one margin and keep the rest."""
    net, negation = scr_case(0, 0.1)
    crown = Crown(net.network)
    box = negation.disjuncts[0]
    root = crown.layer_bounds(crown.tensor(box.lower)[None], crown.tensor(box.upper)[None])
    target = SoftmaxTarget.of(crown, negation, root)
    aux = target.start().repeat(3, 1)
    halves = target.split_aux(aux)
    assert halves is not None
    left, right = halves
    g = target.G.shape[0]
    for row in range(3):
        changed_hi = torch.nonzero(left[row, g:] != aux[row, g:]).flatten()
        changed_lo = torch.nonzero(right[row, :g] != aux[row, :g]).flatten()
        assert changed_hi.tolist() == changed_lo.tolist() and len(changed_hi) == 1
        k = int(changed_hi[0])
        assert left[row, g + k] == right[row, k]
        assert aux[row, k] <= left[row, g + k] <= aux[row, g + k]


def softmax_sum(net: Net, negation: Negation, points: np.ndarray) -> np.ndarray:
    soft = negation.softmax
    assert soft is not None
    y = np.stack([net.replayer.evaluate64(p)[0] for p in points])
    g = np.delete(y - y[:, [soft.label]], soft.label, axis=1)
    return np.exp(g).sum(axis=1)


#: (sizes, seed, ε, answer): each pair sits on both sides of where the answer flips (found
#: by bisection; within 3 % of it), so that a search that is too loose, or unsound, fails one
#: side. (20, 4) has no ReLU: only the g-space split can close it.
CASES = [
    ((20, 24, 24, 5), 0, 0.0485, Status.HOLDS),
    ((20, 24, 24, 5), 0, 0.052, Status.VIOLATED),
    ((20, 24, 24, 5), 3, 0.0443, Status.HOLDS),
    ((20, 24, 24, 5), 3, 0.0475, Status.VIOLATED),
    ((20, 4), 0, 0.083, Status.HOLDS),
    ((20, 4), 0, 0.088, Status.VIOLATED),
    ((20, 4), 1, 0.0356, Status.HOLDS),
    ((20, 4), 1, 0.0382, Status.VIOLATED),
]


@pytest.mark.parametrize(("sizes", "seed", "eps", "answer"), CASES)
def test_softmax_split_agrees_with_the_refinement_and_with_sampling(
    sizes: tuple[int, ...], seed: int, eps: float, answer: Status
) -> None:
    """The search gives the case's answer; the g-space refinement on the MILP (no branch and
    bound) does not contradict it; a holds survives 2000 samples of the box; a violation
    replays beyond the threshold."""
    net, negation = scr_case(seed, eps, sizes)
    soft = negation.softmax
    assert soft is not None

    def check(x: np.ndarray) -> Verdict | None:
        return confirm(net.replayer, x, negation)

    outcome = softmax_split(Crown(net.network), negation, check, time.monotonic() + 30)
    assert outcome.status is answer, outcome.reason
    plain = PointDecider(net.network, net.replayer, "milp", bab_share=0.0)
    verdict = plain.decide(Query(0, negation), 60.0)
    assert verdict.status in (answer, Status.UNKNOWN), verdict.reason
    if answer is Status.HOLDS:
        box = negation.disjuncts[0]
        rng = np.random.default_rng(seed)
        points = box.lower + rng.random((2000, box.lower.size)) * (box.upper - box.lower)
        assert softmax_sum(net, negation, points).max() <= soft.threshold
    else:
        assert outcome.witness is not None and outcome.witness.witness is not None
        x = outcome.witness.witness
        assert softmax_sum(net, negation, x[None])[0] > soft.threshold
