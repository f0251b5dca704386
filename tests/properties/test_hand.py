"""Hand-computed readings of SR, LR, CR and SCR on the hand net ``y = (16(x0 − x1), −y0, 1)``.

Center ``x̂ = (0.5, 0.375)``: ``r = (2, −2, 1)``, ``c = 0``; ``ε = 0.125`` (all values dyadic,
so the arithmetic is exact).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from robustprop.properties import CR, LR, SCR, SR, Atom, Domain, InputError, Property, References
from tests.properties.nets import hand_net

EPS = 0.125
CENTER = (0.5, 0.375)
X1 = (0.5625, 0.375)  # y = (3, −3, 1): ‖y − r‖∞ = 1, d = 1/16
X2 = (0.375, 0.5)  # y = (−2, 2, 1): ‖y − r‖∞ = 4, d = 1/8, class 1 wins
X3 = (0.4375, 0.375)  # y = (1, −1, 1): ‖y − r‖∞ = 1, d = 1/16, tie between classes 0 and 2


@torch.no_grad()
def readings(prop: Property, point: tuple[float, float]) -> tuple[bool, float]:
    """(predicate, margin) at one point."""
    net = hand_net()
    centers = torch.tensor([CENTER], dtype=torch.float64)
    x = torch.tensor([point], dtype=torch.float64)
    refs = prop.references(net(centers))
    y = net(x)
    holds = bool(prop.predicate(x, y, centers, refs)[0])
    margin = float(prop.margin(x, y, centers, refs)[0])
    return holds, margin


@torch.no_grad()
def loss_at(prop: Property, point: tuple[float, float]) -> float:
    net = hand_net()
    centers = torch.tensor([CENTER], dtype=torch.float64)
    x = torch.tensor([point], dtype=torch.float64)
    return float(prop.loss(x, net(x), centers, prop.references(net(centers)))[0])


def test_hand_net_outputs() -> None:
    net = hand_net()
    y = net(torch.tensor([CENTER, X1, X2, X3], dtype=torch.float64))
    expected = [[2, -2, 1], [3, -3, 1], [-2, 2, 1], [1, -1, 1]]
    assert y.tolist() == expected


@pytest.mark.parametrize(
    ("point", "holds", "margin", "loss"),
    [(CENTER, True, -1.0, 0.0), (X1, True, 0.0, 0.0), (X2, False, 3.0, 3.0), (X3, True, 0.0, 0.0)],
)
def test_sr(point: tuple[float, float], holds: bool, margin: float, loss: float) -> None:
    prop = SR(eps=EPS, delta=1.0)
    assert readings(prop, point) == (holds, margin)
    assert loss_at(prop, point) == loss


@pytest.mark.parametrize(
    ("lipschitz", "point", "holds", "margin"),
    [
        (16.0, CENTER, True, 0.0),  # f(x̂) = r exactly, d = 0
        (16.0, X1, True, 0.0),  # 1 ≤ 16 · 1/16, at equality
        (8.0, X1, False, 0.5),  # 1 > 8 · 1/16
        (16.0, X2, False, 2.0),  # 4 > 16 · 1/8
        (16.0, X3, True, 0.0),
    ],
)
def test_lr(lipschitz: float, point: tuple[float, float], holds: bool, margin: float) -> None:
    prop = LR(eps=EPS, lipschitz=lipschitz)
    assert readings(prop, point) == (holds, margin)
    assert loss_at(prop, point) == max(margin, 0.0)


@pytest.mark.parametrize(
    ("point", "holds", "margin"),
    [(CENTER, True, -1.0), (X1, True, -2.0), (X2, False, 4.0), (X3, False, 0.0)],
)
def test_cr(point: tuple[float, float], holds: bool, margin: float) -> None:
    # margin = max_{j≠0} y_j − y_0; X3 ties y_0 = y_2 = 1, which CR counts as a violation.
    assert readings(CR(eps=EPS), point) == (holds, margin)


def test_cr_has_no_loss() -> None:
    with pytest.raises(InputError, match="SCR"):
        loss_at(CR(eps=EPS), X1)
    assert not CR.has_loss
    assert SR.has_loss and LR.has_loss and SCR.has_loss


def softmax0(y: list[float]) -> float:
    return math.exp(y[0]) / sum(math.exp(v) for v in y)


@pytest.mark.parametrize(("point", "y"), [(CENTER, [2, -2, 1]), (X1, [3, -3, 1]), (X3, [1, -1, 1])])
def test_scr(point: tuple[float, float], y: list[float]) -> None:
    prop = SCR(eps=EPS, eta=0.52)
    p0 = softmax0(y)
    holds, margin = readings(prop, point)
    assert holds == (p0 >= 0.52)
    assert margin == pytest.approx(0.52 - p0, abs=1e-12)
    assert loss_at(prop, point) == pytest.approx(max(0.52 - p0, 0.0), abs=1e-12)
    assert holds == (point != X3)  # p0(X3) = e/(2e + 1/e) ≈ 0.468


def test_label_reference_keeps_scores() -> None:
    net = hand_net()
    centers = torch.tensor([CENTER], dtype=torch.float64)
    refs = CR(reference="label").references(net(centers), torch.tensor([1]))
    assert refs.classes.tolist() == [1]
    assert refs.scores.tolist() == [[2.0, -2.0, 1.0]]
    # The center itself is then misclassified: CR fails there.
    assert not bool(CR(reference="label").predicate(centers, net(centers), centers, refs)[0])


def test_label_reference_needs_valid_labels() -> None:
    y = torch.zeros(2, 3)
    with pytest.raises(InputError, match="labels=None"):
        SCR(reference="label").references(y)
    with pytest.raises(InputError, match="got 3"):
        SCR(reference="label").references(y, torch.tensor([0, 3]))
    with pytest.raises(InputError, match=r"shape \(2,\)"):
        SCR(reference="label").references(y, torch.tensor([0.0, 1.0]))


def test_shape_mismatch_is_an_input_error() -> None:
    refs = References(torch.zeros(2, 3), torch.zeros(2, dtype=torch.int64))
    with pytest.raises(InputError, match="do not match"):
        SR().predicate(torch.zeros(2, 2), torch.zeros(1, 3), torch.zeros(2, 2), refs)
    with pytest.raises(InputError, match="do not match centers"):
        LR().margin(torch.zeros(2, 2), torch.zeros(2, 3), torch.zeros(2, 3), refs)


# --- negations (one point, float64) -----------------------------------------------------------

R = np.array([2.0, -2.0, 1.0])
BOX = (np.array([0.375, 0.25]), np.array([0.625, 0.5]))


def check_box(lower: np.ndarray, upper: np.ndarray) -> None:
    assert lower.dtype == np.float64 and upper.dtype == np.float64
    np.testing.assert_array_equal(lower, BOX[0])
    np.testing.assert_array_equal(upper, BOX[1])


def test_sr_negation() -> None:
    neg = SR(eps=EPS, delta=1.0).negation(np.array(CENTER), R, 0, Domain(), tau=0.25)
    assert neg.tau == 0.25 and neg.distance is None and neg.softmax is None
    assert len(neg.disjuncts) == 6
    atoms = [d.atoms for d in neg.disjuncts]
    assert atoms[0] == (Atom(((0, 1.0),), rhs=3.25),)  # y0 − 2 ≥ 1.25
    assert atoms[1] == (Atom(((0, -1.0),), rhs=-0.75),)  # 2 − y0 ≥ 1.25
    assert atoms[3] == (Atom(((1, -1.0),), rhs=3.25),)  # −2 − y1 ≥ 1.25
    for d in neg.disjuncts:
        check_box(d.lower, d.upper)
    assert "SR" in neg.description
    net = hand_net()
    for point, violated in [(X1, False), (X2, True), (CENTER, False)]:
        y = net(torch.tensor([point], dtype=torch.float64))[0].detach().numpy()
        assert neg.is_satisfied_by(np.array(point), y) == violated


def test_lr_negation() -> None:
    neg = LR(eps=EPS, lipschitz=8.0).negation(np.array(CENTER), R, 0, Domain(), tau=0.25)
    assert neg.distance is not None and neg.distance.eps == EPS
    np.testing.assert_array_equal(neg.distance.center, np.array(CENTER))
    assert len(neg.disjuncts) == 6
    assert neg.disjuncts[0].atoms == (Atom(((0, 1.0),), rhs=2.25, dist_coeff=-8.0),)
    assert neg.disjuncts[5].atoms == (Atom(((2, -1.0),), rhs=-0.75, dist_coeff=-8.0),)
    for d in neg.disjuncts:
        check_box(d.lower, d.upper)
    net = hand_net()
    # X1: |y0 − 2| = 1, L·d = 0.5: violated by 0.5 > τ. X3 with L = 8: same numbers.
    for point, violated in [(X1, True), (X3, True), (CENTER, False)]:
        y = net(torch.tensor([point], dtype=torch.float64))[0].detach().numpy()
        assert neg.is_satisfied_by(np.array(point), y) == violated


def test_cr_negation() -> None:
    neg = CR(eps=EPS).negation(np.array(CENTER), R, 0, Domain(), tau=0.25)
    assert neg.tau == 0.0
    assert [d.atoms for d in neg.disjuncts] == [
        (Atom(((1, 1.0), (0, -1.0)), rhs=0.0),),
        (Atom(((2, 1.0), (0, -1.0)), rhs=0.0),),
    ]
    net = hand_net()
    for point, violated in [(X1, False), (X2, True), (X3, True)]:  # X3: a tie is a violation
        y = net(torch.tensor([point], dtype=torch.float64))[0].detach().numpy()
        assert neg.is_satisfied_by(np.array(point), y) == violated


def test_scr_negation() -> None:
    neg = SCR(eps=EPS, eta=0.52).negation(np.array(CENTER), R, 0, Domain(), tau=1e-6)
    assert len(neg.disjuncts) == 1 and neg.disjuncts[0].atoms == ()
    check_box(neg.disjuncts[0].lower, neg.disjuncts[0].upper)
    assert neg.softmax is not None
    assert neg.softmax.label == 0 and neg.softmax.eta == 0.52
    assert neg.tau == 1e-6
    net = hand_net()
    for point, violated in [(X1, False), (X3, True)]:
        y = net(torch.tensor([point], dtype=torch.float64))[0].detach().numpy()
        assert neg.is_satisfied_by(np.array(point), y) == violated


def test_negation_box_is_clipped_to_domain() -> None:
    neg = SR(eps=0.25).negation(np.array([0.0, 0.875]), R, 0, Domain())
    np.testing.assert_array_equal(neg.disjuncts[0].lower, [0.0, 0.625])
    np.testing.assert_array_equal(neg.disjuncts[0].upper, [0.25, 1.0])


@pytest.mark.parametrize("prop", [SR(), LR(), CR(), SCR()])
def test_negation_rejects_bad_inputs(prop: Property) -> None:
    with pytest.raises(InputError, match="tau must be >= 0, got -1"):
        prop.negation(np.array(CENTER), R, 0, Domain(), tau=-1.0)
    with pytest.raises(InputError, match="got 3"):
        prop.negation(np.array(CENTER), R, 3, Domain())
    with pytest.raises(InputError, match="outside the domain"):
        prop.negation(np.array([1.5, 0.5]), R, 0, Domain())


@pytest.mark.parametrize("prop", [CR(), SCR()])
def test_classification_negation_needs_two_classes(prop: Property) -> None:
    with pytest.raises(InputError, match="at least 2 classes, got m=1"):
        prop.negation(np.array(CENTER), np.array([1.0]), 0, Domain())
