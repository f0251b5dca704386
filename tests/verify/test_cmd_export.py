"""`verify export` through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from robustprop.export.metadata import read_metadata
from robustprop.training.checkpoint import save_checkpoint
from robustprop.training.models import build_model
from robustprop.verify.cli.main import cli

torch.set_num_threads(1)


def _checkpoint(path: Path, n_inputs: int = 784, **metadata: str) -> Path:
    torch.manual_seed(0)
    save_checkpoint(path, build_model("mlp", n_inputs, 10), "mlp", n_inputs, 10, metadata)
    return path


def test_export_writes_checked_onnx(tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path / "m.pt", dataset="fashion-mnist-slice", regime="baseline")
    out = tmp_path / "m.onnx"
    result = CliRunner().invoke(cli, ["export", str(ckpt), "-o", str(out)])
    assert result.exit_code == 0, result.output
    line = result.stdout.strip()
    assert "\n" not in line and str(out) in line and "opset 17" in line
    assert "max abs diff" in line and "256 fashion-mnist-slice test points" in line
    meta = read_metadata(out)
    assert meta["dataset"] == "fashion-mnist-slice" and meta["regime"] == "baseline"
    assert meta["arch"] == "mlp" and meta["n_inputs"] == "784" and meta["n_classes"] == "10"
    assert json.loads(meta["input_shape"]) == [1, 28, 28]
    assert json.loads(meta["domain"]) == [0.0, 1.0]


def test_dataset_option_overrides_missing_metadata(tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path / "m.pt")
    out = tmp_path / "m.onnx"
    runner = CliRunner()
    result = runner.invoke(cli, ["export", str(ckpt), "-o", str(out)])
    assert result.exit_code == 2 and "pass --data NAME" in result.stderr and not out.exists()
    result = runner.invoke(
        cli, ["export", str(ckpt), "-o", str(out), "--dataset", "fashion-mnist-slice"]
    )
    assert result.exit_code == 0, result.output
    assert read_metadata(out)["dataset"] == "fashion-mnist-slice"


@pytest.mark.parametrize("content", [b"not a checkpoint", b""], ids=["garbage", "empty"])
def test_bad_checkpoint_exits_2(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(content)
    result = CliRunner().invoke(cli, ["export", str(bad), "-o", str(tmp_path / "m.onnx")])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and str(bad) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "m.onnx").exists()


def test_missing_checkpoint_and_input_mismatch_exit_2(tmp_path: Path) -> None:
    runner = CliRunner()
    out = str(tmp_path / "m.onnx")
    result = runner.invoke(cli, ["export", str(tmp_path / "absent.pt"), "-o", out])
    assert result.exit_code == 2 and "absent.pt" in result.stderr
    ckpt = _checkpoint(tmp_path / "m.pt", n_inputs=1024, dataset="fashion-mnist-slice")
    result = runner.invoke(cli, ["export", str(ckpt), "-o", out])
    assert result.exit_code == 2 and "784 inputs" in result.stderr and "1024" in result.stderr


def test_output_is_required(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["export", str(_checkpoint(tmp_path / "m.pt"))])
    assert result.exit_code == 2 and "--output" in result.stderr
