"""The Ray executor on a local Ray instance started by the test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from properties import Domain, make_property
from verify.network import load_network
from verify.point_query import PointDecider, Query
from verify.pool import WorkerSpec
from verify.replay import Replayer

ray = pytest.importorskip("ray", reason="the optional extra robustprop[ray] is not installed")

NET = Path(__file__).parent / "golden" / "golden.onnx"


def test_ray_pool_gives_the_same_verdicts_as_in_process() -> None:
    from verify.ray_pool import RayPool

    replayer = Replayer(NET)
    queries = []
    for i, eps in enumerate((0.1, 0.35, 0.2)):
        center = np.array([0.8, 0.2])
        y = replayer.evaluate64(center)[0]
        queries.append(Query(i, make_property("cr", eps=eps).negation(center, y, 0, Domain())))
    local = PointDecider(load_network(NET), replayer, "z3")
    expected = {q.index: local.decide(q, 10.0).status for q in queries}
    with RayPool(WorkerSpec(NET, "z3"), jobs=1) as pool:
        got = {q.index: v.status for q, v in pool.map(queries, 10.0)}
    assert got == expected
    assert not ray.is_initialized()
