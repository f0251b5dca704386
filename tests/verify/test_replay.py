"""Witness replay: projection into the box, float32 and float64 evaluations, rejection."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper

from robustprop.properties.spec import Atom, Disjunct, Negation
from robustprop.verify.engine.replay import (
    Replayer,
    project_into_box,
    replay_witness,
    to_double_precision,
)
from tests.verify.tiny_onnx import mlp_bytes, model, tensor

# y0 = |x0 - x1|, y1 = relu(x0 + x1 - 1)  (see test_backends)
W1 = np.array([[1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]])
B1 = np.array([0.0, 0.0, -1.0])
W2 = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
DATA = mlp_bytes([(W1, B1), (W2, np.zeros(2))])

BOX = (np.array([0.0, 0.0]), np.array([0.5, 1.0]))
NEG = Negation((Disjunct(BOX[0], BOX[1], (Atom(((0, 1.0),), 0.8),)),))  # y0 >= 0.8


def test_confirms_a_point_inside_the_box() -> None:
    r = replay_witness(DATA, np.array([0.05, 0.95]), NEG)
    assert r.confirmed and r.note == ""
    assert r.float64_source == "onnxruntime"
    np.testing.assert_allclose(r.y32, [0.9, 0.0], atol=1e-6)
    np.testing.assert_allclose(r.y64, [0.9, 0.0], atol=1e-12)
    assert r.moved < 1e-7


def test_rejects_a_point_whose_projection_fails() -> None:
    # (1, 0) gives y0 = 1 but lies outside the box; its projection (0.5, 0) gives y0 = 0.5
    r = replay_witness(DATA, np.array([1.0, 0.0]), NEG)
    assert not r.confirmed
    np.testing.assert_array_equal(r.x, [0.5, 0.0])
    assert r.moved == pytest.approx(0.5)
    assert "do not satisfy" in r.note


def test_rejects_a_point_that_misses_the_atoms() -> None:
    r = replay_witness(DATA, np.array([0.3, 0.4]), NEG)
    assert not r.confirmed and r.moved < 1e-7  # (only rounded to float32)


def test_tries_every_box_and_reports_the_matching_disjunct() -> None:
    impossible = Disjunct(BOX[0], BOX[1], (Atom(((0, 1.0),), 5.0),))
    far = Disjunct(np.array([0.0, 0.9]), np.array([0.1, 1.0]), (Atom(((0, 1.0),), 0.85),))
    two = Negation((impossible, far))
    r = replay_witness(DATA, np.array([0.2, 0.6]), two)  # far projection (0.1, 0.9): y0 = 0.8
    assert not r.confirmed
    r = replay_witness(DATA, np.array([0.0, 1.2]), two)  # far projection (0, 1): y0 = 1
    assert r.confirmed and r.disjunct == 1
    np.testing.assert_array_equal(r.x, [0.0, 1.0])


def test_projection_rounds_to_float32_inside_the_box() -> None:
    lo, hi = np.array([0.1, -1.0]), np.array([0.1 + 1e-7, 2.0])
    x, note = project_into_box(np.array([0.1, 5.0]), lo, hi, np.float32)
    assert np.all(x >= lo) and np.all(x <= hi) and note == ""
    assert np.all(x == x.astype(np.float32).astype(np.float64))
    # an interval with no float32 number in it keeps the float64 value and says so
    lo2, hi2 = np.array([0.1 + 1e-12]), np.array([0.1 + 2e-12])
    x2, note2 = project_into_box(np.array([0.0]), lo2, hi2, np.float32)
    assert x2[0] == lo2[0] and "no float32 value" in note2


def test_double_copy_runs_in_float64() -> None:
    double = to_double_precision(onnx.load_model_from_string(DATA))
    assert double.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    assert all(t.data_type == onnx.TensorProto.DOUBLE for t in double.graph.initializer)
    rep = Replayer(DATA)
    x = np.array([[0.1 + 1e-12, 0.3]])
    assert rep.evaluate64(x)[0, 0] == pytest.approx(0.2 - 1e-12, abs=1e-15)


def test_falls_back_to_the_ir_when_onnxruntime_has_no_double_kernel() -> None:
    # Clip-6 (bounds as attributes) has float kernels only in onnxruntime
    data = model(
        [
            helper.make_node("MatMul", ["x", "W"], ["h"]),
            helper.make_node("Clip", ["h"], ["y"], min=0.0, max=0.5),
        ],
        inits=[tensor("W", np.eye(2))],
        opset=9,
    )
    rep = Replayer(data)
    assert rep.float64_source == "ir" and "uses the IR" in rep.float64_note
    neg = Negation((Disjunct(np.zeros(2), np.ones(2), (Atom(((0, 1.0),), 0.5),)),))
    r = rep.replay(np.array([0.7, 0.1]), neg)
    assert r.confirmed and r.float64_source == "ir"
