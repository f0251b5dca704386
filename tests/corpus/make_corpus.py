"""Writes the bad-input corpus of ``tests/test_corpus.py`` (run: python make_corpus.py).

Every file here is small and deliberately wrong in one way; its name says how. The one good
network, ``ok.onnx`` (2 inputs, 3 outputs, the golden net of ``tests/verify/golden``), and the
one good data file, ``ok.npz``, are the baselines the bad ones differ from. Deterministic: the
same bytes on every run (no timestamps; fixed seeds), so regenerating shows no diff.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).parent
OPSET = 17


def _t(name: str, value: object, dtype: type = np.float32) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)


def _model(
    nodes: Sequence[onnx.NodeProto],
    inits: Sequence[onnx.TensorProto],
    inputs: Sequence[onnx.ValueInfoProto] | None = None,
    outputs: Sequence[onnx.ValueInfoProto] | None = None,
    props: dict[str, str] | None = None,
) -> onnx.ModelProto:
    graph = helper.make_graph(
        list(nodes),
        "corpus",
        list(inputs or [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 2])]),
        list(outputs or [helper.make_tensor_value_info("output", TensorProto.FLOAT, None)]),
        list(inits),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    model.producer_name = "robustprop-corpus"
    helper.set_model_props(model, props or {"dataset": "ok.npz", "domain": "[0.0, 1.0]"})
    return model


_W1 = np.array([[1.0, -1.0], [-1.0, 1.0]])
_W2 = np.array([[10.0, 0.0, 0.0], [0.0, 10.0, 0.0]])
_B2 = np.array([0.0, 0.0, 0.5])


def _mlp(
    middle: Sequence[onnx.NodeProto] = (helper.make_node("Relu", ["h"], ["r"]),),
    w1: np.ndarray = _W1,
    w2: np.ndarray = _W2,
    extra_inits: Sequence[onnx.TensorProto] = (),
    **kwargs: object,
) -> onnx.ModelProto:
    """input (B, 2) -> MatMul W1 -> h -> ``middle`` (h -> r) -> MatMul W2 + B2 -> Clip."""
    inits = [
        _t("W1", w1),
        _t("W2", w2),
        _t("B2", _B2),
        _t("lo", -100.0),
        _t("hi", 100.0),
        *extra_inits,
    ]
    nodes = [
        helper.make_node("MatMul", ["input", "W1"], ["h"], name="matmul_1"),
        *middle,
        helper.make_node("MatMul", ["r", "W2"], ["z0"], name="matmul_2"),
        helper.make_node("Add", ["z0", "B2"], ["z"], name="add_2"),
        helper.make_node("Clip", ["z", "lo", "hi"], ["output"], name="clip"),
    ]
    return _model(nodes, inits, **kwargs)  # type: ignore[arg-type]


def ok_model() -> onnx.ModelProto:
    return _mlp()


def softmax_inside() -> onnx.ModelProto:
    return _mlp([helper.make_node("Softmax", ["h"], ["r"], name="softmax_1", axis=-1)])


def sigmoid() -> onnx.ModelProto:
    return _mlp([helper.make_node("Sigmoid", ["h"], ["r"], name="sigmoid_1")])


def maxpool() -> onnx.ModelProto:
    """(B, 1, 2, 2) image -> MaxPool 2x2 -> flatten -> Gemm to 3 outputs."""
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 2, 2])
    nodes = [
        helper.make_node("MaxPool", ["input"], ["p"], name="maxpool_1", kernel_shape=[2, 2]),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "W"], ["output"], name="gemm", transB=1),
    ]
    return _model(nodes, [_t("W", np.ones((3, 1)))], inputs=[inp])


def lstm() -> onnx.ModelProto:
    """(1, B, 2) sequence -> LSTM with hidden size 3; output Y_h."""
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, 2])
    rng = np.random.default_rng(0)
    inits = [_t("W", rng.normal(size=(1, 12, 2))), _t("R", rng.normal(size=(1, 12, 3)))]
    nodes = [
        helper.make_node("LSTM", ["input", "W", "R"], ["", "output"], name="lstm_1", hidden_size=3)
    ]
    return _model(nodes, inits, inputs=[inp])


def custom_domain_op() -> onnx.ModelProto:
    model = _mlp([helper.make_node("FancyRelu", ["h"], ["r"], name="fancy", domain="com.example")])
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    return model


def dynamic_features() -> onnx.ModelProto:
    """The feature axis (not only the batch axis) is symbolic."""
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", "features"])
    return _mlp(inputs=[inp])


def mismatched_shapes() -> onnx.ModelProto:
    """Declares 3 input features, but the first weight matrix takes 2."""
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3])
    return _mlp(inputs=[inp])


def two_inputs() -> onnx.ModelProto:
    inputs = [
        helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 2]),
        helper.make_tensor_value_info("bias", TensorProto.FLOAT, [3]),
    ]
    model = _mlp(inputs=inputs)
    model.graph.node[-2].input[1] = "bias"
    return model


def two_outputs() -> onnx.ModelProto:
    outputs = [
        helper.make_tensor_value_info("output", TensorProto.FLOAT, None),
        helper.make_tensor_value_info("r", TensorProto.FLOAT, None),
    ]
    return _mlp(outputs=outputs)


def nan_weights() -> onnx.ModelProto:
    w2 = _W2.copy()
    w2[1, 1] = np.nan
    return _mlp(w2=w2)


def inf_weights() -> onnx.ModelProto:
    w1 = _W1.copy()
    w1[0, 0] = np.inf
    return _mlp(w1=w1)


def integer_input() -> onnx.ModelProto:
    inp = helper.make_tensor_value_info("input", TensorProto.INT64, ["batch", 2])
    return _mlp(inputs=[inp])


def clip_min_above_max() -> onnx.ModelProto:
    model = _mlp()
    for init in model.graph.initializer:
        if init.name in ("lo", "hi"):
            init.CopyFrom(_t(init.name, 100.0 if init.name == "lo" else -100.0))
    return model


def bad_domain_metadata() -> onnx.ModelProto:
    return _mlp(props={"dataset": "ok.npz", "domain": "[0, "})


def no_metadata() -> onnx.ModelProto:
    model = _mlp()
    del model.metadata_props[:]
    return model


def four_inputs() -> onnx.ModelProto:
    """A valid net with 4 inputs (the data files have 2 features)."""
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4])
    return _mlp(inputs=[inp], w1=np.vstack([_W1, _W1]))


ONNX: dict[str, Callable[[], onnx.ModelProto]] = {
    "ok": ok_model,
    "softmax_inside": softmax_inside,
    "sigmoid": sigmoid,
    "maxpool": maxpool,
    "lstm": lstm,
    "custom_domain_op": custom_domain_op,
    "dynamic_features": dynamic_features,
    "mismatched_shapes": mismatched_shapes,
    "two_inputs": two_inputs,
    "two_outputs": two_outputs,
    "nan_weights": nan_weights,
    "inf_weights": inf_weights,
    "integer_input": integer_input,
    "clip_min_above_max": clip_min_above_max,
    "bad_domain_metadata": bad_domain_metadata,
    "no_metadata": no_metadata,
    "four_inputs": four_inputs,
}


def _npz(path: Path, **arrays: np.ndarray) -> None:
    """An ``.npz`` with fixed zip timestamps (``np.savez`` stamps the current time)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for key, value in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asarray(value), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(2020, 1, 1, 0, 0, 0))
            archive.writestr(info, buffer.getvalue())


