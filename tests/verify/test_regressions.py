"""Replays every query the soundness audit saved (``tests/verify/regressions/``).

``benchmarks/audit.py`` saves a query whenever Marabou, Z3, the staged ``verify run`` and
sampling/PGD disagree on it; each saved case must now be decided consistently every way.
With no saved case the replay test has nothing to check; the round trip below still proves
that a saved case is read back and decided.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
REGRESSIONS = Path(__file__).parent / "regressions"


def _audit() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audit", ROOT / "benchmarks" / "audit.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("audit", module)
    spec.loader.exec_module(module)
    return module


def _cases() -> list[Path]:
    return sorted(p.parent for p in REGRESSIONS.glob("*/case.json"))


def test_every_saved_case_is_now_decided_consistently() -> None:
    audit = _audit()
    for case in _cases():
        assert {"net.onnx", "point.npz"} <= {p.name for p in case.iterdir()}, case
    failures = {case.name: audit.check_case(case) for case in _cases()}
    assert not {name: found for name, found in failures.items() if found}


def test_a_saved_case_round_trips(tmp_path: Path) -> None:
    """A case saved the audit's way is read back and decided by all four deciders."""
    audit = _audit()
    layers = [
        (np.array([[1.0, -1.0], [-1.0, 1.0]]), np.zeros(2)),
        (np.array([[10.0, 0.0], [0.0, 10.0]]), np.zeros(2)),
    ]
    net = tmp_path / "net.onnx"
    audit.write_onnx(layers, net, "point.npz")
    outcome = audit.Outcome(verdicts={"z3": "holds"}, disagreements=["made up for the test"])
    x = np.array([0.8, 0.2], dtype=np.float32)
    folder = audit.save_case(
        "roundtrip", net, x, np.int64(0), "cr", {"eps": 0.1, "reference": "output"}, "auto",
        outcome, root=tmp_path / "saved",
    )  # fmt: skip
    assert {p.name for p in folder.iterdir()} == {"net.onnx", "point.npz", "case.json"}
    assert audit.check_case(folder) == []


def test_the_audit_flags_each_kind_of_disagreement(tmp_path: Path) -> None:
    from robustprop.properties import Domain, make_property
    from robustprop.verify.engine.network import load_network

    audit = _audit()
    net = tmp_path / "net.onnx"
    audit.write_onnx([(np.array([[1.0, -1.0], [-1.0, 1.0]]), np.zeros(2))], net, "p.npz")
    center = np.array([0.8, 0.2])
    network = load_network(net)
    negation = make_property("cr", eps=0.1).negation(
        center, network.evaluate(center)[0], 0, Domain()
    )
    outcome = audit.Outcome(
        verdicts={"marabou": "holds", "z3": "violated", "pipeline": "unknown"}, empirical="pgd"
    )
    audit.compare(outcome, network, negation, {"z3": None})
    assert outcome.disagreements == [
        "marabou says holds, z3 says violated",
        "marabou says holds, pgd finds a confirmed violation",
        "z3: violated without a witness",
    ]
    outcome = audit.Outcome(verdicts={"pipeline": "violated"})
    audit.compare(outcome, network, negation, {"pipeline": [0.5, 0.5]})
    assert outcome.disagreements == ["pipeline: witness outside the region"]
    outcome = audit.Outcome(verdicts={"pipeline": "violated"})
    audit.compare(outcome, network, negation, {"pipeline": [0.8, 0.2]})
    assert outcome.disagreements == [
        "pipeline: witness does not violate the property in float64 (IR)"
    ]
