"""The ONNX -> IR reader against onnxruntime: benchmark networks and hand-built graphs."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper

from robustprop.properties.errors import InputError, InternalError
from robustprop.verify.engine.network import (
    Affine,
    Clip,
    OnnxRunner,
    Relu,
    check_against_onnxruntime,
    load_network,
    network_from_bytes,
)
from tests.verify.tiny_onnx import model, tensor

BENCH = Path(__file__).resolve().parents[3] / "shared" / "benchmarks"
needs_bench = pytest.mark.skipif(not BENCH.is_dir(), reason="../shared/benchmarks is absent")
BENCH_NETS = sorted(BENCH.glob("**/*.onnx")) if BENCH.is_dir() else []

rng = np.random.default_rng(0)


def assert_matches_ort(data: bytes, lo: float = -1.0, hi: float = 1.0, points: int = 16) -> None:
    net = network_from_bytes(data, check_points=0)
    xs = lo + (hi - lo) * rng.random((points, net.n))
    xs = xs.astype(np.float32).astype(np.float64)
    ort = OnnxRunner(data, "<test>").evaluate(xs)
    np.testing.assert_allclose(net.evaluate(xs), ort, rtol=1e-5, atol=1e-5)


@needs_bench
@pytest.mark.parametrize("path", BENCH_NETS, ids=lambda p: p.name)
def test_benchmark_networks_match_onnxruntime(path: Path) -> None:
    net = load_network(path, check_box=(-1.0, 1.0), check_points=6)
    assert net.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert all(isinstance(layer, Affine | Relu | Clip) for layer in net.layers)


@needs_bench
def test_acas_network_reproduces_marabou_reference_points() -> None:
    folder = BENCH / "marabou" / "acasxu"
    net = load_network(folder / "onnx" / "ACASXU_experimental_v2a_1_1.onnx")
    with (folder / "eval_points_1_1.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert rows
    for row in rows:
        x = np.array([float(row[f"x{i}"]) for i in range(5)])
        y = np.array([float(row[f"y{j}"]) for j in range(5)])
        np.testing.assert_allclose(net.evaluate(x)[0], y, atol=1e-5)


@needs_bench
def test_benchmark_shapes() -> None:
    acas = load_network(BENCH / "vnncomp/acasxu/onnx/ACASXU_run2a_1_1_batch_2000.onnx")
    assert (acas.n, acas.m, acas.input_shape) == (5, 5, (1, 1, 1, 5))
    assert sum(isinstance(layer, Relu) for layer in acas.layers) == 6
    mnist = load_network(BENCH / "vnncomp/mnist_fc/onnx/mnist-net_256x2.onnx")
    assert (mnist.n, mnist.m, mnist.input_shape) == (784, 10, (1, 784, 1))
    fc1 = load_network(BENCH / "marabou/fc1/onnx/fc1.onnx", check_box=(-10, 10))
    assert (fc1.n, fc1.m) == (2, 2)  # symbolic batch, initializers listed as inputs


# -- hand-built graphs ---------------------------------------------------------------------


def test_gemm_attributes() -> None:
    A = rng.standard_normal((3, 2))
    B = rng.standard_normal((3, 4))
    nodes = [
        helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0]),  # (2,1)
        helper.make_node("Gemm", ["xt", "A", "c"], ["g"], transA=1, transB=1, alpha=0.5, beta=2.0),
        helper.make_node("Gemm", ["B", "g"], ["y"], transA=1, transB=1),
    ]
    # g = 0.5 * (x^T)^T @ A^T + 2 c -> (1, 3); y = B^T @ g^T -> (4, 1): the input on the right
    data = model(nodes, inits=[tensor("A", A), tensor("B", B), tensor("c", [1.0, -1.0, 0.5])])
    assert_matches_ort(data)


def test_matmul_both_orders_and_1d_input() -> None:
    W = rng.standard_normal((3, 2))
    V = rng.standard_normal((3, 4))
    nodes = [
        helper.make_node("MatMul", ["W", "x"], ["h"]),  # (3,2)@(2,) -> (3,)
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("MatMul", ["r", "V"], ["y"]),  # (3,)@(3,4) -> (4,)
    ]
    data = model(nodes, inits=[tensor("W", W), tensor("V", V)], in_shape=(2,))
    assert_matches_ort(data)
    net = network_from_bytes(data)
    assert (net.n, net.m) == (2, 4)


def test_sub_broadcast_both_sides_mul_div() -> None:
    nodes = [
        helper.make_node("Sub", ["x", "mean"], ["a"]),  # (1, 1, 2) - (3, 1, 1) -> (3, 1, 2)
        helper.make_node("Sub", ["k", "a"], ["b"]),  # constant first
        helper.make_node("Div", ["b", "s"], ["c"]),
        helper.make_node("Mul", ["t", "c"], ["d"]),
        helper.make_node("Neg", ["d"], ["y"]),
    ]
    inits = [
        tensor("mean", np.full((3, 1, 1), 0.25)),  # broadcast to (3, 1, 2): the output grows
        tensor("k", [1.0, 2.0]),
        tensor("s", 4.0),
        tensor("t", [[[1.0, -2.0]], [[3.0, 0.5]], [[0.0, 1.0]]]),
    ]
    data = model(nodes, inits=inits, in_shape=(1, 1, 2))
    assert_matches_ort(data)
    assert network_from_bytes(data).m == 6


@pytest.mark.parametrize("style", ["attributes", "inputs", "constant_nodes", "only_max"])
def test_clip(style: str) -> None:
    W = rng.standard_normal((2, 3)) * 3
    inits = [tensor("W", W)]
    if style == "attributes":
        clip = helper.make_node("Clip", ["h"], ["y"], min=-1.0, max=0.5)
        data = model([helper.make_node("MatMul", ["x", "W"], ["h"]), clip], inits=inits, opset=9)
    elif style == "inputs":
        inits += [tensor("lo", -1.0), tensor("hi", 0.5)]
        clip = helper.make_node("Clip", ["h", "lo", "hi"], ["y"])
        data = model([helper.make_node("MatMul", ["x", "W"], ["h"]), clip], inits=inits)
    elif style == "constant_nodes":  # what torch's exporter writes
        nodes = [
            helper.make_node("MatMul", ["x", "W"], ["h"]),
            helper.make_node("Constant", [], ["lo"], value=tensor("", -1.0)),
            helper.make_node("Constant", [], ["hi"], value=tensor("", 0.5)),
            helper.make_node("Clip", ["h", "lo", "hi"], ["y"]),
        ]
        data = model(nodes, inits=inits)
    else:
        inits += [tensor("hi", 0.5)]
        clip = helper.make_node("Clip", ["h", "", "hi"], ["y"])
        data = model([helper.make_node("MatMul", ["x", "W"], ["h"]), clip], inits=inits)
    assert_matches_ort(data, -3.0, 3.0)
    net = network_from_bytes(data)
    clips = [layer for layer in net.layers if isinstance(layer, Clip)]
    assert len(clips) == 1
    assert clips[0].hi == pytest.approx(0.5)
    assert clips[0].lo == (-np.inf if style == "only_max" else pytest.approx(-1.0))


def test_clip_from_zero_is_relu() -> None:
    data = model([helper.make_node("Clip", ["x", "z"], ["y"])], inits=[tensor("z", 0.0)], opset=13)
    assert network_from_bytes(data).layers == (Relu(),)


@pytest.mark.parametrize(
    ("attrs", "shape", "wshape"),
    [
        ({}, (1, 1, 5, 5), (2, 1, 3, 3)),
        ({"pads": [1, 1, 1, 1], "strides": [2, 2]}, (1, 2, 5, 4), (3, 2, 3, 2)),
        ({"group": 2, "dilations": [2, 1], "pads": [0, 1, 1, 0]}, (1, 2, 6, 5), (4, 1, 2, 3)),
        ({"auto_pad": "SAME_UPPER", "strides": [2, 1]}, (1, 1, 5, 4), (2, 1, 2, 3)),
        ({"auto_pad": "SAME_LOWER"}, (1, 1, 4, 4), (1, 1, 2, 2)),
        ({"pads": [1, 2]}, (1, 2, 7), (2, 2, 3)),  # 1-d
    ],
)
def test_conv_folds_into_affine(
    attrs: dict[str, object], shape: tuple[int, ...], wshape: tuple[int, ...]
) -> None:
    W = rng.standard_normal(wshape)
    b = rng.standard_normal(wshape[0])
    nodes = [
        helper.make_node("Conv", ["x", "W", "b"], ["c"], **attrs),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Flatten", ["r"], ["y"]),
    ]
    data = model(nodes, inits=[tensor("W", W), tensor("b", b)], in_shape=shape)
    assert_matches_ort(data)


def test_batchnorm_reshape_squeeze_unsqueeze_dropout() -> None:
    C = 3
    nodes = [
        helper.make_node("Reshape", ["x", "shape"], ["r"]),  # (1, 6) -> (1, 3, 2)
        helper.make_node("BatchNormalization", ["r", "g", "bb", "mu", "var"], ["bn"], epsilon=1e-3),
        helper.make_node("Unsqueeze", ["bn", "axes"], ["u"]),  # (1, 1, 3, 2)
        helper.make_node("Squeeze", ["u", "axes"], ["s"]),
        helper.make_node("Dropout", ["s"], ["d"]),
        helper.make_node("Identity", ["d"], ["i"]),
        helper.make_node("Flatten", ["i"], ["f"], axis=1),
        helper.make_node("Relu", ["f"], ["y"]),
    ]
    inits = [
        numpy_int64("shape", [1, C, -1]),
        tensor("g", rng.random(C) + 0.5),
        tensor("bb", rng.standard_normal(C)),
        tensor("mu", rng.standard_normal(C)),
        tensor("var", rng.random(C) + 0.1),
        numpy_int64("axes", [1]),
    ]
    data = model(nodes, inits=inits, in_shape=(1, 6))
    assert_matches_ort(data)


def numpy_int64(name: str, values: list[int]) -> object:
    from onnx import numpy_helper

    return numpy_helper.from_array(np.asarray(values, dtype=np.int64), name)


def test_torch_style_view_and_old_opset_squeeze() -> None:
    # x.view(x.size(0), -1) as torch exports it: Shape -> Gather -> Unsqueeze -> Concat -> Reshape
    nodes = [
        helper.make_node("Shape", ["x"], ["shp"]),
        helper.make_node("Constant", [], ["zero"], value=numpy_int64("", [0])),
        helper.make_node("Gather", ["shp", "zero"], ["n"], axis=0),
        helper.make_node("Constant", [], ["m1"], value=numpy_int64("", [-1])),
        helper.make_node("Concat", ["n", "m1"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["flat"]),
        helper.make_node("Gemm", ["flat", "W"], ["g"], transB=1),
        helper.make_node("Unsqueeze", ["g"], ["u"], axes=[0]),
        helper.make_node("Squeeze", ["u"], ["y"], axes=[0]),
    ]
    data = model(
        nodes, inits=[tensor("W", rng.standard_normal((3, 4)))], in_shape=("batch", 2, 2), opset=11
    )
    assert_matches_ort(data)


def test_initializers_listed_as_inputs_and_extra_domain() -> None:
    W = tensor("W", rng.standard_normal((2, 2)))
    w_info = helper.make_tensor_value_info("W", TensorProto.FLOAT, [2, 2])
    inp = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2])
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])], "g", [inp, w_info], [out], [W]
    )
    m = helper.make_model(
        graph,
        opset_imports=[
            helper.make_opsetid("", 8),
            helper.make_opsetid("ai.onnx.converters.tensorflow", 1),
        ],
    )
    m.ir_version = 3
    assert_matches_ort(m.SerializeToString())


def test_consecutive_affine_maps_are_composed() -> None:
    nodes = [
        helper.make_node("Sub", ["x", "mu"], ["a"]),
        helper.make_node("Div", ["a", "sd"], ["b"]),
        helper.make_node("MatMul", ["b", "W"], ["c"]),
        helper.make_node("Add", ["c", "bias"], ["y"]),
    ]
    inits = [
        tensor("mu", [0.5, 0.5]),
        tensor("sd", [2.0, 4.0]),
        tensor("W", rng.standard_normal((2, 3))),
        tensor("bias", [1.0, 2.0, 3.0]),
    ]
    data = model(nodes, inits=inits)
    net = network_from_bytes(data)
    assert len(net.layers) == 1 and isinstance(net.layers[0], Affine)
    assert_matches_ort(data)


# -- errors ----------------------------------------------------------------------------------


def test_unsupported_op_names_op_node_and_file(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(model([helper.make_node("Sigmoid", ["x"], ["y"], name="Sigmoid_3")]))
    with pytest.raises(
        InputError, match=r"unsupported ONNX op 'Sigmoid' at node 'Sigmoid_3' in .*model\.onnx"
    ):
        load_network(path)


def test_unnamed_node_is_named_by_position() -> None:
    data = model([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Tanh", ["r"], ["y"])])
    with pytest.raises(InputError, match=r"'Tanh' at node #1 \(Tanh\)"):
        network_from_bytes(data)


def test_malformed_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a readable ONNX model"):
        network_from_bytes(b"\x08\x01garbage-bytes", source="bad.onnx")
    with pytest.raises(InputError, match="cannot read ONNX model"):
        load_network(tmp_path / "missing.onnx")


def test_two_real_inputs_rejected() -> None:
    extra = helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 2])
    data = model([helper.make_node("Add", ["x", "z"], ["y"])], extra_inputs=[extra])
    with pytest.raises(InputError, match=r"exactly one real .*'x', 'z'"):
        network_from_bytes(data)


def test_non_constant_weight_rejected() -> None:
    data = model(
        [
            helper.make_node("MatMul", ["x", "x2"], ["y"]),
        ],
        inits=[],
    )
    with pytest.raises(InputError, match="'x2' is not available"):
        network_from_bytes(data)
    data = model(
        [helper.make_node("Transpose", ["x"], ["t"]), helper.make_node("MatMul", ["t", "x"], ["y"])]
    )
    with pytest.raises(InputError, match="product of two input-dependent tensors"):
        network_from_bytes(data)
    data = model([helper.make_node("Clip", ["x", "x"], ["y"])])
    with pytest.raises(InputError, match="Clip min 'x' must be constant"):
        network_from_bytes(data)


def test_residual_graph_rejected() -> None:
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Add", ["r", "x"], ["y"]),
    ]
    with pytest.raises(InputError, match="not a sequential feed-forward network"):
        network_from_bytes(model(nodes))


def test_disagreement_with_onnxruntime_is_internal_error() -> None:
    data = model([helper.make_node("MatMul", ["x", "W"], ["y"])], inits=[tensor("W", np.eye(2))])
    net = network_from_bytes(data, source="tiny.onnx")
    wrong = dataclasses.replace(net, layers=(Affine(2 * np.eye(2), np.zeros(2)),))
    with pytest.raises(InternalError, match=r"IR of tiny\.onnx disagrees with onnxruntime"):
        check_against_onnxruntime(wrong, data, np.zeros(2), np.ones(2))


def test_interval_bounds_contain_sampled_outputs() -> None:
    W1, W2 = rng.standard_normal((8, 3)), rng.standard_normal((2, 8))
    nodes = [
        helper.make_node("Gemm", ["x", "W1"], ["h"], transB=1),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("Gemm", ["r", "W2"], ["z"], transB=1),
        helper.make_node("Clip", ["z", "lo", "hi"], ["y"]),
    ]
    data = model(
        nodes,
        inits=[tensor("W1", W1), tensor("W2", W2), tensor("lo", -0.5), tensor("hi", 1.0)],
        in_shape=(1, 3),
    )
    net = network_from_bytes(data)
    lo, hi = np.array([-1.0, 0.0, 0.5]), np.array([0.0, 0.5, 0.75])
    bounds = net.interval_bounds(lo, hi)
    xs = lo + (hi - lo) * rng.random((500, 3))
    h = xs
    for layer, (blo, bhi) in zip(net.layers, bounds, strict=True):
        h = dataclasses.replace(net, layers=(layer,), n=h.shape[1]).evaluate(h)
        assert np.all(h >= blo) and np.all(h <= bhi)


def test_too_large_conv_is_refused_by_name() -> None:
    nodes = [helper.make_node("Conv", ["x", "W"], ["y"], name="big_conv", pads=[1, 1, 1, 1])]
    data = model(nodes, inits=[tensor("W", np.ones((64, 3, 3, 3)))], in_shape=(1, 3, 32, 32))
    with pytest.raises(InputError, match=r"dense .* matrix .* at node 'big_conv'"):
        network_from_bytes(data)
