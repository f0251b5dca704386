"""falsify(): the ascent loop on the IR for VNN-LIB negations — deterministic under its seed,
boxes searched jointly (best disjunct, binding atom), torch threads left as found."""

from __future__ import annotations

import numpy as np
import torch

from robustprop.properties.spec import Atom, Disjunct, Negation
from robustprop.verify.engine.falsify import FalsifyConfig, falsify
from robustprop.verify.engine.network import network_from_bytes
from tests.verify.tiny_onnx import mlp_bytes

# y0 = |x0 - x1|, y1 = relu(x0 + x1 - 1)
W1 = np.array([[1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]])
B1 = np.array([0.0, 0.0, -1.0])
W2 = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
NET = network_from_bytes(mlp_bytes([(W1, B1), (W2, np.zeros(2))]))
UNIT = (np.zeros(2), np.ones(2))


def y_ge(j: int, c: float) -> Atom:
    return Atom(((j, 1.0),), c)


def test_same_seed_same_candidates() -> None:
    negation = Negation((Disjunct(*UNIT, (y_ge(0, 0.9), y_ge(1, 0.0))),))
    config = FalsifyConfig(starts=16, steps=20, time_s=60.0, seed=3)
    first, second = falsify(NET, negation, config), falsify(NET, negation, config)
    assert first and len(first) == len(second)
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    assert all(negation.is_satisfied_by(x, NET.evaluate(x[None, :])[0]) for x in first)


def test_disjuncts_sharing_a_box_are_searched_together() -> None:
    """The first disjunct is infeasible (y1 ≤ 1 − … < 2); the search follows the second."""
    negation = Negation(
        (Disjunct(*UNIT, (y_ge(1, 2.0),)), Disjunct(*UNIT, (y_ge(0, 0.99), y_ge(1, 0.0))))
    )
    found = falsify(NET, negation, FalsifyConfig(time_s=60.0))
    assert found
    y = NET.evaluate(np.array(found))
    assert np.all(y[:, 0] >= 0.99)


def test_threads_are_restored() -> None:
    threads = torch.get_num_threads()
    falsify(NET, Negation((Disjunct(*UNIT, (y_ge(0, 5.0),)),)), FalsifyConfig(time_s=0.05))
    assert torch.get_num_threads() == threads
