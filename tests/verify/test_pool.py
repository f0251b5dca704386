"""Worker isolation: a crash or a hang costs one query, never the run."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from robustprop.properties import Domain, make_property
from robustprop.verify.engine.point_query import Query
from robustprop.verify.engine.replay import Replayer
from robustprop.verify.engine.verdict import Status
from robustprop.verify.run.model import ModelBytes
from robustprop.verify.run.pool import WorkerPool, WorkerSpec

NET = Path(__file__).parent / "golden" / "golden.onnx"


def _queries(n: int) -> list[Query]:
    prop = make_property("cr", eps=0.1)
    center = np.array([0.8, 0.2])
    y = Replayer(NET).evaluate64(center)[0]
    negation = prop.negation(center, y, 0, Domain())
    return [Query(i, negation) for i in range(n)]


def _run(spec: WorkerSpec, jobs: int = 1) -> dict[int, str]:
    with WorkerPool(spec, jobs, grace_s=0.5) as pool:
        return {q.index: (v.status.value + ":" + v.reason) for q, v in pool.map(_queries(3), 2.0)}


def test_all_queries_decided_with_two_workers() -> None:
    got = _run(WorkerSpec(ModelBytes.read(NET), "z3"), jobs=2)
    assert sorted(got) == [0, 1, 2]
    assert all(v.startswith(Status.HOLDS.value) for v in got.values())


def test_crashing_worker_costs_one_query() -> None:
    got = _run(WorkerSpec(ModelBytes.read(NET), "z3", fault="crash", fault_index=1))
    assert got[0].startswith("holds") and got[2].startswith("holds")
    assert got[1].startswith("unknown") and "crashed" in got[1]


def test_hanging_worker_is_killed_after_its_timeout() -> None:
    got = _run(WorkerSpec(ModelBytes.read(NET), "z3", fault="hang", fault_index=0))
    assert got[0].startswith("unknown") and "timeout" in got[0]
    assert got[1].startswith("holds") and got[2].startswith("holds")
