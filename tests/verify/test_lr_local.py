"""LR's small-ball analysis: sound on random small networks, checked by dense sampling."""

from __future__ import annotations

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from robustprop.properties import Domain, make_property
from robustprop.verify.engine.lr_local import analyse, stable_radius
from robustprop.verify.engine.network import Affine, Clip, Network, Relu


def _net(seed: int, n: int = 3, hidden: int = 6, m: int = 3) -> Network:
    rng = np.random.default_rng(seed)
    layers = (
        Affine(rng.normal(size=(hidden, n)), rng.normal(size=hidden)),
        Relu(),
        Affine(rng.normal(size=(m, hidden)), rng.normal(size=m)),
        Clip(-100.0, 100.0),
    )
    return Network(layers, n, m, (1, n), (1, m), "0" * 64, f"random-{seed}")


@settings(max_examples=60, deadline=None)
@example(seed=481, lipschitz=2.0, center=[0.9999999999999999, 1.0, 1.0])
@given(
    seed=st.integers(0, 10_000),
    lipschitz=st.floats(0.5, 8.0),
    center=st.lists(st.floats(0.0, 1.0), min_size=3, max_size=3),
)
def test_small_ball_verdict_is_sound(seed: int, lipschitz: float, center: list[float]) -> None:
    net = _net(seed)
    x0 = np.array(center)
    y0 = net.evaluate(x0)[0]
    prop = make_property("lr", eps=0.1, lipschitz=lipschitz)
    negation = prop.negation(x0, y0, int(np.argmax(y0)), Domain(), tau=0.0)
    local = analyse(net, negation, y0)
    assert local is not None
    if local.d0 <= 1e-12:
        # a ball of a few ulps (center on the domain's edge): its "witness" differs from the
        # center by rounding only; verify run replays every witness, so none is trusted here
        return
    box = negation.disjuncts[0]
    ball_lo = np.maximum(x0 - local.d0, box.lower)
    ball_hi = np.minimum(x0 + local.d0, box.upper)
    if local.witness is not None:
        assert np.all(local.witness >= ball_lo - 1e-12) and np.all(local.witness <= ball_hi + 1e-12)
        y = net.evaluate(local.witness)[0]
        assert negation.is_satisfied_by(local.witness, y)
    else:
        rng = np.random.default_rng(seed)
        xs = ball_lo + (ball_hi - ball_lo) * rng.random((2000, 3))
        ys = net.evaluate(xs)
        d = np.max(np.abs(xs - x0), axis=1)
        excess = np.max(np.abs(ys - y0), axis=1) - lipschitz * d
        assert np.all(excess <= 1e-9)


def test_stable_radius_keeps_the_activation_pattern() -> None:
    net = _net(3)
    x0 = np.array([0.5, 0.5, 0.5])
    box = make_property("lr").negation(x0, net.evaluate(x0)[0], 0, Domain()).disjuncts[0]
    d0 = stable_radius(net, x0, box, 0.1)
    assert 0.0 < d0 <= 0.1
    rng = np.random.default_rng(0)
    xs = x0 + d0 * (2 * rng.random((500, 3)) - 1)
    h0 = net.layers[0].W @ x0 + net.layers[0].b  # type: ignore[union-attr]
    hs = xs @ net.layers[0].W.T + net.layers[0].b  # type: ignore[union-attr]
    assert np.all(np.sign(hs) == np.sign(h0))
