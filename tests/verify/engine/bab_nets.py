"""Small random ReLU networks as real ONNX models (IR + onnxruntime replayer), and random
linear negations over them, for the branch-and-bound and α-CROWN tests."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from robustprop.properties.spec import Atom, Disjunct, Negation
from robustprop.verify.engine.network import Network, network_from_bytes
from robustprop.verify.engine.replay import Replayer


@dataclass(frozen=True, eq=False)
class Net:
    network: Network
    replayer: Replayer


def mlp_bytes(seed: int, sizes: tuple[int, ...], scale: float = 1.5) -> bytes:
    """Gemm/Relu layers of the given widths, weights ~ N(0, scale²/fan_in), float32."""
    rng = np.random.default_rng(seed)
    inits, nodes = [], []
    name = "input"
    for k in range(len(sizes) - 1):
        W = rng.normal(size=(sizes[k], sizes[k + 1])) * scale / np.sqrt(sizes[k])
        b = rng.normal(size=sizes[k + 1]) * 0.3
        inits += [numpy_helper.from_array(W.astype(np.float32), f"W{k}"),
                  numpy_helper.from_array(b.astype(np.float32), f"B{k}")]  # fmt: skip
        out = "output" if k == len(sizes) - 2 else f"z{k}"
        nodes.append(helper.make_node("Gemm", [name, f"W{k}", f"B{k}"], [out]))
        if k < len(sizes) - 2:
            nodes.append(helper.make_node("Relu", [out], [f"h{k}"]))
            name = f"h{k}"
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, sizes[0]])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, sizes[-1]])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    buffer = io.BytesIO()
    onnx.save(model, buffer)
    return buffer.getvalue()


def make_net(seed: int, sizes: tuple[int, ...], scale: float = 1.5) -> Net:
    data = mlp_bytes(seed, sizes, scale)
    return Net(network_from_bytes(data, source="<mlp>", check_points=0), Replayer(data))


def random_negation(net: Network, seed: int, width: float, atoms: int = 2) -> Negation:
    """One or two disjuncts over one box: output atoms ``y_i − y_j ≥ r`` near the outputs at
    the box centre, so that every outcome occurs."""
    rng = np.random.default_rng(seed)
    center = rng.uniform(-1.0, 1.0, net.n)
    lower, upper = center - width, center + width
    y = net.evaluate(center[None])[0]
    disjuncts = []
    for _ in range(int(rng.integers(1, 3))):
        terms = []
        for _ in range(atoms):
            i, j = rng.choice(net.m, size=2, replace=False)
            rhs = float(y[i] - y[j] + rng.normal() * 0.5)
            terms.append(Atom(((int(i), 1.0), (int(j), -1.0)), rhs))
        disjuncts.append(Disjunct(lower, upper, tuple(terms)))
    return Negation(tuple(disjuncts), description="random")
