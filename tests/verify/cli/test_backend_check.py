"""The requested backend is checked before any work: a missing solver package is exit code 2
with a message naming the backend, the package and the ``pip install`` line; ``auto`` and
``portfolio`` do without one missing solver (a warning says which, the run goes on).

Real subprocess runs of ``verify``: the package is made unimportable by a shim first on
``PYTHONPATH`` (a package of that name whose import raises ImportError, as a broken or absent
install would), not by mocking robustprop.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parents[1] / "golden"

# A vnnlib query on the golden net (2 inputs, 3 outputs): Y_0 >= 100 is out of reach.
SPEC = """(declare-const X_0 Real)
(declare-const X_1 Real)
(declare-const Y_0 Real)
(declare-const Y_1 Real)
(declare-const Y_2 Real)
(assert (>= X_0 0.0))
(assert (<= X_0 1.0))
(assert (>= X_1 0.0))
(assert (<= X_1 1.0))
(assert (>= Y_0 100.0))
"""


def _verify(
    tmp_path: Path, hidden: tuple[str, ...], *args: str
) -> subprocess.CompletedProcess[str]:
    shim = tmp_path / "shim"
    for package in hidden:
        (shim / package).mkdir(parents=True)
        (shim / package / "__init__.py").write_text(
            f"raise ImportError('{package} is hidden by the test shim')\n"
        )
    env = {**os.environ, "PYTHONPATH": str(shim)}
    command = [sys.executable, "-m", "robustprop.verify.cli.main", *args]
    return subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=300, check=False, cwd=tmp_path
    )


def _run_args(tmp_path: Path, backend: str, *extra: str) -> list[str]:
    return [
        "run", "--property", "cr", "--eps", "0.1", "--net", str(GOLDEN / "golden.onnx"),
        "--data", str(GOLDEN / "golden.npz"), "--points", "1", "--backend", backend,
        "--no-cache", "--no-progress", "--json", str(tmp_path / "run.json"), *extra,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("backend", "hidden", "package"),
    [
        ("marabou", ("maraboupy",), "maraboupy"),
        ("z3", ("z3",), "z3-solver"),
        ("milp", ("highspy",), "highspy"),
    ],
)
def test_run_refuses_a_backend_whose_package_is_missing(
    tmp_path: Path, backend: str, hidden: tuple[str, ...], package: str
) -> None:
    done = _verify(tmp_path, hidden, *_run_args(tmp_path, backend))
    assert done.returncode == 2, done.stderr
    message = done.stderr.strip().splitlines()[-1]
    assert message.startswith(f"error: backend {backend!r} needs the solver package {package!r}")
    assert f"pip install {package}" in message
    assert not (tmp_path / "run.json").exists()  # refused before any work


def test_run_without_satisfaction_needs_no_solver(tmp_path: Path) -> None:
    done = _verify(
        tmp_path, ("maraboupy",), *_run_args(tmp_path, "marabou", "--metrics", "security")
    )
    assert done.returncode == 0, done.stderr


def test_vnnlib_refuses_and_writes_error_to_the_results_file(tmp_path: Path) -> None:
    spec = tmp_path / "prop.vnnlib"
    spec.write_text(SPEC)
    results = tmp_path / "out.txt"
    args = ["vnnlib", "--net", str(GOLDEN / "golden.onnx"), "--spec", str(spec),
            "--backend", "z3", "--results-file", str(results)]  # fmt: skip
    done = _verify(tmp_path, ("z3",), *args)
    assert done.returncode == 2, done.stderr
    assert "backend 'z3' needs the solver package 'z3-solver'" in done.stderr
    assert "pip install z3-solver" in done.stderr
    assert results.read_text() == "error\n"


@pytest.mark.parametrize(
    ("backend", "strategy", "hidden", "used", "skipped"),
    [
        ("portfolio", "plain", ("maraboupy",), "milp", "maraboupy"),
        ("portfolio", "plain", ("highspy",), "marabou", "highspy"),
        ("auto", "staged", ("z3",), "portfolio", "z3-solver"),  # the golden net is tiny: Z3 first
        ("auto", "plain", ("z3", "maraboupy"), "milp", "maraboupy"),
    ],
)
def test_auto_and_portfolio_skip_a_missing_solver(
    tmp_path: Path, backend: str, strategy: str, hidden: tuple[str, ...], used: str, skipped: str
) -> None:
    done = _verify(tmp_path, hidden, *_run_args(tmp_path, backend, "--strategy", strategy))
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.startswith("WARNING")]
    assert len(warnings) == len(hidden), done.stderr  # once each, as the backend is chosen
    assert any(f"package {skipped!r} cannot be imported" in line for line in warnings)
    assert all(line.endswith(f"running {used}") for line in warnings)
    doc = json.loads((tmp_path / "run.json").read_text())
    assert doc["summary"]["holds"] == 1
    assert f"backend {used}" in done.stdout


def test_auto_without_any_solver_is_refused(tmp_path: Path) -> None:
    done = _verify(tmp_path, ("maraboupy", "z3", "highspy"), *_run_args(tmp_path, "auto"))
    assert done.returncode == 2, done.stderr
    message = done.stderr.strip().splitlines()[-1]
    assert "backend 'auto' needs one of the solver packages" in message
    assert "pip install maraboupy highspy z3-solver" in message
