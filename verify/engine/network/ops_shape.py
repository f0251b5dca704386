"""ONNX ops on constants, shapes and layout: Constant, Identity, Dropout, Shape, Cast, Gather,
Concat, Flatten, Reshape, Squeeze, Unsqueeze and Transpose.

Each handler maps one node's inputs to its outputs (see
:data:`~robustprop.verify.engine.network.symbolic.Handler`); on the network's activations these
ops only rearrange ``A`` and ``c`` of a symbolic tensor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from robustprop.verify.engine.network.symbolic import (
    GraphState,
    Handler,
    Sym,
    Value,
    apply_map,
    reshape,
)

if TYPE_CHECKING:
    import onnx

__all__ = ["SHAPE_OPS"]


def _all_const(g: GraphState, inputs: Sequence[str]) -> bool:
    return all(not isinstance(g.values.get(i), Sym) for i in inputs if i)


def op_constant(
    g: GraphState, node: onnx.NodeProto, inputs: list[str], attrs: dict[str, Any]
) -> list[Value]:
    if "value" in attrs:
        return [g.tensor(attrs["value"], "the Constant value")]
    for key in ("value_float", "value_int"):
        if key in attrs:
            return [np.asarray(attrs[key])]
    for key in ("value_floats", "value_ints"):
        if key in attrs:
            return [np.asarray(list(attrs[key]))]
    raise g.fail("unsupported Constant attribute " + ",".join(attrs) + " for op 'Constant'")


def op_identity(
    g: GraphState, node: onnx.NodeProto, inputs: list[str], attrs: dict[str, Any]
) -> list[Value]:
    return [g.get(inputs[0])]


def op_dropout(
    g: GraphState, node: onnx.NodeProto, inputs: list[str], attrs: dict[str, Any]
) -> list[Value]:
    return [g.get(inputs[0])]


def op_shape(
    g: GraphState, node: onnx.NodeProto, inputs: list[str], attrs: dict[str, Any]
) -> list[Value]:
    x = g.get(inputs[0])
    shape = np.asarray(x.shape if isinstance(x, Sym) else np.shape(x), dtype=np.int64)
    start = int(attrs.get("start", 0))
    end = attrs.get("end")
    return [shape[start : None if end is None else int(end)]]


def op_cast(
    g: GraphState, node: onnx.NodeProto, inputs: list[str], attrs: dict[str, Any]
) -> list[Value]:
    from onnx import helper

    x = g.get(inputs[0])
    dtype = helper.tensor_dtype_to_np_dtype(int(attrs["to"]))
    if isinstance(x, Sym):
        if np.dtype(dtype).kind != "f":
            raise g.fail(f"Cast of the network's activations to {dtype} is not supported")
        return [x]
    return [x.astype(dtype)]


def op_gather(
    g: GraphState, node: onnx.NodeProto, inputs: list[str], attrs: dict[str, Any]
) -> list[Value]:
    data = g.get(inputs[0])
    idx = g.const(inputs[1], "Gather indices").astype(np.int64)
    axis = int(attrs.get("axis", 0))
    shape = data.shape if isinstance(data, Sym) else np.shape(data)
    if not shape:
        raise g.fail("Gather of a scalar")
    ax = axis % len(shape)
    count = idx.size * (math.prod(shape) // shape[ax] if shape[ax] else 0)
    if isinstance(data, Sym):
        g.check_dense(data.A.shape[0], (count,), "this Gather")
        return [apply_map(data, lambda t: np.take(t, idx, axis=ax + 1))]
    g.check_values(count, "this Gather")
    return [np.take(data, idx, axis=ax)]


def op_concat(
    g: GraphState, node: onnx.NodeProto, inputs: list[str], attrs: dict[str, Any]
) -> list[Value]:
    if not _all_const(g, inputs):
        raise g.fail("Concat of the network's activations is not supported")
    parts = [g.const(i, "Concat input") for i in inputs if i]
    g.check_values(sum(int(np.size(part)) for part in parts), "this Concat")
    return [np.concatenate(parts, axis=int(attrs.get("axis", 0)))]


def op_flatten(
    g: GraphState, node: onnx.NodeProto, inputs: list[str], attrs: dict[str, Any]
) -> list[Value]:
    x = g.get(inputs[0])
    shape = x.shape if isinstance(x, Sym) else np.shape(x)
    axis = int(attrs.get("axis", 1)) % (len(shape) + 1) if shape else 0
    new = (math.prod(shape[:axis]), math.prod(shape[axis:]))
    return [reshape(x, new)]


def op_reshape(
    g: GraphState, node: onnx.NodeProto, inputs: list[str], attrs: dict[str, Any]
) -> list[Value]:
    x = g.get(inputs[0])
    if len(inputs) > 1:
        target = [int(v) for v in g.const(inputs[1], "Reshape shape").reshape(-1)]
    else:
        target = [int(v) for v in attrs.get("shape", [])]
    shape = x.shape if isinstance(x, Sym) else np.shape(x)
    if not int(attrs.get("allowzero", 0)):
        target = [shape[i] if v == 0 and i < len(shape) else v for i, v in enumerate(target)]
    if target.count(-1) > 1:
        raise g.fail(f"Reshape target {target} has more than one -1")
    if -1 in target:
        known = math.prod(v for v in target if v != -1)
        target[target.index(-1)] = math.prod(shape) // known if known else 0
    if math.prod(target) != math.prod(shape):
        raise g.fail(f"Reshape of shape {list(shape)} to {target} changes the size")
    return [reshape(x, tuple(target))]


def _axes(g: GraphState, inputs: list[str], attrs: dict[str, Any], name: str) -> list[int] | None:
    if len(inputs) > 1 and inputs[1]:
        return [int(a) for a in g.const(inputs[1], f"{name} axes").reshape(-1)]
    if "axes" in attrs:
        return [int(a) for a in attrs["axes"]]
    return None


def op_squeeze(
    g: GraphState, node: onnx.NodeProto, inputs: list[str], attrs: dict[str, Any]
) -> list[Value]:
    x = g.get(inputs[0])
    shape = x.shape if isinstance(x, Sym) else np.shape(x)
    axes = _axes(g, inputs, attrs, "Squeeze")
    if axes is None:
        axes = [i for i, d in enumerate(shape) if d == 1]
    axes = [a % len(shape) for a in axes]
    if any(shape[a] != 1 for a in axes):
        raise g.fail(f"Squeeze of axes {axes} of shape {list(shape)}")
    new = tuple(d for i, d in enumerate(shape) if i not in axes)
    return [reshape(x, new)]


def op_unsqueeze(
    g: GraphState, node: onnx.NodeProto, inputs: list[str], attrs: dict[str, Any]
) -> list[Value]:
    x = g.get(inputs[0])
    shape = list(x.shape if isinstance(x, Sym) else np.shape(x))
    axes = _axes(g, inputs, attrs, "Unsqueeze")
    if axes is None:
        raise g.fail("Unsqueeze without axes")
    rank = len(shape) + len(axes)
    for a in sorted(ax % rank for ax in axes):
        shape.insert(a, 1)
    return [reshape(x, tuple(shape))]


def op_transpose(
    g: GraphState, node: onnx.NodeProto, inputs: list[str], attrs: dict[str, Any]
) -> list[Value]:
    x = g.get(inputs[0])
    rank = len(x.shape if isinstance(x, Sym) else np.shape(x))
    perm = [int(p) for p in attrs.get("perm", list(range(rank))[::-1])]
    if isinstance(x, Sym):
        return [apply_map(x, lambda t: np.transpose(t, [0] + [p + 1 for p in perm]))]
    return [np.transpose(x, perm)]


SHAPE_OPS: dict[str, Handler] = {
    "Constant": op_constant,
    "Identity": op_identity,
    "Dropout": op_dropout,
    "Shape": op_shape,
    "Cast": op_cast,
    "Gather": op_gather,
    "Concat": op_concat,
    "Flatten": op_flatten,
    "Reshape": op_reshape,
    "Squeeze": op_squeeze,
    "Unsqueeze": op_unsqueeze,
    "Transpose": op_transpose,
}
