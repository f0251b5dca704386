"""The verdict store: reuse on rerun, and resume after SIGKILL without loss or duplicates."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from robustprop.properties.errors import InputError
from robustprop.verify.cli.main import cli
from robustprop.verify.engine.verdict import Stage, Status, Verdict
from robustprop.verify.run.store import SOUND_EPOCH, Store

NET = Path(__file__).parent / "golden" / "golden.onnx"


def _points(tmp_path: Path, n: int) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "points.npz"
    np.savez(path, x=rng.random((n, 2)).astype(np.float32), y=np.zeros(n, dtype=np.int64))
    return path


def _args(data: Path, out: Path, store: Path, points: int) -> list[str]:
    return [
        "run", "--property", "cr", "--net", str(NET), "--data", str(data),
        "--points", str(points), "--eps", "0.05", "--metrics", "satisfaction",
        "--backend", "z3", "--strategy", "plain",
        "--json", str(out), "--store", str(store), "--no-progress",
    ]  # fmt: skip


def _rows(store: Path) -> list[tuple[str, str]]:
    try:
        with sqlite3.connect(store) as db:
            return db.execute("SELECT point, status FROM verdicts ORDER BY point").fetchall()
    except sqlite3.OperationalError:  # the run has not created its schema yet
        return []


def test_rerun_reuses_stored_verdicts(tmp_path: Path) -> None:
    data, store = _points(tmp_path, 6), tmp_path / "s.sqlite"
    first = CliRunner().invoke(cli, _args(data, tmp_path / "a.json", store, 6))
    assert first.exit_code == 0, first.output
    stored = len(_rows(store))
    second = CliRunner().invoke(cli, _args(data, tmp_path / "b.json", store, 6))
    assert second.exit_code == 0, second.output
    assert re.search(rf"reused from the store\s+{stored} verdict\(s\)", second.output)
    a = json.loads((tmp_path / "a.json").read_text())["points"]
    b = json.loads((tmp_path / "b.json").read_text())["points"]
    assert [p["verdict"] for p in a] == [p["verdict"] for p in b]
    assert len(_rows(store)) == stored


def test_sigkill_mid_run_then_resume_completes(tmp_path: Path) -> None:
    n = 40
    data, store = _points(tmp_path, n), tmp_path / "s.sqlite"
    cmd = [
        sys.executable,
        "-m",
        "robustprop.verify.cli.main",
        *_args(data, tmp_path / "a.json", store, n),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if store.exists() and len(_rows(store)) >= 3:
                break
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    before = _rows(store)
    assert len(before) >= 3, "the run stored nothing before it was killed"
    if len(before) == n:
        pytest.skip("the run finished before the kill; nothing to resume")
    done = CliRunner().invoke(cli, _args(data, tmp_path / "b.json", store, n))
    assert done.exit_code == 0, done.output
    after = _rows(store)
    assert len({p for p, _ in after}) == len(after)  # no duplicates
    assert set(before) <= set(after)  # nothing lost
    doc = json.loads((tmp_path / "b.json").read_text())
    assert len(doc["points"]) == n
    assert all(p["verdict"] in ("holds", "violated") for p in doc["points"])


def test_store_from_another_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("INSERT INTO meta VALUES ('schema_version', '99')")
    with pytest.raises(InputError, match="schema version 99"):
        Store(path)


def test_garbage_store_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.sqlite"
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(InputError, match=r"junk\.sqlite"):
        Store(path)


def test_holds_of_an_engine_before_the_last_soundness_fix_are_dropped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A store marked with an earlier soundness epoch (or none: before epochs) keeps its
    violated rows but not its holds; a store of this epoch keeps both."""
    path = tmp_path / "old.sqlite"
    holds = Verdict(Status.HOLDS, Stage.BAB, "bab", 0.1)
    violated = Verdict(
        Status.VIOLATED, Stage.ATTACK, "replay", 0.1, witness=np.zeros(2), witness_output=np.ones(3)
    )
    with Store(path) as store:
        store.put("net", "prop", "p0", "auto", 10.0, holds)
        store.put("net", "prop", "p1", "auto", 10.0, violated)
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM meta WHERE key='sound_epoch'")  # as written before epochs
    with Store(path) as store:
        assert store.lookup("net", "prop", "p0", "auto", 10.0) is None
        assert store.lookup("net", "prop", "p1", "auto", 10.0) is not None
        store.put("net", "prop", "p0", "auto", 10.0, holds)
    assert "soundness bug" in caplog.text
    with sqlite3.connect(path) as db:
        row = db.execute("SELECT value FROM meta WHERE key='sound_epoch'").fetchone()
    assert row == (str(SOUND_EPOCH),)
    with Store(path) as store:  # this epoch: the holds decided again is kept
        found = store.lookup("net", "prop", "p0", "auto", 10.0)
        assert found is not None and found.status is Status.HOLDS
