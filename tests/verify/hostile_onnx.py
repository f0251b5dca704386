"""Hostile ONNX models: small files that make a naive reader allocate, loop or read too much.

Each builder returns the serialized model (a few kB to a few MB). A careless reader would
allocate gigabytes (constant folding, broadcasts, deep graphs), read a file outside the model
(external data), take minutes (a huge node count), divide by zero (Conv strides) or produce
infinite weights (a division by a constant 0).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper

from tests.verify.tiny_onnx import mlp_bytes, model, tensor


def paper_like() -> bytes:
    """784 -> 100 -> 10 with the paper's Clip(-100, 100) and small random weights (seeded): a
    network whose outputs never leave [-3, 3], on which Marabou answered ``unsat`` to
    ``Y_0 <= 1e17`` (a hostile *spec*, not a hostile model: kept here beside the others)."""
    r = np.random.default_rng(0)
    w1 = r.normal(size=(100, 784)) * 0.1 / np.sqrt(784)
    layers = [(w1, r.normal(size=100) * 0.1), (r.normal(size=(10, 100)) * 0.1, np.zeros(10))]
    return mlp_bytes(layers, clip=(-100.0, 100.0))


def _linear_head(
    nodes: list[onnx.NodeProto], n: int = 2
) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """``y = x @ W`` (the real network beside the hostile nodes)."""
    inits = [tensor("W_head", np.ones((n, 2)))]
    return [*nodes, helper.make_node("MatMul", ["x", "W_head"], ["y"], name="head")], inits


def concat_doubling(steps: int = 40) -> bytes:
    """``c_{k+1} = Concat(c_k, c_k)``: 2**steps constant values from one float."""
    nodes = [
        helper.make_node("Concat", [f"c{k}", f"c{k}"], [f"c{k + 1}"], axis=0, name=f"dup{k}")
        for k in range(steps)
    ]
    nodes, inits = _linear_head(nodes)
    return model(nodes, inits=[tensor("c0", [1.0]), *inits])


def broadcast_square(n: int = 200_000) -> bytes:
    """A constant ``(n, 1) + (1, n)``: n**2 values from 2n."""
    nodes = [helper.make_node("Add", ["col", "row"], ["square"], name="outer_add")]
    nodes, inits = _linear_head(nodes)
    inits += [tensor("col", np.ones((n, 1))), tensor("row", np.ones((1, n)))]
    return model(nodes, inits=inits)


def matmul_outer(n: int = 200_000) -> bytes:
    """A constant ``(n, 1) @ (1, n)``."""
    nodes = [helper.make_node("MatMul", ["col", "row"], ["square"], name="outer_matmul")]
    nodes, inits = _linear_head(nodes)
    inits += [tensor("col", np.ones((n, 1))), tensor("row", np.ones((1, n)))]
    return model(nodes, inits=inits)


def gather_square(n: int = 200_000) -> bytes:
    """Gather of a ``(1, n)`` constant with n zero indices: an ``(n, n)`` constant."""
    idx = onnx.numpy_helper.from_array(np.zeros(n, dtype=np.int64), "idx")
    nodes = [helper.make_node("Gather", ["row", "idx"], ["square"], axis=0, name="big_gather")]
    nodes, inits = _linear_head(nodes)
    return model(nodes, inits=[*inits, tensor("row", np.ones((1, n))), idx])


def mul_broadcast_input(n: int = 100_000) -> bytes:
    """The 784-input activations times an ``(n, 1)`` constant: an affine map of 784 x n x 784."""
    nodes = [
        helper.make_node("Mul", ["x", "col"], ["wide"], name="wide_mul"),
        helper.make_node("ReduceSum", ["wide"], ["y"], name="sum"),
    ]
    return model(nodes, inits=[tensor("col", np.ones((n, 1)))], in_shape=(1, 784))


def deep_wide(width: int = 7000, depth: int = 100) -> bytes:
    """``depth`` x (Add a shared bias, Relu) at ``width``: one 392 MB identity layer per step."""
    nodes = []
    h = "x"
    for k in range(depth):
        nodes += [
            helper.make_node("Add", [h, "bias"], [f"a{k}"], name=f"add{k}"),
            helper.make_node("Relu", [f"a{k}"], [f"r{k}"], name=f"relu{k}"),
        ]
        h = f"r{k}"
    nodes.append(helper.make_node("Identity", [h], ["y"]))
    return model(nodes, inits=[tensor("bias", np.ones(width))], in_shape=(1, width))


def many_nodes(count: int = 200_000) -> bytes:
    """A chain of ``count`` Identity nodes."""
    nodes = [helper.make_node("Identity", ["x"], ["i0"])]
    nodes += [helper.make_node("Identity", [f"i{k}"], [f"i{k + 1}"]) for k in range(count - 1)]
    nodes.append(helper.make_node("Identity", [f"i{count - 1}"], ["y"]))
    return model(nodes)


def external_data(location: str = "weights.bin") -> bytes:
    """A weight whose values live in a file outside the model (relative to the working folder:
    whatever file sits there is read as weights)."""
    weight = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[2, 2])
    weight.data_location = TensorProto.EXTERNAL
    entry = weight.external_data.add()
    entry.key, entry.value = "location", location
    nodes = [helper.make_node("MatMul", ["x", "W"], ["y"], name="mm")]
    return model(nodes, inits=[weight])


def huge_dims_initializer() -> bytes:
    """An initializer that claims 10**12 values and carries none."""
    weight = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[1_000_000, 1_000_000])
    nodes = [helper.make_node("MatMul", ["x", "W"], ["y"], name="mm")]
    return model(nodes, inits=[weight])


def conv_huge_pads() -> bytes:
    """A Conv padded by 10**6 on each side with stride 10**6: a tiny output of a huge input."""
    nodes = [
        helper.make_node(
            "Conv", ["x", "W"], ["y"], name="padded", pads=[10**6] * 4, strides=[10**6] * 2
        )
    ]
    return model(nodes, inits=[tensor("W", np.ones((1, 1, 1, 1)))], in_shape=(1, 1, 4, 4))


def conv_zero_stride() -> bytes:
    """A Conv with stride 0."""
    nodes = [helper.make_node("Conv", ["x", "W"], ["y"], name="still", strides=[0, 0])]
    return model(nodes, inits=[tensor("W", np.ones((1, 1, 1, 1)))], in_shape=(1, 1, 4, 4))


def divide_by_zero() -> bytes:
    """The activations divided by a constant 0: infinite weights."""
    nodes = [helper.make_node("Div", ["x", "zero"], ["y"], name="div0")]
    return model(nodes, inits=[tensor("zero", [0.0, 1.0])])


def float32_overflow() -> bytes:
    """Two layers of weight 1e30: finite float32 weights whose product overflows float32."""
    big = np.full((2, 2), 1e30)
    return mlp_bytes([(big, np.zeros(2)), (big, np.zeros(2))])


HOSTILE: dict[str, tuple[Callable[[], bytes], tuple[str, ...]]] = {
    # name: (builder, what the error must name)
    "concat_doubling": (concat_doubling, ("Concat", "MAX_TENSOR_VALUES")),
    "broadcast_square": (broadcast_square, ("'outer_add'", "MAX_TENSOR_VALUES")),
    "matmul_outer": (matmul_outer, ("'outer_matmul'", "MAX_TENSOR_VALUES")),
    "gather_square": (gather_square, ("'big_gather'", "MAX_TENSOR_VALUES")),
    "mul_broadcast_input": (mul_broadcast_input, ("'wide_mul'", "at most")),
    "deep_wide": (deep_wide, ("MAX_READ_BYTES",)),
    "many_nodes": (many_nodes, ("MAX_NODES",)),
    "external_data": (external_data, ("'W'", "external")),
    "huge_dims_initializer": (huge_dims_initializer, ("'W'", "MAX_TENSOR_VALUES")),
    "conv_huge_pads": (conv_huge_pads, ("'padded'",)),
    "conv_zero_stride": (conv_zero_stride, ("'still'", "strides")),
    "divide_by_zero": (divide_by_zero, ("'div0'", "non-finite")),
}
