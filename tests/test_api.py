"""The Python API: the README's example runs, and each entry point on in-memory inputs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import robustprop
from robustprop import CR, LR, SR
from robustprop.properties.errors import InputError
from robustprop.verify.engine.verdict import Stage, Status
from robustprop.verify.run.summary import Summary
from tests.verify.tiny_onnx import mlp_bytes

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpus"


def _readme_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Python API", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the README's Python API section has no python block"
    return match.group(1)


def test_the_readme_python_example_runs(tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(_readme_example())
    out = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("<RunResult CR eps=0.01 on <torch Sequential>: 20 points")
    assert "of 20 points attacked successfully" in out.stdout


def _net() -> bytes:
    """2 -> 3 -> 2, ReLU, outputs clipped to [-100, 100]."""
    w1 = np.array([[1.0, 0.5], [-1.0, 1.0], [0.5, -1.0]])  # (out, in)
    w2 = np.array([[1.0, -1.0, 0.5], [-1.0, 1.0, 0.5]])
    return mlp_bytes([(w1, np.zeros(3)), (w2, np.zeros(2))], clip=(-100.0, 100.0))


def test_check_on_a_path_given_as_str_bytes_and_arrays(tmp_path: Path) -> None:
    path = tmp_path / "net.onnx"
    path.write_bytes(_net())
    x = np.array([[0.2, 0.7], [0.9, 0.1], [0.5, 0.5]])
    by_path = robustprop.check(str(path), SR(eps=0.05, delta=10), x, timeout=10)
    by_bytes = robustprop.check(path.read_bytes(), SR(eps=0.05, delta=10), x, timeout=10)
    for result in (by_path, by_bytes):
        s = result.summary
        assert isinstance(s, Summary)
        assert s.points == 3 and s.holds == 3 and s.satisfaction == (1.0, 1.0)
        assert s.security == 1.0 and s.accuracy == 1.0
    assert [p.verdict.status for p in by_path.points if p.verdict] == [Status.HOLDS] * 3
    records = by_path.to_records()
    assert [r["verdict"] for r in records] == ["holds"] * 3
    assert set(records[0]) >= {"index", "label", "verdict", "stage", "witness", "reused"}


def test_repr_is_short_and_says_what_was_found(tmp_path: Path) -> None:
    x = np.array([[0.2, 0.7]])
    result = robustprop.check(_net(), CR(eps=0.01), x, metrics=("satisfaction",), timeout=10)
    text = repr(result)
    assert len(text) < 300
    assert text.startswith("<RunResult CR eps=0.01 on <onnx bytes>: 1 points")
    assert len(repr(result.config)) < 300


def test_decide_returns_a_witness_that_violates() -> None:
    # SR with δ tiny: violated at once; the witness is in the ball and replays
    verdict = robustprop.decide(_net(), SR(eps=0.2, delta=0.01), np.array([0.5, 0.5]))
    assert verdict.status is Status.VIOLATED
    assert verdict.witness is not None
    assert np.max(np.abs(verdict.witness - 0.5)) <= 0.2 + 1e-9


def test_torch_module_needs_an_example_input() -> None:
    net = torch.nn.Sequential(torch.nn.Linear(2, 2))
    with pytest.raises(InputError, match="example_input"):
        robustprop.load(net)
    model = robustprop.load(net, example_input=torch.zeros(1, 2))
    assert model.source == "<torch Sequential>" and len(model.sha256) == 64


def test_points_are_checked() -> None:
    with pytest.raises(InputError, match="expected shape"):
        robustprop.check(_net(), CR(eps=0.01), np.zeros((2, 5)), timeout=5)
    with pytest.raises(InputError, match="NaN"):
        robustprop.check(_net(), CR(eps=0.01), np.full((1, 2), np.nan), timeout=5)
    with pytest.raises(InputError, match="labels"):
        robustprop.check(_net(), CR(eps=0.01), np.zeros((2, 2)), [0.5, 1.5], timeout=5)
    with pytest.raises(InputError, match="not both"):
        robustprop.check(_net(), CR(eps=0.01), np.zeros((2, 2)), data="x.npz")
    with pytest.raises(InputError, match="expected an ONNX path"):
        robustprop.load(3.0)


def test_attack_finds_what_the_verifier_refutes() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    x = torch.rand(16, 2)
    found = robustprop.attack(net, CR(eps=0.3), x)
    assert found.x.shape == (16, 2) and found.violated.dtype == bool
    assert np.all(np.abs(found.x - x.double().numpy()) <= 0.3 + 1e-6)
    # every attacked point really changes the class of the module
    with torch.no_grad():
        before = net(x).argmax(1).numpy()
        after = net(torch.as_tensor(found.x, dtype=torch.float32)).argmax(1).numpy()
    assert np.all((before != after)[found.violated])


def test_check_vnnlib_from_the_api() -> None:
    result = robustprop.check_vnnlib(CORPUS / "ok.onnx", CORPUS / "ok.vnnlib", timeout=20)
    assert result.status in ("sat", "unsat")
    assert result.verdict.stage in (Stage.ATTACK, Stage.BOUNDS, Stage.SOLVER)


def test_lr_through_the_api_is_the_cli_default_lipschitz() -> None:
    assert LR(eps=0.1).lipschitz == 10.0
