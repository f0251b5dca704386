"""Golden network with verdicts derived by hand (see golden/make_golden.py).

Every case is decided by both exact backends directly (they must agree with the hand-derived
answer, hence with each other) and end to end through ``verify run``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from robustprop.properties import Domain, make_property
from robustprop.verify.cli.main import cli
from robustprop.verify.engine.network import load_network
from robustprop.verify.engine.point_query import PointDecider, Query
from robustprop.verify.engine.replay import Replayer
from robustprop.verify.engine.verdict import Status

GOLDEN = Path(__file__).parent / "golden"
NET = GOLDEN / "golden.onnx"
DATA = GOLDEN / "golden.npz"

# (property, parameters, expected verdict at x̂ = (0.8, 0.2))
CASES = [
    ("cr", {"eps": 0.1}, Status.HOLDS),
    ("cr", {"eps": 0.35}, Status.VIOLATED),
    ("sr", {"eps": 0.1, "delta": 2.5}, Status.HOLDS),
    ("sr", {"eps": 0.1, "delta": 1.5}, Status.VIOLATED),
    ("lr", {"eps": 0.1, "lipschitz": 20.0}, Status.HOLDS),
    ("lr", {"eps": 0.1, "lipschitz": 19.0}, Status.VIOLATED),
    ("scr", {"eps": 0.1, "eta": 0.9}, Status.HOLDS),
    ("scr", {"eps": 0.1, "eta": 0.96}, Status.VIOLATED),
]
IDS = [f"{p}-{'-'.join(f'{k}{v}' for k, v in params.items())}" for p, params, _ in CASES]


def _negation(name: str, params: dict[str, float]):  # type: ignore[no-untyped-def]
    prop = make_property(name, **params)
    center = np.load(DATA)["x"][0].astype(np.float64)
    replayer = Replayer(NET)
    y = replayer.evaluate64(center)[0]
    return prop.negation(center, y, int(np.argmax(y)), Domain()), replayer


@pytest.mark.parametrize("backend", ["z3", "marabou"])
@pytest.mark.parametrize(("name", "params", "expected"), CASES, ids=IDS)
def test_backends_match_hand_derived_verdicts(
    backend: str, name: str, params: dict[str, float], expected: Status
) -> None:
    negation, replayer = _negation(name, params)
    decider = PointDecider(load_network(NET), replayer, backend)
    verdict = decider.decide(Query(0, negation), timeout_s=30)
    assert verdict.status is expected, verdict.reason
    if expected is Status.VIOLATED:
        assert verdict.witness is not None
        x = verdict.witness
        assert np.all(np.abs(x - np.array([0.8, 0.2])) <= params["eps"] + 1e-7)
        assert negation.is_satisfied_by(x, Replayer(NET).evaluate64(x)[0])


@pytest.mark.parametrize(("name", "params", "expected"), CASES, ids=IDS)
def test_verify_run_end_to_end(
    tmp_path: Path, name: str, params: dict[str, float], expected: Status
) -> None:
    out = tmp_path / "out.json"
    args = ["run", "--property", name, "--net", str(NET), "--data", str(DATA), "--points", "1"]
    for key, value in params.items():
        args += [f"--{key}", str(value)]
    args += ["--samples", "200", "--json", str(out), "--no-progress", "--require", "holds"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == (0 if expected is Status.HOLDS else 1), result.output
    doc = json.loads(out.read_text())
    assert doc["points"][0]["verdict"] == expected.value
    assert doc["summary"]["invariant_breaches"] == []
    if expected is Status.VIOLATED:
        assert "witness" in doc["points"][0]