def write_data() -> list[str]:
    x = np.array([[0.8, 0.2], [0.3, 0.6], [0.5, 0.1]], dtype=np.float32)
    y = np.array([0, 1, 0], dtype=np.int64)
    nan_x = x.copy()
    nan_x[1, 0] = np.nan
    files: dict[str, dict[str, np.ndarray]] = {
        "ok": {"x": x, "y": y},
        "data_wrong_shape": {"x": np.full((3, 5), 0.5, dtype=np.float32), "y": y},
        "data_int_features": {"x": np.ones((3, 2), dtype=np.int32), "y": y},
        "data_nan": {"x": nan_x, "y": y},
        "data_label_negative": {"x": x, "y": np.array([0, -1, 0], dtype=np.int64)},
        "data_label_above_classes": {"x": x, "y": y + 5, "n_classes": np.array(3)},
        "data_float_labels": {"x": x, "y": y.astype(np.float32)},
        "data_empty": {
            "x": np.zeros((0, 2), dtype=np.float32),
            "y": np.zeros(0, dtype=np.int64),
        },
        "data_count_mismatch": {"x": x, "y": y[:2]},
        "data_out_of_unit_box": {"x": x * 3, "y": y},
        "data_missing_y": {"x": x},
        "data_high_label": {"x": x, "y": np.array([0, 7, 0], dtype=np.int64)},
    }
    for name, arrays in files.items():
        _npz(HERE / f"{name}.npz", **arrays)
    (HERE / "data_not_npz.npz").write_text("x,y\n0.8,0.2,0\n")
    return [*(f"{n}.npz" for n in files), "data_not_npz.npz"]


