"""The verdict store is an untrusted cache: a forged store cannot pass a gate.

Anyone who can write the store file can write rows with the project's own key functions and
the model's sha256. The points here (CR at ε = 0.31 on the golden net, see
test_store_faults.py) are all violated, and only the exact stage finds it (PGD without steps
misses the small violating corner). An honest gated run fails; a store forged to say
``holds`` everywhere made the same run pass with "satisfaction (certified) 1.000", and the
JSON and JUnit showed the rows as Marabou proofs. Now a gate re-decides stored ``holds``
(unless ``--trust-store``, which the printout and JSON then state), a stored ``violated``
counts only when its witness replays, and every reused verdict is marked everywhere.
"""

from __future__ import annotations

import json
import re
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner, Result

import robustprop
from robustprop.properties import make_property
from robustprop.verify.cli.main import cli
from robustprop.verify.engine.revision import engine_revision
from robustprop.verify.engine.verdict import Stage, Status, Verdict
from robustprop.verify.run.gates import GateBound, Gates
from robustprop.verify.run.model import ModelBytes
from robustprop.verify.run.store import Store, point_key, property_key

NET = Path(__file__).parent / "golden" / "golden.onnx"
N = 6
EPS = 0.31


def _centers() -> np.ndarray:
    a = np.linspace(0.7, 0.8, N)
    return np.stack([a, a - 0.6], axis=1).astype(np.float32)


def _data(tmp_path: Path) -> Path:
    path = tmp_path / "points.npz"
    np.savez(path, x=_centers(), y=np.zeros(N, dtype=np.int64))
    return path


