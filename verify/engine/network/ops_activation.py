"""ONNX ops that end an affine stretch: Relu and Clip (a Clip to ``[0, inf)`` is a Relu)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from robustprop.verify.engine.network.ir import Clip, Relu
from robustprop.verify.engine.network.symbolic import GraphState, Handler, Sym, Value

if TYPE_CHECKING:
    import onnx

__all__ = ["ACTIVATION_OPS"]


def op_relu(
    g: GraphState, node: onnx.NodeProto, inputs: list[str], attrs: dict[str, Any]
) -> list[Value]:
    x = g.get(inputs[0])
    if isinstance(x, Sym):
        return [g.nonlinear(x, Relu())]
    return [np.maximum(x, 0)]


def op_clip(
    g: GraphState, node: onnx.NodeProto, inputs: list[str], attrs: dict[str, Any]
) -> list[Value]:
    lo, hi = -math.inf, math.inf
    if g.opset < 11:
        lo = float(attrs.get("min", -math.inf))
        hi = float(attrs.get("max", math.inf))
    else:
        if len(inputs) > 1 and inputs[1]:
            lo = float(g.const(inputs[1], "Clip min").reshape(-1)[0])
        if len(inputs) > 2 and inputs[2]:
            hi = float(g.const(inputs[2], "Clip max").reshape(-1)[0])
    if math.isnan(lo) or math.isnan(hi):
        raise g.fail(f"Clip bound is NaN (min {lo}, max {hi})")
    if lo > hi:
        raise g.fail(f"Clip min {lo} exceeds max {hi}")
    x = g.get(inputs[0])
    if not isinstance(x, Sym):
        return [np.clip(x, lo, hi)]
    if lo == -math.inf and hi == math.inf:
        return [x]
    if lo == 0.0 and hi == math.inf:
        return [g.nonlinear(x, Relu())]
    return [g.nonlinear(x, Clip(lo, hi))]


ACTIVATION_OPS: dict[str, Handler] = {"Relu": op_relu, "Clip": op_clip}
