"""ONNX export: Clip(±100) present, metadata, parity with onnxruntime, atomic writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import numpy_helper
from torch import nn

import robustprop.export
from robustprop.export import onnx_export
from robustprop.export.metadata import read_metadata
from robustprop.export.onnx_export import export_onnx
from robustprop.properties.errors import InputError, InternalError
from robustprop.training.data import load_dataset
from robustprop.training.models import build_model

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def real_inputs() -> npt.NDArray[np.float32]:
    return load_dataset("fashion-mnist-slice", "test").x[:64]


def _clip_bounds(path: Path) -> list[float]:
    graph = onnx.load(str(path)).graph
    (clip,) = [n for n in graph.node if n.op_type == "Clip"]
    assert clip.output[0] == "output"
    consts = {n.output[0]: n.attribute[0].t for n in graph.node if n.op_type == "Constant"}
    consts.update({i.name: i for i in graph.initializer})
    return [float(numpy_helper.to_array(consts[name])) for name in clip.input[1:]]


@pytest.mark.parametrize("arch", ["mlp", "mlp-deep"])
def test_export_contract(tmp_path: Path, real_inputs: npt.NDArray[np.float32], arch: str) -> None:
    torch.manual_seed(0)
    model = build_model(arch, 784, 10)
    path = tmp_path / "m.onnx"
    meta = {"dataset": "fashion-mnist-slice", "regime": "baseline", "seed": "0"}
    report = export_onnx(model, path, 784, meta, real_inputs)
    assert report.path == path and report.n_checked == 64 and report.opset >= 13
    assert report.max_abs_diff <= 1e-5 and report.tolerance >= 1e-5
    assert _clip_bounds(path) == [-100.0, 100.0]
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    assert read_metadata(path) == {
        **meta,
        "robustprop_version": robustprop.export.robustprop_version(),
    }
    # Dynamic batch: any batch size runs and matches torch.
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (1, 7):
        (out,) = session.run(["output"], {"input": real_inputs[:batch]})
        expected = model(torch.from_numpy(real_inputs[:batch])).detach().numpy()
        np.testing.assert_allclose(out, expected, atol=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_training_mode_is_restored(tmp_path: Path, real_inputs: npt.NDArray[np.float32]) -> None:
    model = build_model("mlp", 784, 10).train()
    export_onnx(model, tmp_path / "m.onnx", 784, {}, real_inputs)
    assert model.training


class _NoClamp(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc(x))


class _WrongClamp(_NoClamp):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(self.fc(x), -10.0, 100.0)


class _Unsupported(_NoClamp):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(torch.special.i0(self.fc(x)), -100.0, 100.0)


class _Drifting(_NoClamp):
    """Eager results drift from the traced graph: a stand-in for an export bug."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return torch.clamp(self.fc(x) + self.calls, -100.0, 100.0)


@pytest.mark.parametrize(
    ("model", "error", "message"),
    [
        (_NoClamp(), InputError, r"must be clamped.*comes from Relu"),
        (_WrongClamp(), InputError, r"bounds \[-10\.0, 100\.0\]"),
        (_Unsupported(), InputError, r"cannot be exported.*aten::i0"),
        (_Drifting(), InternalError, r"max abs diff \d.* > allowed"),
    ],
    ids=["no-clamp", "wrong-clamp", "unsupported-op", "parity"],
)
def test_failures_leave_no_file(
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    model: nn.Module,
    error: type[Exception],
    message: str,
) -> None:
    path = tmp_path / "m.onnx"
    with pytest.raises(error, match=message):
        export_onnx(model, path, 4, {}, np.full((3, 4), 0.5, np.float32))
    assert not list(tmp_path.iterdir())
    assert capfd.readouterr().out == ""  # torch's IR dump on failure goes to stderr


def test_existing_file_survives_a_failed_export(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    path.write_bytes(b"previous")
    with pytest.raises(InputError):
        export_onnx(_NoClamp(), path, 4, {}, np.zeros((1, 4), np.float32))
    assert path.read_bytes() == b"previous"


def test_bad_arguments(tmp_path: Path) -> None:
    model = build_model("mlp", 4, 2)
    with pytest.raises(InputError, match=r"shape \(k >= 1, 4\)"):
        export_onnx(model, tmp_path / "m.onnx", 4, {}, np.zeros((2, 5), np.float32))
    with pytest.raises(InputError, match="non-finite"):
        export_onnx(model, tmp_path / "m.onnx", 4, {}, np.full((2, 4), np.nan, np.float32))
    with pytest.raises(InputError, match="str to str"):
        export_onnx(model, tmp_path / "m.onnx", 4, {"seed": 3}, np.zeros((2, 4)))  # type: ignore[dict-item]
    with pytest.raises(InputError, match="does not exist"):
        export_onnx(model, tmp_path / "no" / "m.onnx", 4, {}, np.zeros((2, 4)))
    assert not list(tmp_path.iterdir())


def test_read_metadata_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"absent\.onnx: no such ONNX file"):
        read_metadata(tmp_path / "absent.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\xff\xfe not protobuf")
    with pytest.raises(InputError, match=r"bad\.onnx: not a readable ONNX model"):
        read_metadata(bad)


def test_public_names_exist() -> None:
    for module in (robustprop.export, onnx_export):
        assert all(hasattr(module, name) for name in module.__all__)