def _run(tmp_path: Path, store: Path, *extra: str) -> tuple[Result, dict[str, Any]]:
    out = tmp_path / "run.json"
    out.unlink(missing_ok=True)
    args = [
        "run", "--property", "cr", "--eps", str(EPS), "--attack-steps", "0",
        "--net", str(NET), "--data", str(_data(tmp_path)), "--points", str(N),
        "--metrics", "satisfaction", "--backend", "z3", "--strategy", "plain",
        "--timeout", "20", "--no-progress", "--store", str(store), "--json", str(out),
        "--junit", str(tmp_path / "run.xml"), *extra,
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code in (0, 1), result.output
    return result, json.loads(out.read_text())


def _forge(
    store: Path, status: Status, witness: np.ndarray | None = None, revision: str = ""
) -> None:
    """Rows as anyone can write them: the public key functions and the model's sha256 (and
    the engine's revision, of this engine unless ``revision`` is given)."""
    backend = f"z3@{revision or engine_revision()}"
    prop = make_property("cr", eps=EPS)
    prop_key = property_key(prop.name, prop.params(), 1e-6)
    sha = ModelBytes.read(NET).sha256
    with Store(store) as db:
        for center in _centers():
            w = None if witness is None else witness
            y = None if w is None else np.zeros(3)
            verdict = Verdict(status, Stage.SOLVER, "marabou", 1.0, witness=w, witness_output=y)
            db.put(sha, prop_key, point_key(center.astype(np.float64), 0), backend, 20.0, verdict)


def _verdicts(doc: dict[str, Any]) -> list[str]:
    return [p["verdict"] for p in doc["points"]]


def test_a_forged_store_does_not_pass_the_gate(tmp_path: Path) -> None:
    honest, doc = _run(tmp_path, tmp_path / "clean.sqlite", "--min-satisfaction", "0.9")
    assert honest.exit_code == 1 and _verdicts(doc) == ["violated"] * N

    forged = tmp_path / "forged.sqlite"
    _forge(forged, Status.HOLDS)
    gated, doc = _run(tmp_path, forged, "--min-satisfaction", "0.9")
    assert gated.exit_code == 1, gated.output
    assert _verdicts(doc) == ["violated"] * N
    assert "satisfaction (certified)    0.000" in gated.output
    assert re.search(rf"re-decided\s+{N} stored verdict\(s\)", gated.output)
    assert doc["store"]["redecided"] == N and doc["store"]["reused"] == 0
    assert not any("reused" in p for p in doc["points"])

    # the re-decided verdicts were stored: now each point has a forged holds and a real
    # violated, and the violated (its witness replays) wins
    required, doc = _run(tmp_path, forged, "--require", "holds")
    assert required.exit_code == 1 and _verdicts(doc) == ["violated"] * N
    assert doc["store"]["replayed"] == N and doc["store"]["unchecked"] == 0


def test_trust_store_is_explicit_and_said_out_loud(tmp_path: Path) -> None:
    forged = tmp_path / "forged.sqlite"
    _forge(forged, Status.HOLDS)
    trusted, doc = _run(tmp_path, forged, "--min-satisfaction", "0.9", "--trust-store")
    assert trusted.exit_code == 0, trusted.output
    assert re.search(
        rf"trusted \(--trust-store\)\s+{N} stored verdict\(s\) from {forged}", trusted.output
    )
    assert doc["store"] == {
        "path": str(forged),
        "reused": N,
        "replayed": 0,
        "unchecked": N,
        "trusted": N,
        "redecided": 0,
        "contradicted": 0,
    }


def test_every_reused_verdict_is_marked_in_printout_json_and_junit(tmp_path: Path) -> None:
    forged = tmp_path / "forged.sqlite"
    _forge(forged, Status.HOLDS)
    ungated, doc = _run(tmp_path, forged)  # no gate rests on them: reused, but marked
    assert ungated.exit_code == 0
    assert re.search(
        rf"reused from the store\s+{N} verdict\(s\) from {forged} \(0 witness\(es\) replayed, "
        rf"{N} unchecked\)",
        ungated.output,
    )
    assert doc["store"]["path"] == str(forged) and doc["store"]["trusted"] == 0
    assert all(p["reused"] == {"store": str(forged), "replayed": False} for p in doc["points"])

    suite = ET.parse(tmp_path / "run.xml").getroot().find("testsuite")
    assert suite is not None
    facts = {p.get("name"): p.get("value") for p in suite.find("properties") or []}
    assert str(forged) in (facts.get("store") or "")
    for case in suite.findall("testcase"):
        mark = case.find("properties/property[@name='reused']")
        assert mark is not None and str(forged) in (mark.get("value") or "")
        assert "not re-checked" in (case.findtext("system-out") or "")


def test_a_stored_violated_counts_only_when_its_witness_replays(tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite"
    first, _ = _run(tmp_path, store, "--min-satisfaction", "0.9")
    assert first.exit_code == 1
    again, doc = _run(tmp_path, store, "--min-satisfaction", "0.9")
    assert _verdicts(doc) == ["violated"] * N
    assert doc["store"]["reused"] == N and doc["store"]["replayed"] == N
    assert all(p["reused"]["replayed"] for p in doc["points"])
    assert re.search(rf"\({N} witness\(es\) replayed, 0 unchecked\)", again.output)

    bogus = tmp_path / "bogus.sqlite"  # a "violated" whose witness is the safe point (0.9, 0.1)
    _forge(bogus, Status.VIOLATED, witness=np.array([0.9, 0.1]))
    _, doc = _run(tmp_path, bogus)
    assert _verdicts(doc) == ["violated"] * N  # decided afresh: the solver's witnesses
    assert doc["store"]["redecided"] == N and doc["store"]["reused"] == 0
    for p in doc["points"]:
        assert p["backend"] == "z3" and p["witness"]["x"] != [0.9, 0.1]


def test_a_wrong_witness_shape_in_the_store_is_not_replayed(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.sqlite"
    _forge(bogus, Status.VIOLATED, witness=np.array([0.5, 0.5, 0.5, 0.5]))
    _, doc = _run(tmp_path, bogus)
    assert doc["store"]["redecided"] == N and _verdicts(doc) == ["violated"] * N


def test_a_stored_holds_contradicted_by_this_run_is_overruled_not_a_bug(tmp_path: Path) -> None:
    """Without a gate a stored holds is reused; when this run's PGD refutes it, the store is
    wrong: the point is violated (PGD's witness) and the run is no invariant breach (exit 3)."""
    forged = tmp_path / "forged.sqlite"
    _forge(forged, Status.HOLDS)
    extra = ("--attack-steps", "100", "--metrics", "satisfaction,security")
    result, doc = _run(tmp_path, forged, *extra)
    assert result.exit_code == 0, result.output
    assert _verdicts(doc) == ["violated"] * N
    assert {p["stage"] for p in doc["points"]} == {"attack"}
    assert doc["summary"]["invariant_breaches"] == []
    assert doc["store"]["contradicted"] == N and doc["store"]["reused"] == 0
    assert re.search(rf"contradicted\s+{N} stored verdict\(s\) overruled", result.output)


def test_gates_name_the_verdicts_they_rest_on() -> None:
    assert Gates().rests_on() == frozenset()
    assert Gates(min_security=0.5).rests_on() == frozenset()
    assert Gates(0.9).rests_on() == {Status.HOLDS}
    assert Gates(require_holds=True).rests_on() == {Status.HOLDS}
    assert Gates(0.9, GateBound.UPPER).rests_on() == {Status.HOLDS, Status.UNKNOWN}


def test_trust_store_without_a_store_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["run", "--property", "cr", "--net", str(NET), "--no-cache", "--trust-store"]
    )
    assert result.exit_code == 2 and "--trust-store" in result.output


@pytest.mark.parametrize("status", ["holds", "unknown"])
def test_the_api_reuses_only_the_statuses_it_is_told(tmp_path: Path, status: str) -> None:
    forged = tmp_path / "forged.sqlite"
    _forge(forged, Status(status))
    prop = make_property("cr", eps=EPS)
    x, y = _centers(), np.zeros(N, dtype=np.int64)
    kwargs: dict[str, Any] = {"metrics": ("satisfaction",), "backend": "z3", "timeout": 20}
    cached = robustprop.check(NET, prop, x, y, store=forged, strategy="plain", **kwargs)
    assert cached.store is not None and cached.store.reused == N
    assert all(p.reused and not p.replayed for p in cached.points)
    strict = robustprop.check(NET, prop, x, y, store=forged, reuse=(), strategy="plain", **kwargs)
    assert strict.store is not None and strict.store.redecided == N
    assert [p.verdict.status for p in strict.points if p.verdict] == [Status.VIOLATED] * N
    with sqlite3.connect(forged) as db:  # the honest verdicts are kept beside the forged rows
        statuses = {row[0] for row in db.execute("SELECT status FROM verdicts")}
    db.close()
    assert "violated" in statuses


def test_an_unknown_from_another_engine_revision_is_decided_again(tmp_path: Path) -> None:
    """An unknown says only that the engine that stored it gave up: after the engine
    changed, the point is decided again (here: violated), even where unknowns are reused."""
    old = tmp_path / "old.sqlite"
    _forge(old, Status.UNKNOWN, revision="0123456789ab")
    prop = make_property("cr", eps=EPS)
    x, y = _centers(), np.zeros(N, dtype=np.int64)
    kwargs: dict[str, Any] = {"metrics": ("satisfaction",), "backend": "z3", "timeout": 20}
    result = robustprop.check(NET, prop, x, y, store=old, strategy="plain", **kwargs)
    assert result.store is not None and result.store.reused == 0
    assert [p.verdict.status for p in result.points if p.verdict] == [Status.VIOLATED] * N
