"""The typed Summary and the gates: the algebra every consumer (printer, JSON, API,
experiment) relies on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from robustprop.properties.errors import InputError
from robustprop.verify.engine.verdict import Stage, Status, Verdict
from robustprop.verify.run.gates import GateBound, Gates
from robustprop.verify.run.summary import METRICS, Summary
from tests.fresh_python import fresh_python


@dataclass(frozen=True)
class _Point:
    index: int
    verdict: Verdict | None
    attack_violated: bool | None
    sampling_fraction: float | None


def _verdict(status: Status, stage: Stage) -> Verdict:
    witness = np.zeros(2) if status is Status.VIOLATED else None
    return Verdict(status, stage, "test", 0.1, witness=witness, witness_output=witness)


point = st.builds(
    lambda i, status, stage, attacked, fraction: _Point(
        i,
        _verdict(status, Stage.NONE if status is Status.UNKNOWN else stage),
        attacked or (status is Status.VIOLATED and stage is Stage.ATTACK),
        fraction,
    ),
    st.integers(0, 10_000),
    st.sampled_from(list(Status)),
    st.sampled_from([Stage.CENTER, Stage.ATTACK, Stage.BOUNDS, Stage.SOLVER]),
    st.booleans(),
    st.floats(0.0, 1.0),
)


def _summary(points: list[_Point]) -> Summary:
    return Summary.of(points, metrics=METRICS, time_s=1.0, tau=1e-6, timeout_s=5.0, samples=10)


@given(st.lists(point, min_size=1, max_size=40))
def test_counts_interval_and_stages_agree(points: list[_Point]) -> None:
    s = _summary(points)
    assert s.holds is not None and s.violated is not None and s.unknown is not None
    assert s.holds + s.violated + s.unknown == s.points == len(points)
    lo, hi = s.satisfaction or (None, None)
    assert lo is not None and hi is not None
    assert 0.0 <= lo <= hi <= 1.0
    assert hi - lo == pytest.approx(s.unknown / s.points)
    # stages count decided points only; unknowns were decided by no stage
    assert sum(s.decided_by_stage.values()) == s.decided == s.holds + s.violated
    assert "none" not in s.decided_by_stage
    assert s.security is not None and 0.0 <= s.security <= 1.0


@given(st.lists(point, min_size=1, max_size=40))
def test_json_is_the_document_summary(points: list[_Point]) -> None:
    s = _summary(points)
    doc = s.to_json()
    assert list(doc)[:2] == ["points", "time_s"]
    assert doc["satisfaction"] == list(s.satisfaction or ())
    assert doc["holds"] == s.holds and doc["unknown"] == s.unknown
    assert doc["security_minus_satisfaction_upper"] == pytest.approx(
        (s.security or 0.0) - (s.satisfaction or (0.0, 0.0))[1]
    )
    assert set(doc["refuted_but_missed_by_attack"]) <= {p.index for p in points}


def test_metrics_not_asked_for_are_absent() -> None:
    p = _Point(0, None, False, None)
    s = Summary.of([p], metrics=("security",), time_s=0.0, tau=0.0, timeout_s=1.0, samples=1)
    assert s.satisfaction is None and s.holds is None and s.accuracy is None
    assert set(s.to_json()) == {"points", "time_s", "security", "invariant_breaches"}


@given(st.lists(point, min_size=1, max_size=30), st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_gates_fail_exactly_below_their_threshold(
    points: list[_Point], need: float, need_security: float
) -> None:
    s = _summary(points)
    lo, hi = s.satisfaction or (0.0, 0.0)
    for bound, value in ((GateBound.LOWER, lo), (GateBound.UPPER, hi)):
        failed = Gates(min_satisfaction=need, gate_on=bound).failures(s, 0.1)
        assert bool(failed) == (value < need)
    failed = Gates(min_security=need_security).failures(s, 0.1)
    assert bool(failed) == ((s.security or 0.0) < need_security)
    failed = Gates(require_holds=True).failures(s, 0.1)
    assert bool(failed) == (s.holds != s.points)
    assert Gates().failures(s, 0.1) == []


def test_gate_thresholds_are_checked() -> None:
    with pytest.raises(InputError, match="--min-satisfaction must lie in"):
        Gates(min_satisfaction=1.5)


def test_importing_the_namespace_and_properties_loads_no_heavy_package() -> None:
    code = (
        "import sys, robustprop; from robustprop import SR, LR, CR, SCR, make_property; "
        "SR(eps=0.1); make_property('lr', eps=0.1); import robustprop.properties.errors; "
        "print(sorted(m for m in ('torch', 'onnxruntime', 'onnx', 'maraboupy', 'z3', 'highspy') "
        "if m in sys.modules))"
    )
    assert fresh_python(code).strip() == "[]"
