"""SIGTERM and SIGINT stop ``verify run --jobs 2`` cleanly.

The run is started as a console process whose exact stage hangs on point 0 (the pool's own
fault injection, a slow fake); the other worker decides the other points. Then the signal:
before, SIGTERM killed the parent at once and left the hanging worker running as an orphan,
and nothing was written. Now the workers are gone with the parent, every verdict decided is
in the store and in the JSON document (marked incomplete), and the exit code is 128 + the
signal (143 for SIGTERM, 130 for SIGINT).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from robustprop.verify.run.signals import Interrupted, stop_on_signals

NET = Path(__file__).parent / "golden" / "golden.onnx"
N = 6

# The CLI with the exact stage's workers hanging on point 0 (WorkerSpec's fault injection).
SCRIPT = """
import functools, sys
from robustprop.verify.run import pool, stages
stages.WorkerSpec = functools.partial(pool.WorkerSpec, fault="hang", fault_index=0)
from robustprop.verify.cli.main import main
sys.argv = ["verify", *sys.argv[1:]]
main()
"""


def _descendants(root: int) -> set[int]:
    """Every live process below ``root`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for init to reap it counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _rows(store: Path) -> int:
    try:
        with sqlite3.connect(store) as db:
            count = int(db.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0])
        db.close()
        return count
    except sqlite3.Error:
        return 0


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_the_workers_keeps_the_verdicts_and_writes_them(
    tmp_path: Path, signum: int, code: int
) -> None:
    a = np.linspace(0.7, 0.8, N)
    data = tmp_path / "points.npz"
    np.savez(data, x=np.stack([a, a - 0.6], 1).astype(np.float32), y=np.zeros(N, np.int64))
    store, out = tmp_path / "s.sqlite", tmp_path / "run.json"
    args = [
        "run", "--property", "cr", "--eps", "0.31", "--net", str(NET), "--data", str(data),
        "--points", str(N), "--metrics", "satisfaction", "--backend", "z3",
        "--strategy", "plain", "--timeout", "300", "--jobs", "2", "--no-progress",
        "--store", str(store), "--json", str(out),
    ]  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a background job inherits an ignored SIGINT; a terminal's Ctrl-C is not ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    children: set[int] = set()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None and _rows(store) < N - 1:
            time.sleep(0.1)
        assert proc.poll() is None, proc.communicate()
        assert _rows(store) == N - 1, "the other worker did not decide the other points"
        children = _descendants(proc.pid)
        assert len(children) >= 2, "expected the fork server and the workers"
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(_alive(pid) for pid in children):
        time.sleep(0.1)
    left = [pid for pid in children if _alive(pid)]
    for pid in left:  # do not leave them to the next test
        os.kill(pid, signal.SIGKILL)
    assert not left, f"processes outlived the run: {left}"
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr
    assert signal.Signals(signum).name in stderr.strip().splitlines()[-1]
    assert _rows(store) == N - 1
    doc = json.loads(out.read_text())
    assert doc["incomplete"] == f"interrupted by {signal.Signals(signum).name}"
    verdicts = [p["verdict"] for p in doc["points"]]
    assert verdicts == ["unknown"] + ["violated"] * (N - 1)
    assert "interrupted" in doc["points"][0]["reason"]
    assert doc["summary"]["violated"] == N - 1
    assert "incomplete" in stdout


def test_the_first_signal_interrupts_and_later_ones_wait() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted) as stopped, stop_on_signals():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)
    assert stopped.value.exit_code == 143 and stopped.value.result is None
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_signal_while_the_documents_are_written_is_held() -> None:
    with stop_on_signals() as guard:
        with guard.hold():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)  # the handler ran: recorded, no exception
        assert guard.received == signal.SIGTERM
        os.kill(os.getpid(), signal.SIGTERM)  # already stopping: ignored
        time.sleep(0.2)