VNNLIB = {
    # X_0, X_1 in the unit box; unsafe: Y_1 >= Y_0 (a valid file for ok.onnx, the baseline).
    "ok": "(declare-const X_0 Real)\n(declare-const X_1 Real)\n"
    "(declare-const Y_0 Real)\n(declare-const Y_1 Real)\n(declare-const Y_2 Real)\n"
    "(assert (>= X_0 0.7))\n(assert (<= X_0 0.9))\n(assert (>= X_1 0.1))\n(assert (<= X_1 0.3))\n"
    "(assert (>= Y_1 Y_0))\n",
    # Valid, and sat (x1 >= x0 reaches Y_1 >= Y_0): with --no-attack only a solver decides it.
    "needs_solver": "(declare-const X_0 Real)\n(declare-const X_1 Real)\n"
    "(declare-const Y_0 Real)\n(declare-const Y_1 Real)\n(declare-const Y_2 Real)\n"
    "(assert (>= X_0 0.4))\n(assert (<= X_0 0.6))\n(assert (>= X_1 0.4))\n(assert (<= X_1 0.6))\n"
    "(assert (>= Y_1 Y_0))\n",
    "vnnlib_unbalanced": "(declare-const X_0 Real)\n(assert (<= X_0 1.0)\n",
    "vnnlib_extra_paren": "(declare-const X_0 Real))\n",
    "vnnlib_bad_number": "(declare-const X_0 Real)\n(declare-const X_1 Real)\n"
    "(assert (<= X_0 one))\n",
    "vnnlib_input_out_of_range": "(declare-const X_0 Real)\n(declare-const X_1 Real)\n"
    "(declare-const X_5 Real)\n(assert (<= X_5 1.0))\n",
    "vnnlib_output_out_of_range": "(declare-const X_0 Real)\n(declare-const X_1 Real)\n"
    "(declare-const Y_9 Real)\n(assert (>= X_0 0.0))\n(assert (<= X_0 1.0))\n"
    "(assert (>= X_1 0.0))\n(assert (<= X_1 1.0))\n(assert (>= Y_9 0.0))\n",
    "vnnlib_undeclared": "(declare-const X_0 Real)\n(declare-const X_1 Real)\n"
    "(assert (<= Z_0 1.0))\n",
    "vnnlib_unbounded_input": "(declare-const X_0 Real)\n(declare-const X_1 Real)\n"
    "(declare-const Y_0 Real)\n(assert (>= X_0 0.0))\n(assert (>= Y_0 1.0))\n",
    "vnnlib_unknown_command": "(declare-const X_0 Real)\n(check-sat)\n",
}


def write_vnnlib() -> list[str]:
    for name, text in VNNLIB.items():
        (HERE / f"{name}.vnnlib").write_text(text)
    (HERE / "vnnlib_binary.vnnlib").write_bytes(b"\xff\xfe\x00(assert")
    return [*(f"{n}.vnnlib" for n in VNNLIB), "vnnlib_binary.vnnlib"]


