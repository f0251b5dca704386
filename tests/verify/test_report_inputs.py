"""Real run documents for the report and JUnit tests, made by ``verify run`` on the golden net.

The golden net (golden/make_golden.py) gives known verdicts at x̂ = (0.8, 0.2):
LR with L = 19 is violated (PGD finds it); LR with L = 20 holds, and with a 1 ns time limit
timeout it is unknown; CR holds at ε = 0.1 and is violated at ε = 0.31 and 0.35 — at 0.31
the violating corner is so small that PGD without steps misses it and only the solver
refutes it. A copy of the net under another folder stands for a second training regime.

The runs are made once per test session (about 10 s) and shared by test_report.py and
test_junit.py through :func:`real_runs`.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from robustprop.verify.cli.main import cli
from robustprop.verify.cli.run import command as run_command

GOLDEN = Path(__file__).parent / "golden"


@dataclass(frozen=True)
class RealRuns:
    """Paths of run JSON files and the ONNX copies they were made on."""

    net_a: Path  # .../baseline/golden.onnx
    net_b: Path  # .../dl2/golden.onnx
    lr19_a: Path  # LR L=19 on net_a: violated (attack)
    lr19_b: Path  # the same on net_b
    unknown: Path  # LR L=20, 1 ns time limit: unknown
    sweep: Path  # CR at ε = 0.1, 0.31, 0.35 on net_a, PGD without steps
    security_only: Path  # LR L=19 with --metrics security,accuracy (no verdicts)


_CACHE: dict[Path, RealRuns] = {}


def run_cli(*args: str | Path) -> None:
    """``verify run`` in-process with the options every fixture run shares."""
    extra = ["--no-progress", "--samples", "50", "--data", str(GOLDEN / "golden.npz")]
    if any("--no-cache" in p.opts for p in run_command.params):
        extra.append("--no-cache")  # keep the resumable store out of these files
    result = CliRunner().invoke(cli, ["run", *map(str, args), *extra])
    assert result.exit_code == 0, result.output


def make_runs(base: Path) -> RealRuns:
    if base in _CACHE:
        return _CACHE[base]
    base.mkdir(parents=True, exist_ok=True)
    net_a, net_b = base / "baseline" / "golden.onnx", base / "dl2" / "golden.onnx"
    for net in (net_a, net_b):
        net.parent.mkdir(exist_ok=True)
        shutil.copyfile(GOLDEN / "golden.onnx", net)
    runs = RealRuns(
        net_a=net_a,
        net_b=net_b,
        lr19_a=base / "lr19_baseline.json",
        lr19_b=base / "lr19_dl2.json",
        unknown=base / "unknown.json",
        sweep=base / "sweep.json",
        security_only=base / "security_only.json",
    )
    lr19 = ("--property", "lr", "--lipschitz", "19", "--points", "1")
    run_cli(*lr19, "--net", net_a, "--json", runs.lr19_a)
    run_cli(*lr19, "--net", net_b, "--json", runs.lr19_b)
    run_cli(*lr19, "--net", net_a, "--metrics", "security,accuracy", "--json", runs.security_only)
    run_cli(
        *("--property", "lr", "--lipschitz", "20", "--points", "1", "--timeout", "1e-9"),
        *("--strategy", "plain"),  # the bound stage would prove it
        *("--net", net_a, "--json", runs.unknown),
    )
    run_cli(
        *("--property", "cr", "--eps", "0.1,0.31,0.35", "--points", "1"),
        *("--attack-steps", "0", "--restarts", "1", "--net", net_a, "--json", runs.sweep),
        *("--strategy", "plain"),  # the solver, not the bound stage, decides every point
    )
    _CACHE[base] = runs
    return runs


@pytest.fixture(scope="session")
def real_runs(tmp_path_factory: pytest.TempPathFactory) -> RealRuns:
    return make_runs(tmp_path_factory.getbasetemp() / "report-runs")


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def test_fixture_runs_have_the_verdicts_the_report_tests_rely_on(real_runs: RealRuns) -> None:
    assert load(real_runs.lr19_a)["points"][0]["verdict"] == "violated"
    assert load(real_runs.lr19_b)["network"]["path"] == str(real_runs.net_b)
    assert load(real_runs.unknown)["points"][0]["verdict"] == "unknown"
    assert "verdict" not in load(real_runs.security_only)["points"][0]
    sweep = load(real_runs.sweep)
    assert sweep["kind"] == "sweep"
    by_eps = {r["property"]["params"]["eps"]: r["summary"] for r in sweep["runs"]}
    assert set(by_eps) == {0.1, 0.31, 0.35}
    assert by_eps[0.1]["holds"] == 1
    assert by_eps[0.31]["violated"] == 1
    assert by_eps[0.31]["refuted_but_missed_by_attack"] == [0]
