"""Writes the golden network of the verification tests (run: python make_golden.py).

``golden.onnx`` computes, on ``x ∈ [0, 1]^2``::

    y0 = 10·relu(x0 − x1),  y1 = 10·relu(x1 − x0),  y2 = 0.5,   then Clip(−100, 100)

so ``y0 − y1 = 10·(x0 − x1)``. ``golden.npz`` holds one point ``x̂ = (0.8, 0.2)`` with label 0,
where ``f(x̂) = (6, 0, 0.5)``. Verdicts by hand, on ``B(x̂, ε) ∩ [0, 1]^2``:

- ε = 0.1: ``x0 − x1 ∈ [0.4, 0.8]``, so ``y0 ∈ [4, 8]``, ``y1 = 0``, ``y2 = 0.5``.
  CR holds. SR: ``max |y − r| = 2``: holds for δ = 2.5, violated for δ = 1.5.
  LR: ``|y0 − 6| = 10·|dx0 − dx1| ≤ 20·‖dx‖∞``, with equality at ``dx = (d, −d)``:
  holds for L = 20 (equality is allowed), violated for L = 19.
  SCR: ``p0 ≥ e^4 / (e^4 + 1 + e^0.5) ≈ 0.9544``: holds for η = 0.9, violated for η = 0.96.
- ε = 0.35: ``x0 − x1`` reaches ``−0.1`` (``x0 = 0.45, x1 = 0.55``), so ``y1 = 1 > y0 = 0``:
  CR violated.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).parent


def golden_model() -> onnx.ModelProto:
    w1 = np.array([[1.0, -1.0], [-1.0, 1.0]], dtype=np.float32)  # (in, hidden) for MatMul
    w2 = np.array([[10.0, 0.0, 0.0], [0.0, 10.0, 0.0]], dtype=np.float32)
    b2 = np.array([0.0, 0.0, 0.5], dtype=np.float32)
    inits = [
        numpy_helper.from_array(w1, "W1"),
        numpy_helper.from_array(w2, "W2"),
        numpy_helper.from_array(b2, "B2"),
        numpy_helper.from_array(np.array(-100.0, dtype=np.float32), "lo"),
        numpy_helper.from_array(np.array(100.0, dtype=np.float32), "hi"),
    ]
    nodes = [
        helper.make_node("MatMul", ["input", "W1"], ["h"], name="matmul_1"),
        helper.make_node("Relu", ["h"], ["r"], name="relu_1"),
        helper.make_node("MatMul", ["r", "W2"], ["z0"], name="matmul_2"),
        helper.make_node("Add", ["z0", "B2"], ["z"], name="add_2"),
        helper.make_node("Clip", ["z", "lo", "hi"], ["output"], name="clip"),
    ]
    graph = helper.make_graph(
        nodes,
        "golden",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 2])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 3])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, {"dataset": "golden.npz", "domain": "[0.0, 1.0]"})
    onnx.checker.check_model(model, full_check=True)
    return model


def main() -> None:
    onnx.save(golden_model(), HERE / "golden.onnx")
    np.savez(
        HERE / "golden.npz",
        x=np.array([[0.8, 0.2]], dtype=np.float32),
        y=np.array([0], dtype=np.int64),
    )


if __name__ == "__main__":
    main()
