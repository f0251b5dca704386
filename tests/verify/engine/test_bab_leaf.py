"""The exact decision of fully split ReLU sub-domains (:class:`LeafSolver`): it never closes
the sub-domain that holds a real counterexample, its points obey their splits, and with no
split it answers like the MILP backend."""

from __future__ import annotations

import time

import numpy as np
import pytest

from robustprop.verify.engine.backends.base import group_by_box
from robustprop.verify.engine.backends.milp import MilpBackend
from robustprop.verify.engine.backends.milp_leaf import LeafSolver
from robustprop.verify.engine.network import Affine, Relu
from robustprop.verify.engine.verdict import Status
from tests.verify.engine.bab_nets import make_net, random_negation


def _pre_activations(net: object, x: np.ndarray) -> list[np.ndarray]:
    """Each affine layer's outputs at ``x``."""
    out, h = [], x
    for layer in net.layers:  # type: ignore[attr-defined]
        if isinstance(layer, Affine):
            h = layer.W @ h + layer.b
            out.append(h.copy())
        elif isinstance(layer, Relu):
            h = np.maximum(h, 0.0)
    return out


# seeds and widths where the MILP finds a counterexample (0–3) and where the query holds (6–10)
@pytest.mark.parametrize(
    ("seed", "width", "atoms"),
    [(s, 0.4, 1) for s in range(4)] + [(s, 0.1, 2) for s in (6, 8, 9, 10)],
)
def test_leaves_agree_with_the_milp_and_keep_its_counterexamples(
    seed: int, width: float, atoms: int
) -> None:
    net = make_net(seed, (6, 10, 10, 3), scale=1.5)
    negation = random_negation(net.network, seed, width, atoms=atoms)
    (group,) = list(group_by_box(negation))
    expected = "violated" if width > 0.2 else "holds"
    leaf = LeafSolver(net.network, group)
    widths = [layer.out_size for layer in net.network.layers if isinstance(layer, Affine)]
    free = [np.zeros(w, dtype=np.int8) for w in widths]
    deadline = time.monotonic() + 60
    exact = MilpBackend().solve(net.network, group, 60.0)
    status, x, _ = leaf.solve(free, deadline)
    assert status is exact.status  # no split: the same program
    assert exact.status.value == expected  # both branches below are exercised
    if exact.status is Status.VIOLATED:
        assert exact.x is not None
        # the sub-domain of the counterexample's own activation pattern stays open
        pattern = [
            np.where(z >= 0.0, 1, -1).astype(np.int8)
            for z in _pre_activations(net.network, exact.x)
        ]
        pattern[-1][:] = 0  # the output layer is not split
        status, x, _ = leaf.solve(pattern, deadline)
        assert status is Status.VIOLATED
        assert x is not None
        for z, s in zip(_pre_activations(net.network, x), pattern, strict=True):
            assert np.all(s * z >= -1e-6)  # the point obeys its splits
    else:
        # a closed query: every fully split sub-domain is closed too
        rng = np.random.default_rng(seed)
        for _ in range(5):
            signs = [rng.choice(np.array([-1, 1], dtype=np.int8), size=w) for w in widths]
            signs[-1][:] = 0
            assert leaf.solve(signs, deadline)[0] is Status.HOLDS
