"""On random small networks: a point proved ``holds`` is never refuted by PGD or sampling,
and every ``violated`` carries a witness that breaks the property under onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from robustprop.properties import Domain, PGDConfig, attack, make_property
from robustprop.verify.engine.network import load_network
from robustprop.verify.engine.point_query import PointDecider, Query
from robustprop.verify.engine.replay import Replayer
from robustprop.verify.engine.torch_net import to_torch
from robustprop.verify.engine.verdict import Status


def _random_onnx(path: Path, seed: int, n: int = 3, hidden: int = 5, m: int = 3) -> None:
    rng = np.random.default_rng(seed)
    w1 = rng.normal(size=(n, hidden)).astype(np.float32)
    b1 = rng.normal(size=hidden).astype(np.float32)
    w2 = (3 * rng.normal(size=(hidden, m))).astype(np.float32)
    b2 = rng.normal(size=m).astype(np.float32)
    inits = [numpy_helper.from_array(a, k) for k, a in
             (("W1", w1), ("B1", b1), ("W2", w2), ("B2", b2))]  # fmt: skip
    nodes = [
        helper.make_node("Gemm", ["input", "W1", "B1"], ["h"]),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("Gemm", ["r", "W2", "B2"], ["z"]),
        helper.make_node("Clip", ["z"], ["output"], min=-100.0, max=100.0),
    ]
    graph = helper.make_graph(
        nodes,
        "random",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, n])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, m])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 10)])
    model.ir_version = 7
    onnx.save(model, path)


PARAMS = {"sr": {"delta": 2.0}, "lr": {"lipschitz": 6.0}, "cr": {}, "scr": {"eta": 0.6}}


@settings(
    max_examples=24, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 100_000),
    name=st.sampled_from(sorted(PARAMS)),
    eps=st.sampled_from([0.05, 0.2]),
)
def test_holds_is_never_refuted(tmp_path: Path, seed: int, name: str, eps: float) -> None:
    path = tmp_path / f"net{seed}.onnx"
    _random_onnx(path, seed)
    net = load_network(path)
    replayer = Replayer(path)
    center = np.random.default_rng(seed).random(3)
    y = replayer.evaluate64(center)[0]
    prop = make_property(name, eps=eps, **PARAMS[name])
    negation = prop.negation(center, y, int(np.argmax(y)), Domain())
    verdict = PointDecider(net, replayer, "z3").decide(Query(0, negation), timeout_s=20)
    if verdict.status is Status.VIOLATED:
        assert verdict.witness is not None
        assert negation.is_satisfied_by(verdict.witness, replayer.evaluate64(verdict.witness)[0])
        assert negation.is_satisfied_by(verdict.witness, replayer.evaluate32(verdict.witness)[0])
    if verdict.status is not Status.HOLDS:
        return
    model = to_torch(net, torch.float64)
    x0 = torch.from_numpy(center)[None, :]
    refs = prop.references(model(x0))
    found = attack(prop, model, x0, refs, Domain(), PGDConfig.strong(),
                   targeted=name in ("cr", "scr"))  # fmt: skip
    x_adv = found.x[0].numpy()
    assert not negation.is_satisfied_by(x_adv, replayer.evaluate64(x_adv)[0])
    region = prop.region(x0, Domain())
    samples = region.sample(500, torch.Generator().manual_seed(seed))[0].numpy()
    ys = replayer.evaluate64(samples)
    assert not any(negation.is_satisfied_by(s, ys[i]) for i, s in enumerate(samples))
