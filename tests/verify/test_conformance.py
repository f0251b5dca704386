"""Fast conformance subset: instances plain Marabou decides in about a second (the full run is
``benchmarks/conformance.py``). Expected answers come from ../shared/benchmarks."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT.parent / "shared" / "benchmarks"

pytestmark = pytest.mark.skipif(not BENCH.is_dir(), reason="../shared/benchmarks is absent")

# ACAS Xu cases plain Marabou 2.0.0 decided in under 0.5 s in our local run
ACAS = {
    "ACASXU_experimental_v2a_1_7/prop_3",
    "ACASXU_experimental_v2a_4_1/prop_4",
    "ACASXU_experimental_v2a_2_9/prop_3",
    "ACASXU_experimental_v2a_1_1/acas_1_1_box_y0_ge_0.1",
    "ACASXU_experimental_v2a_1_1/acas_1_1_box_y0_ge_0.0",
}


def _conformance() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "conformance", ROOT / "benchmarks" / "conformance.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("conformance", module)
    spec.loader.exec_module(module)
    return module


def _fast_subset() -> list[object]:
    if not BENCH.is_dir():
        return []
    instances = _conformance().load_instances(BENCH)
    return [
        i
        for i in instances
        if i.suite == "vnncomp/test"
        or (i.suite == "marabou" and ("/acasxu/" not in str(i.onnx) or i.name in ACAS))
    ]


FAST = _fast_subset()


def test_subset_covers_the_intended_cases() -> None:
    suites = {str(i.onnx.parent.parent.name) for i in FAST}  # type: ignore[attr-defined]
    assert {"test", "fc1", "coav", "mnist", "acasxu"} <= suites
    assert len(FAST) == 5 + 2 + 6 + 5 + len(ACAS)


@pytest.mark.parametrize("instance", FAST, ids=lambda i: f"{i.suite}:{i.name}")
def test_instance_agrees_with_the_expected_answer(instance: object) -> None:
    outcome = _conformance().run_instance(instance, timeout_s=10.0, backend="marabou", attack=True)
    assert outcome.verdict == "agree", (outcome.ours, outcome.reason)
