"""`verify train --regime certified|lipschitz`: flags, metadata, presets and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
import torch
from click.testing import CliRunner, Result

from robustprop.export.metadata import read_metadata
from robustprop.training.checkpoint import load_checkpoint
from robustprop.training.lipschitz import lipschitz_bound
from robustprop.verify.cli.main import cli

torch.set_num_threads(1)

QUICK = ["--dataset", "fashion-mnist-slice", "--train-limit", "256", "--device", "cpu"]


def _train(out: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["train", *QUICK, "-o", str(out), *args])


def test_certified_trains_and_records_its_schedule(tmp_path: Path) -> None:
    out = tmp_path / "model.onnx"
    result = _train(
        out,
        *("--regime", "certified", "--property", "scr", "--eps", "0.05", "--epochs", "2"),
        *("--bound", "ibp", "--warmup-epochs", "0", "--ramp-epochs", "2", "--kappa-end", "0"),
        *("--preset", "certified"),
    )
    assert result.exit_code == 0, result.output
    assert '"bound": "ibp"' in result.stdout and "sampled points satisfying" in result.stdout
    onnx.checker.check_model(onnx.load(str(out)), full_check=True)
    meta = read_metadata(out)
    assert meta["regime"] == "certified" and meta["property"] == "scr"
    assert meta["preset"] == "certified"
    assert json.loads(meta["property_params"])["eps"] == 0.05
    assert json.loads(meta["regime_params"]) == {
        "bound": "ibp",
        "warmup_epochs": 0,
        "ramp_epochs": 2,
        "kappa_start": 1.0,
        "kappa_end": 0.0,
    }
    training = json.loads(meta["training"])
    assert training["lr"] == 1e-3 and training["epochs"] == 2  # the certified preset, overridden


def test_lipschitz_trains_within_its_bound(tmp_path: Path) -> None:
    out = tmp_path / "model.onnx"
    result = _train(
        out,
        *("--regime", "lipschitz", "--lipschitz", "5", "--projection", "matrix"),
        *("--epochs", "1"),
    )
    assert result.exit_code == 0, result.output
    meta = read_metadata(out)
    assert meta["regime"] == "lipschitz" and "property" not in meta
    assert json.loads(meta["regime_params"]) == {
        "bound": 5.0,
        "projection": "matrix",
        "logit_scale": 10.0,
    }
    model = load_checkpoint(tmp_path / "model.ckpt").build()
    assert lipschitz_bound(model) <= 5.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--regime", "certified"], "--regime certified needs --property cr, sr or scr"),
        (["--regime", "certified", "--property", "lr"], "for lr use the lipschitz regime"),
        (["--regime", "baseline", "--bound", "ibp"], "--bound: only for --regime certified"),
        (
            ["--regime", "constraint", "--property", "sr", "--ramp-epochs", "3"],
            "--ramp-epochs: only for --regime certified",
        ),
        (["--regime", "certified", "--property", "cr", "--bound", "lp"], "unknown bound method"),
        (
            ["--regime", "certified", "--property", "cr", "--kappa-end", "2"],
            "kappa_end must lie in [0, 1], got 2.0",
        ),
        (
            ["--regime", "certified", "--property", "cr", "--warmup-epochs", "-1"],
            "warmup_epochs must be an integer >= 0, got -1",
        ),
        (["--regime", "lipschitz", "--lipschitz", "0"], "lipschitz must be > 0"),
        (["--regime", "lipschitz", "--property", "sr"], "--property sr is trained only by"),
        (["--regime", "baseline", "--projection", "rows"], "--projection: only for --regime"),
        (["--regime", "lipschitz", "--projection", "svd"], "unknown projection 'svd'"),
        (["--regime", "lipschitz", "--logit-scale", "-1"], "logit_scale must be > 0"),
        (["--regime", "baseline", "--logit-scale", "2"], "--logit-scale: only for --regime"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "m.onnx"
    result = _train(out, *args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()