def _torch_bytes(payload: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def write_checkpoints() -> list[str]:
    """Bad inputs for ``verify export``, and one good checkpoint."""
    good_meta = {"dataset": "ok.npz"}
    state = {"0.weight": torch.zeros(4, 2), "0.bias": torch.zeros(4)}
    files = {
        "ckpt_garbage": b"this is not a torch checkpoint\n",
        "ckpt_truncated": _torch_bytes({"format": "robustprop-checkpoint"})[:60],
        "ckpt_foreign_dict": _torch_bytes({"model": state}),
        "ckpt_wrong_version": _torch_bytes(
            {"format": "robustprop-checkpoint", "version": 99, "state_dict": state}
        ),
        "ckpt_wrong_weights": _torch_bytes(
            {
                "format": "robustprop-checkpoint",
                "version": 1,
                "arch": "mlp",
                "n_inputs": 2,
                "n_classes": 3,
                "state_dict": state,
                "metadata": good_meta,
            }
        ),
        "ckpt_unknown_arch": _torch_bytes(
            {
                "format": "robustprop-checkpoint",
                "version": 1,
                "arch": "transformer",
                "n_inputs": 2,
                "n_classes": 3,
                "state_dict": state,
                "metadata": good_meta,
            }
        ),
    }
    for name, data in files.items():
        (HERE / f"{name}.ckpt").write_bytes(data)
    # A good checkpoint (the paper's MLP, 2 -> 100 -> 3), for bad *output* paths of export.
    from robustprop.training.checkpoint import save_checkpoint
    from robustprop.training.models import build_model

    torch.manual_seed(0)
    model = build_model("mlp", 2, 3)
    save_checkpoint(HERE / "ckpt_ok.ckpt", model, "mlp", 2, 3, good_meta)
    return [*(f"{n}.ckpt" for n in files), "ckpt_ok.ckpt"]


def _report_ok() -> dict[str, object]:
    point = {"index": 0, "label": 0, "verdict": "holds", "time_s": 0.1, "backend": "z3"}
    return {
        "tool": "robustprop",
        "version": "0.1.0",
        "network": {"path": "ok.onnx", "sha256": "0" * 64},
        "property": {"name": "cr", "params": {"eps": 0.1, "reference": "output"}},
        "data": {"source": "ok.npz", "split": "test", "points": 1, "seed": None},
        "backend": "z3",
        "metrics": ["satisfaction"],
        "summary": {
            "points": 1,
            "holds": 1,
            "violated": 0,
            "unknown": 0,
            "satisfaction": [1.0, 1.0],
            "invariant_breaches": [],
        },
        "points": [point],
    }


def write_reports() -> list[str]:
    ok = _report_ok()
    wrong_verdict = json.loads(json.dumps(ok))
    wrong_verdict["points"][0]["verdict"] = "maybe"
    miscounted = json.loads(json.dumps(ok))
    miscounted["summary"]["holds"] = 5
    no_points = {k: v for k, v in ok.items() if k != "points"}
    texts = {
        "report_ok": json.dumps(ok, indent=1),
        "report_not_json": "holds: 1\n",
        "report_truncated": json.dumps(ok)[:100],
        "report_array": "[1, 2, 3]",
        "report_wrong_verdict": json.dumps(wrong_verdict),
        "report_miscounted": json.dumps(miscounted),
        "report_no_points": json.dumps(no_points),
    }
    for name, text in texts.items():
        (HERE / f"{name}.json").write_text(text + "\n")
    return [f"{n}.json" for n in texts]


def write_onnx() -> list[str]:
    names = []
    for name, build in ONNX.items():
        (HERE / f"{name}.onnx").write_bytes(build().SerializeToString())
        names.append(f"{name}.onnx")
    ok = (HERE / "ok.onnx").read_bytes()
    raw = {
        "truncated": ok[: len(ok) // 2],
        "garbage": bytes(np.random.default_rng(8).integers(0, 256, 300, dtype=np.uint8)),
        "empty": b"",
        "text": b"this is a text file, not a network\n",
    }
    for name, data in raw.items():
        (HERE / f"{name}.onnx").write_bytes(data)
        names.append(f"{name}.onnx")
    return names


def write_stores() -> list[str]:
    """A store of another schema version, and a file that is not SQLite at all."""
    import sqlite3

    path = HERE / "store_schema_99.sqlite"
    path.unlink(missing_ok=True)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("INSERT INTO meta VALUES ('schema_version', '99')")
    db.close()
    (HERE / "store_garbage.sqlite").write_bytes(b"SQLite format 2\x00" + b"\x00" * 200)
    return ["store_schema_99.sqlite", "store_garbage.sqlite"]


def main() -> None:
    written = [
        *write_onnx(),
        *write_data(),
        *write_vnnlib(),
        *write_checkpoints(),
        *write_reports(),
        *write_stores(),
    ]
    total = sum((HERE / n).stat().st_size for n in written)
    print(f"wrote {len(written)} files ({total} bytes) to {HERE}")


if __name__ == "__main__":
    main()
