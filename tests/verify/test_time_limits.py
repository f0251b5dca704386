"""``--timeout`` bounds each point's wall time in the exact stage; ``--max-time`` the run.

Before, ``--timeout`` only reached the solver: a pool worker could overrun it by 5 s before it
was killed, and with one job the portfolio ran in the parent with no limit on the work around
the solver (points of the README's quick start took 11-12 s at ``--timeout 10``). Now the
pool kills a point still running when its time is up, the solver gets a share of it that
leaves room for the rest, and one job runs in such a pool too. ``--max-time`` did not exist.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from robustprop.properties import Domain, make_property
from robustprop.verify.cli.main import cli
from robustprop.verify.engine.backends.base import BackendName
from robustprop.verify.engine.network import network_from_bytes
from robustprop.verify.engine.point_query import Query
from robustprop.verify.engine.replay import Replayer
from robustprop.verify.engine.verdict import Status
from robustprop.verify.run import pool, stages
from robustprop.verify.run.model import ModelBytes
from robustprop.verify.run.pool import WorkerPool, WorkerSpec, solver_budget

ROOT = Path(__file__).resolve().parents[2]
NET = Path(__file__).parent / "golden" / "golden.onnx"
N = 4


def _queries(n: int) -> list[Query]:
    prop = make_property("cr", eps=0.1)
    center = np.array([0.8, 0.2])
    y = Replayer(NET).evaluate64(center)[0]
    return [Query(i, prop.negation(center, y, 0, Domain())) for i in range(n)]


@pytest.fixture
def hang_on_point_0(monkeypatch: pytest.MonkeyPatch) -> None:
    """The exact stage's workers hang on point 0 (the pool's fault injection)."""
    monkeypatch.setattr(
        stages, "WorkerSpec", functools.partial(pool.WorkerSpec, fault="hang", fault_index=0)
    )


def test_a_point_gets_its_timeout_and_no_more() -> None:
    spec = WorkerSpec(ModelBytes.read(NET), "z3", fault="hang", fault_index=0)
    with WorkerPool(spec, 1) as workers:
        list(workers.map(_queries(2)[1:], 5.0))  # a started worker: start-up is not timed
        start = time.monotonic()
        _, verdict = next(workers.map(_queries(1), 1.0))
        elapsed = time.monotonic() - start
    assert verdict.status is Status.UNKNOWN and verdict.reason == "timeout after 1 s"
    assert elapsed < 1.5, elapsed


def test_the_solver_leaves_room_for_the_work_around_it() -> None:
    assert solver_budget(10.0) == 9.0
    assert solver_budget(1.0) == pytest.approx(0.8)
    assert solver_budget(0.0) == 0.0


def test_one_job_with_the_portfolio_is_bounded_too(hang_on_point_0: None) -> None:
    model = ModelBytes.read(NET)
    network = network_from_bytes(model.data, source=model.source)
    settings = stages.ExactSettings(BackendName.PORTFOLIO, 1.0, jobs=1)
    start = time.monotonic()
    found = dict(stages.exact_stage(_queries(1), settings, network, model, Replayer(NET)))
    assert time.monotonic() - start < 10  # the worker's start-up and one second
    ((_, verdict),) = found.items()
    assert verdict.status is Status.UNKNOWN and "timeout after 1 s" in verdict.reason


def _data(tmp_path: Path) -> Path:
    a = np.linspace(0.7, 0.8, N)
    path = tmp_path / "points.npz"
    np.savez(path, x=np.stack([a, a - 0.6], 1).astype(np.float32), y=np.zeros(N, np.int64))
    return path


def _args(tmp_path: Path, *extra: str) -> list[str]:
    return [
        "run", "--property", "cr", "--eps", "0.31", "--net", str(NET),
        "--data", str(_data(tmp_path)), "--points", str(N), "--metrics", "satisfaction",
        "--backend", "z3", "--strategy", "plain", "--timeout", "300", "--no-progress",
        "--store", str(tmp_path / "s.sqlite"), "--json", str(tmp_path / "r.json"), *extra,
    ]  # fmt: skip


def test_max_time_bounds_the_run(tmp_path: Path, hang_on_point_0: None) -> None:
    start = time.monotonic()
    result = CliRunner().invoke(cli, _args(tmp_path, "--jobs", "2", "--max-time", "4"))
    assert result.exit_code == 0, result.output
    assert time.monotonic() - start < 4 + 15
    points = json.loads((tmp_path / "r.json").read_text())["points"]
    assert points[0]["verdict"] == "unknown" and "run time limit" in points[0]["reason"]
    assert [p["verdict"] for p in points[1:]] == ["violated"] * (N - 1)
    with sqlite3.connect(tmp_path / "s.sqlite") as db:  # a cut-short query is not stored
        stored = [row[0] for row in db.execute("SELECT status FROM verdicts")]
    db.close()
    assert stored == ["violated"] * (N - 1)


def test_a_run_out_of_time_before_the_exact_stage(tmp_path: Path) -> None:
    args = _args(tmp_path, "--strategy", "staged", "--max-time", "0.001")
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    points = json.loads((tmp_path / "r.json").read_text())["points"]
    assert {p["reason"] for p in points} == {"run time limit"}
    assert not (tmp_path / "s.sqlite").exists() or _stored(tmp_path / "s.sqlite") == 0


def _stored(path: Path) -> int:
    with sqlite3.connect(path) as db:
        count = int(db.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0])
    db.close()
    return count


@pytest.mark.parametrize("value", ["0", "-1"])
def test_max_time_must_be_positive(tmp_path: Path, value: str) -> None:
    result = CliRunner().invoke(cli, _args(tmp_path, "--max-time", value))
    assert result.exit_code == 2 and "--max-time" in result.output


def test_help_and_readme_say_what_the_limits_bound() -> None:
    text = " ".join(CliRunner().invoke(cli, ["run", "--help"]).output.split())
    assert "--max-time" in text and "whole run" in text
    assert "Wall-clock seconds per point for the exact stage" in text
    commands = (ROOT / "README.md").read_text(encoding="utf-8").split("## Commands", 1)[1]
    commands = commands.split("\n## ", 1)[0]
    assert "--max-time" in commands and "--trust-store" in commands
