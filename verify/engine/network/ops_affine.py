"""Affine ONNX ops: Neg, Add, Sub, Mul, Div, MatMul, Gemm and BatchNormalization.

On the network's activations each one updates ``A`` and ``c`` of a symbolic tensor, so
consecutive affine maps are composed; a product of two input-dependent tensors is refused (not
piecewise linear).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from robustprop.verify.engine.network.symbolic import (
    GraphState,
    Handler,
    Sym,
    Value,
    apply_map,
    broadcast,
)

if TYPE_CHECKING:
    import onnx

__all__ = ["AFFINE_OPS"]


def op_neg(
    g: GraphState, node: onnx.NodeProto, inputs: list[str], attrs: dict[str, Any]
) -> list[Value]:
    x = g.get(inputs[0])
    if isinstance(x, Sym):
        return [Sym(A=-x.A, c=-x.c, epoch=x.epoch)]
    return [-x]


def op_add(
    g: GraphState, node: onnx.NodeProto, inputs: list[str], attrs: dict[str, Any]
) -> list[Value]:
    return [_add_sub(g, inputs, sign=1.0)]


def op_sub(
    g: GraphState, node: onnx.NodeProto, inputs: list[str], attrs: dict[str, Any]
) -> list[Value]:
    return [_add_sub(g, inputs, sign=-1.0)]


def _add_sub(g: GraphState, inputs: list[str], sign: float) -> Value:
    a, b = g.get(inputs[0]), g.get(inputs[1])
    if not isinstance(a, Sym) and not isinstance(b, Sym):
        _check_broadcast(g, np.shape(a), np.shape(b))
        return a + b if sign > 0 else a - b
    shape_a = a.shape if isinstance(a, Sym) else np.shape(a)
    shape_b = b.shape if isinstance(b, Sym) else np.shape(b)
    try:
        shape = tuple(np.broadcast_shapes(shape_a, shape_b))
    except ValueError as err:
        raise g.fail(f"shapes {list(shape_a)} and {list(shape_b)} do not broadcast") from err
    sym = a if isinstance(a, Sym) else b
    assert isinstance(sym, Sym)
    g.check_dense(sym.A.shape[0], shape, "this broadcast")
    if isinstance(a, Sym) and isinstance(b, Sym):
        g.current(a, b)
        sa, sb = broadcast(a, shape), broadcast(b, shape)
        return Sym(A=sa.A + sign * sb.A, c=sa.c + sign * sb.c, epoch=a.epoch)
    if isinstance(a, Sym):
        sa = broadcast(a, shape)
        const = np.asarray(b, dtype=np.float64)
        return Sym(A=sa.A, c=sa.c + sign * const, epoch=a.epoch)
    assert isinstance(b, Sym)
    sb = broadcast(b, shape)
    const = np.asarray(a, dtype=np.float64)
    return Sym(A=sign * sb.A, c=const + sign * sb.c, epoch=b.epoch)


def op_mul(
    g: GraphState, node: onnx.NodeProto, inputs: list[str], attrs: dict[str, Any]
) -> list[Value]:
    return [_scale(g, inputs, divide=False)]


def op_div(
    g: GraphState, node: onnx.NodeProto, inputs: list[str], attrs: dict[str, Any]
) -> list[Value]:
    return [_scale(g, inputs, divide=True)]


def _scale(g: GraphState, inputs: list[str], divide: bool) -> Value:
    a, b = g.get(inputs[0]), g.get(inputs[1])
    if not isinstance(a, Sym) and not isinstance(b, Sym):
        _check_broadcast(g, np.shape(a), np.shape(b))
        with np.errstate(all="ignore"):  # the reader refuses inf/NaN results
            return a / b if divide else a * b
    if isinstance(b, Sym):
        if divide or isinstance(a, Sym):
            raise g.fail(
                "a product or quotient of two input-dependent tensors (not piecewise linear)"
            )
        a, b = b, a
    assert isinstance(a, Sym) and not isinstance(b, Sym)
    factor = np.asarray(b, dtype=np.float64)
    if divide:
        with np.errstate(divide="ignore", invalid="ignore"):  # the reader refuses inf/NaN
            factor = 1.0 / factor
    try:
        shape = tuple(np.broadcast_shapes(a.shape, factor.shape))
    except ValueError as err:
        raise g.fail(f"shapes {list(a.shape)} and {list(factor.shape)} do not broadcast") from err
    g.check_dense(a.A.shape[0], shape, "this broadcast")
    sa = broadcast(a, shape)
    with np.errstate(invalid="ignore", over="ignore"):
        return Sym(A=sa.A * factor, c=sa.c * factor, epoch=a.epoch)


def op_matmul(
    g: GraphState, node: onnx.NodeProto, inputs: list[str], attrs: dict[str, Any]
) -> list[Value]:
    a, b = g.get(inputs[0]), g.get(inputs[1])
    return [_matmul(g, a, b)]


def _check_broadcast(g: GraphState, *shapes: tuple[int, ...]) -> None:
    """Refuse an element-wise op on constants whose broadcast result is too large."""
    try:
        shape = np.broadcast_shapes(*shapes)
    except ValueError as err:
        raise g.fail(f"shapes {[list(s) for s in shapes]} do not broadcast") from err
    g.check_values(math.prod(shape), "this broadcast")


def _matmul_size(g: GraphState, a: tuple[int, ...], b: tuple[int, ...]) -> int:
    """The number of values of ``matmul`` of operands of shapes ``a`` and ``b``."""
    if not a or not b:
        raise g.fail("MatMul of a scalar")
    rows = a[-2] if len(a) > 1 else 1
    cols = b[-1] if len(b) > 1 else 1
    try:
        batch = np.broadcast_shapes(a[:-2], b[:-2])
    except ValueError as err:
        raise g.fail(f"MatMul batch shapes {list(a)} and {list(b)} do not broadcast") from err
    return math.prod(batch) * rows * cols


def _matmul(g: GraphState, a: Value, b: Value) -> Value:
    shape_a = a.shape if isinstance(a, Sym) else tuple(np.shape(a))
    shape_b = b.shape if isinstance(b, Sym) else tuple(np.shape(b))
    size = _matmul_size(g, shape_a, shape_b)
    if not isinstance(a, Sym) and not isinstance(b, Sym):
        g.check_values(size, "this MatMul")
        return np.asarray(np.matmul(a, b))
    if isinstance(a, Sym) and isinstance(b, Sym):
        raise g.fail("a product of two input-dependent tensors (not piecewise linear)")
    sym = a if isinstance(a, Sym) else b
    assert isinstance(sym, Sym)
    g.check_dense(sym.A.shape[0], (size,), "this MatMul")
    if isinstance(a, Sym):
        W = np.asarray(b, dtype=np.float64)
        if W.ndim <= 2 and len(a.shape) >= 1:
            return apply_map(a, lambda t: np.matmul(t, W))
        return apply_map(a, lambda t: np.stack([np.matmul(s, W) for s in t]))
    assert isinstance(b, Sym)
    W = np.asarray(a, dtype=np.float64)
    if len(b.shape) == 1 and W.ndim <= 2:
        return apply_map(b, lambda t: np.matmul(t, W.T))
    if len(b.shape) >= 2 and W.ndim <= 2:
        return apply_map(b, lambda t: np.matmul(W, t))
    return apply_map(b, lambda t: np.stack([np.matmul(W, s) for s in t]))


def op_gemm(
    g: GraphState, node: onnx.NodeProto, inputs: list[str], attrs: dict[str, Any]
) -> list[Value]:
    a, b = g.get(inputs[0]), g.get(inputs[1])
    alpha = float(attrs.get("alpha", 1.0))
    beta = float(attrs.get("beta", 1.0))
    a = _transpose2d(g, a) if int(attrs.get("transA", 0)) else a
    b = _transpose2d(g, b) if int(attrs.get("transB", 0)) else b
    prod = _matmul(g, a, b)
    if alpha != 1.0:
        prod = _times(prod, alpha)
    if len(inputs) > 2 and inputs[2]:
        bias = np.asarray(g.const(inputs[2], "Gemm C"), dtype=np.float64) * beta
        if isinstance(prod, Sym):
            shape = tuple(np.broadcast_shapes(prod.shape, bias.shape))
            g.check_dense(prod.A.shape[0], shape, "this Gemm's bias")
            sp = broadcast(prod, shape)
            prod = Sym(A=sp.A, c=sp.c + bias, epoch=sp.epoch)
        else:
            _check_broadcast(g, np.shape(prod), bias.shape)
            prod = prod + bias
    return [prod]


def _times(x: Value, factor: float) -> Value:
    if isinstance(x, Sym):
        return Sym(A=x.A * factor, c=x.c * factor, epoch=x.epoch)
    return x * factor


def _transpose2d(g: GraphState, x: Value) -> Value:
    if isinstance(x, Sym):
        if len(x.shape) != 2:
            raise g.fail(f"Gemm operand of shape {list(x.shape)} (expected 2-D)")
        return apply_map(x, lambda t: np.swapaxes(t, 1, 2))
    return np.asarray(x).T


def op_batchnorm(
    g: GraphState, node: onnx.NodeProto, inputs: list[str], attrs: dict[str, Any]
) -> list[Value]:
    x = g.get(inputs[0])
    scale, bias, mean, var = (
        np.asarray(g.const(name, "BatchNormalization parameter"), dtype=np.float64)
        for name in inputs[1:5]
    )
    eps = float(attrs.get("epsilon", 1e-5))
    shape = x.shape if isinstance(x, Sym) else np.shape(x)
    if len(shape) < 2:
        raise g.fail(f"BatchNormalization of shape {list(shape)} (expected N x C x ...)")
    bshape = (shape[1],) + (1,) * (len(shape) - 2)
    factor = (scale / np.sqrt(var + eps)).reshape(bshape)
    shift = (bias - mean * factor.reshape(-1)).reshape(bshape)
    if isinstance(x, Sym):
        return [Sym(A=x.A * factor, c=x.c * factor + shift, epoch=x.epoch)]
    return [x * factor + shift]


AFFINE_OPS: dict[str, Handler] = {
    "Neg": op_neg,
    "Add": op_add,
    "Sub": op_sub,
    "Mul": op_mul,
    "Div": op_div,
    "MatMul": op_matmul,
    "Gemm": op_gemm,
    "BatchNormalization": op_batchnorm,
}
