"""Tiny hand-built ONNX graphs for the verify tests (built in memory with ``onnx.helper``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from robustprop.verify.engine.network import Affine, Clip, Network, Relu


def tensor(name: str, value: Sequence[object] | np.ndarray | float) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)


def model(
    nodes: list[onnx.NodeProto],
    *,
    inits: Sequence[onnx.TensorProto] = (),
    in_shape: Sequence[int | str] = (1, 2),
    opset: int = 13,
    out: str = "y",
    extra_inputs: Sequence[onnx.ValueInfoProto] = (),
) -> bytes:
    """A model with input ``x`` (float32, ``in_shape``) and output ``out``, serialized."""
    inp = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape))
    output = helper.make_tensor_value_info(out, TensorProto.FLOAT, None)
    graph = helper.make_graph(nodes, "tiny", [inp, *extra_inputs], [output], list(inits))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 7 if opset < 15 else 8
    return m.SerializeToString()


def mlp_bytes(
    layers: Sequence[tuple[np.ndarray, np.ndarray]], clip: tuple[float, float] | None = None
) -> bytes:
    """``MatMul + Add (+ Relu)`` per layer, no Relu after the last, optional final Clip."""
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    h = "x"
    for k, (W, b) in enumerate(layers):
        inits += [tensor(f"W{k}", np.asarray(W).T), tensor(f"b{k}", b)]
        nodes += [
            helper.make_node("MatMul", [h, f"W{k}"], [f"m{k}"]),
            helper.make_node("Add", [f"m{k}", f"b{k}"], [f"a{k}"]),
        ]
        h = f"a{k}"
        if k + 1 < len(layers):
            nodes.append(helper.make_node("Relu", [h], [f"r{k}"]))
            h = f"r{k}"
    if clip is not None:
        inits += [tensor("clip_lo", clip[0]), tensor("clip_hi", clip[1])]
        nodes.append(helper.make_node("Clip", [h, "clip_lo", "clip_hi"], ["clipped"]))
        h = "clipped"
    nodes.append(helper.make_node("Identity", [h], ["y"]))
    n_in = np.asarray(layers[0][0]).shape[1]
    return model(nodes, inits=inits, in_shape=(1, n_in))


def mlp_network(
    layers: Sequence[tuple[np.ndarray, np.ndarray]], clip: tuple[float, float] | None = None
) -> Network:
    """The IR of :func:`mlp_bytes` built directly (weights rounded to float32 like the ONNX)."""
    ir: list[Affine | Relu | Clip] = []
    for k, (W, b) in enumerate(layers):
        W32 = np.asarray(W, dtype=np.float32).astype(np.float64)
        b32 = np.asarray(b, dtype=np.float32).astype(np.float64)
        ir.append(Affine(W32, b32))
        if k + 1 < len(layers):
            ir.append(Relu())
    if clip is not None:
        ir.append(Clip(float(np.float32(clip[0])), float(np.float32(clip[1]))))
    n = np.asarray(layers[0][0]).shape[1]
    m = np.asarray(layers[-1][0]).shape[0]
    return Network(tuple(ir), n, m, (1, n), (1, m), sha256="", source="<tiny>")
