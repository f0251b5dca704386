"""A store that cannot be used now costs one warning, never the run; a file that is not a
store is refused untouched.

- busy: another process holds the SQLite lock (past the busy timeout, shortened here), at
  open or mid-run — the run goes on without the store and writes its results;
- unwritable: the cache directory (``$HOME`` or ``ROBUSTPROP_CACHE_DIR``) or the folder of
  ``--store`` cannot be created — the same;
- foreign: an SQLite file of another application is an InputError (exit 2) and its bytes
  stay as they were (no WAL switch, no tables added).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from robustprop.properties.errors import InputError
from robustprop.verify.cli.main import cli
from robustprop.verify.run import store as store_module
from robustprop.verify.run.store import Store

NET = Path(__file__).parent / "golden" / "golden.onnx"
N = 4
UNWRITABLE = Path("/sys/robustprop-test-no-such-folder")  # mkdir fails there, even for root


def _data(tmp_path: Path) -> Path:
    a = np.linspace(0.7, 0.8, N)
    path = tmp_path / "points.npz"
    x = np.stack([a, a - 0.6], axis=1).astype(np.float32)
    np.savez(path, x=x, y=np.zeros(N, dtype=np.int64))
    return path


def _args(tmp_path: Path, *extra: str) -> list[str]:
    return [
        "run", "--property", "cr", "--eps", "0.31", "--attack-steps", "0", "--net", str(NET),
        "--data", str(_data(tmp_path)), "--points", str(N), "--metrics", "satisfaction",
        "--backend", "z3", "--timeout", "20", "--no-progress", *extra,
    ]  # fmt: skip


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelname == "WARNING" and r.name.startswith("robustprop.verify.run")
    ]


@pytest.fixture
def short_busy_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_S", 0.2)


@pytest.fixture
def locked_store(tmp_path: Path) -> Iterator[Path]:
    """A store whose write lock another process holds (BEGIN EXCLUSIVE) until the test ends."""
    path = tmp_path / "busy.sqlite"
    Store(path).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "db.execute('BEGIN EXCLUSIVE')\n"
            "print('locked', flush=True)\n"
            "time.sleep(600)\n",
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        yield path
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()


def test_a_busy_store_degrades_to_a_run_without_it(
    tmp_path: Path,
    locked_store: Path,
    short_busy_timeout: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    out = tmp_path / "r.json"
    result = CliRunner().invoke(
        cli, _args(tmp_path, "--store", str(locked_store), "--json", str(out))
    )
    assert result.exit_code == 0, result.output
    warned = _warnings(caplog)
    assert len(warned) == 1 and "locked" in warned[0] and str(locked_store) in warned[0]
    doc = json.loads(out.read_text())
    assert [p["verdict"] for p in doc["points"]] == ["violated"] * N
    assert "locked" in doc["store"]["unavailable"]


def test_a_store_locked_mid_run_keeps_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    opened = Store.__init__

    class _Locked:
        def __init__(self, db: sqlite3.Connection) -> None:
            self._db = db

        def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
            if sql.lstrip().upper().startswith("INSERT"):
                raise sqlite3.OperationalError("database is locked")
            return self._db.execute(sql, *args)

        def close(self) -> None:
            self._db.close()

    def locked_after_open(self: Store, path: Path) -> None:
        opened(self, path)
        self._db = _Locked(self._db)  # type: ignore[assignment]

    monkeypatch.setattr(Store, "__init__", locked_after_open)
    out = tmp_path / "r.json"
    args = _args(tmp_path, "--store", str(tmp_path / "s.sqlite"), "--json", str(out))
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert len(_warnings(caplog)) == 1
    assert [p["verdict"] for p in json.loads(out.read_text())["points"]] == ["violated"] * N


def test_an_unwritable_store_folder_degrades(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    if os.access("/sys", os.W_OK) and UNWRITABLE.parent.is_dir() and _can_mkdir(UNWRITABLE):
        pytest.skip("/sys is writable here")
    out = tmp_path / "r.json"
    store = UNWRITABLE / "s.sqlite"
    result = CliRunner().invoke(cli, _args(tmp_path, "--store", str(store), "--json", str(out)))
    assert result.exit_code == 0, result.output
    assert len(_warnings(caplog)) == 1
    doc = json.loads(out.read_text())
    assert doc["store"]["path"] == str(store) and doc["store"]["unavailable"]


def _can_mkdir(path: Path) -> bool:
    try:
        path.mkdir()
    except OSError:
        return False
    path.rmdir()
    return True


@pytest.mark.parametrize("variable", ["HOME", "ROBUSTPROP_CACHE_DIR"])
def test_an_unwritable_home_or_cache_dir_costs_one_warning(tmp_path: Path, variable: str) -> None:
    """The default store (no --json, no --store) lives in the cache dir; the console script."""
    env = {k: v for k, v in os.environ.items() if k != "ROBUSTPROP_CACHE_DIR"}
    env[variable] = str(UNWRITABLE)
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "robustprop.verify.cli.main", *_args(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "WARNING" in line]
    assert len(lines) == 1 and str(UNWRITABLE) in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert "holds / violated / unknown  0 / 4 / 0" in proc.stdout
    assert time.monotonic() - start < 120


def test_a_foreign_sqlite_file_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "app.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        db.execute("INSERT INTO users VALUES (1, 'ada')")
    db.close()
    before = path.read_bytes()
    with pytest.raises(InputError, match=r"app\.sqlite.*another application.*users"):
        Store(path)
    out = tmp_path / "r.json"
    result = CliRunner().invoke(cli, _args(tmp_path, "--store", str(path), "--json", str(out)))
    assert result.exit_code == 2
    assert "another application" in result.stderr and str(path) in result.stderr
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.sqlite", "points.npz"]


def test_a_verdicts_table_without_meta_is_foreign_too(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE verdicts (x TEXT)")
    db.close()
    before = path.read_bytes()
    with pytest.raises(InputError, match="another application"):
        Store(path)
    assert path.read_bytes() == before


def test_an_empty_sqlite_file_becomes_a_store(tmp_path: Path) -> None:
    path = tmp_path / "empty.sqlite"
    path.write_bytes(b"")
    with Store(path) as store:
        assert store.count() == 0
