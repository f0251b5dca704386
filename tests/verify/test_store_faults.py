"""A store that stops accepting writes mid-run: a clear error, and nothing stored is lost.

Two faults, injected into the parent's SQLite connection after the store has opened:
SQLite's own read-only mode (``PRAGMA query_only``, what a read-only file or mount gives),
and a full disk (every INSERT answers ``database or disk is full``, SQLite's SQLITE_FULL).
Either way ``verify run`` must exit 2 with one line naming ``--store``, write no JSON report,
leave the verdicts of an earlier run as they were, and a rerun on a healthy store must finish
the job reusing them.

The points are chosen so that most need the exact solver: CR at ε = 0.31 on the golden net
around centers with ``x0 − x1 = 0.6``, where only a corner of side 0.02 violates; PGD without
steps misses it and bound propagation cannot prove a violated point.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from robustprop.verify.cli.main import cli
from robustprop.verify.run.store import Store

NET = Path(__file__).parent / "golden" / "golden.onnx"
N_POINTS = 6


def _points(tmp_path: Path) -> Path:
    a = np.linspace(0.7, 0.8, N_POINTS)
    path = tmp_path / "points.npz"
    x = np.stack([a, a - 0.6], axis=1).astype(np.float32)
    np.savez(path, x=x, y=np.zeros(N_POINTS, dtype=np.int64))
    return path


def _args(data: Path, out: Path, store: Path, points: int) -> list[str]:
    return [
        "run", "--property", "cr", "--eps", "0.31", "--attack-steps", "0", "--net", str(NET),
        "--data", str(data), "--points", str(points), "--metrics", "satisfaction",
        "--backend", "z3", "--timeout", "20", "--json", str(out), "--store", str(store),
        "--no-progress",
    ]  # fmt: skip


def _rows(store: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(store) as db:
        rows = db.execute("SELECT * FROM verdicts ORDER BY point").fetchall()
    db.close()
    return rows


class _FullDisk:
    """A connection whose writes fail like SQLite's on a full disk; reads pass through."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql.lstrip().upper().startswith("INSERT"):
            raise sqlite3.OperationalError("database or disk is full")
        return self._db.execute(sql, *args)

    def close(self) -> None:
        self._db.close()


def _read_only(store: Store) -> None:
    store._db.execute("PRAGMA query_only=ON")


def _disk_full(store: Store) -> None:
    store._db = _FullDisk(store._db)  # type: ignore[assignment]


def test_store_failing_mid_run_is_a_clear_error_and_keeps_earlier_verdicts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, store = _points(tmp_path), tmp_path / "verdicts.sqlite"
    first = CliRunner().invoke(cli, _args(data, tmp_path / "a.json", store, N_POINTS // 2))
    assert first.exit_code == 0, first.output
    before = _rows(store)
    assert before, "the first run stored no solver verdict; the points no longer need a solver"

    opened = Store.__init__
    out = tmp_path / "b.json"
    faults: list[tuple[Callable[[Store], None], str]] = [
        (_read_only, "readonly database"),
        (_disk_full, "disk is full"),
    ]
    for fault, message in faults:

        def faulty_init(self: Store, path: Path, fault: Callable[[Store], None] = fault) -> None:
            opened(self, path)
            fault(self)

        monkeypatch.setattr(Store, "__init__", faulty_init)
        broken = CliRunner().invoke(cli, _args(data, out, store, N_POINTS))
        assert broken.exit_code == 2, broken.output
        lines = broken.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in broken.output, broken.stderr
        assert lines[0].startswith(f"error: --store {store}: cannot write"), lines[0]
        assert message in lines[0]
        assert not out.exists()
        assert _rows(store) == before  # earlier verdicts intact, nothing half-written

    monkeypatch.setattr(Store, "__init__", opened)
    healed = CliRunner().invoke(cli, _args(data, out, store, N_POINTS))
    assert healed.exit_code == 0, healed.output
    assert re.search(rf"reused from the store\s+{len(before)} verdict\(s\)", healed.output)
    after = _rows(store)
    assert set(before) <= set(after)
    assert len({row[2] for row in after}) == len(after)  # one row per point
    doc = json.loads(out.read_text())
    assert [p["verdict"] for p in doc["points"]] == ["violated"] * N_POINTS
