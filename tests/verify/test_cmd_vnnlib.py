"""``verify vnnlib``: VNN-COMP output format and exit codes, in-process with CliRunner."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from robustprop.verify.cli.main import cli
from robustprop.verify.cli.vnnlib import format_witness
from tests.verify.tiny_onnx import mlp_bytes

# y0 = |x0 - x1|, y1 = relu(x0 + x1 - 1)
W1 = np.array([[1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]])
B1 = np.array([0.0, 0.0, -1.0])
W2 = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
DECL = "".join(f"(declare-const {v} Real)\n" for v in ("X_0", "X_1", "Y_0", "Y_1"))
BOX = "(assert (>= X_0 0)) (assert (<= X_0 1)) (assert (>= X_1 0)) (assert (<= X_1 1))\n"


def instance(tmp_path: Path, out: str) -> list[str]:
    net = tmp_path / "net.onnx"
    net.write_bytes(mlp_bytes([(W1, B1), (W2, np.zeros(2))]))
    spec = tmp_path / "p.vnnlib"
    spec.write_text(DECL + BOX + out)
    return ["vnnlib", "--net", str(net), "--spec", str(spec), "--timeout", "10"]


def test_sat_prints_a_confirmed_witness(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, [*instance(tmp_path, "(assert (>= Y_0 0.9))"), "--no-attack"])
    assert result.exit_code == 0, result.output  # VNN-COMP: 0 whenever a result was written
    lines = result.stdout.splitlines()
    assert lines[0] == "sat"
    values = dict(re.findall(r"\((\w_\d+) (\S+?)\)", "\n".join(lines[1:])))
    assert set(values) == {"X_0", "X_1", "Y_0", "Y_1"}
    x0, x1, y0 = (float(values[k]) for k in ("X_0", "X_1", "Y_0"))
    assert 0 <= x0 <= 1 and 0 <= x1 <= 1 and y0 >= 0.9
    assert abs(abs(x0 - x1) - y0) < 1e-6


def test_unsat_exits_zero(tmp_path: Path) -> None:
    for backend in ("marabou", "z3"):
        args = [*instance(tmp_path, "(assert (>= Y_1 1.5))"), "--backend", backend]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        assert result.stdout == "unsat\n"


def test_bad_input_exits_two(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, instance(tmp_path, "(assert (>= Y_7 1))"))
    assert result.exit_code == 2
    assert "p.vnnlib:6:13: index out of range" in result.stderr
    args = [*instance(tmp_path, "(assert (>= Y_0 1))")]
    args[-1] = "0"
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and "--timeout must be positive" in result.stderr


def test_witness_format_keeps_full_precision() -> None:
    text = format_witness(np.array([0.1, 1 / 3]), np.array([-2.5e-10]))
    assert text == "((X_0 0.1)\n (X_1 0.3333333333333333)\n (Y_0 -2.5e-10))"
