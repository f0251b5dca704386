"""The Ray executor on a local Ray instance started by the test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from robustprop.properties import Domain, make_property
from robustprop.verify.engine.network import load_network
from robustprop.verify.engine.point_query import PointDecider, Query
from robustprop.verify.engine.replay import Replayer
from robustprop.verify.run.model import ModelBytes
from robustprop.verify.run.pool import WorkerSpec

ray = pytest.importorskip("ray", reason="the optional extra robustprop[ray] is not installed")

NET = Path(__file__).parent / "golden" / "golden.onnx"


def test_ray_pool_gives_the_same_verdicts_as_in_process() -> None:
    from robustprop.verify.run.ray_pool import RayPool

    replayer = Replayer(NET)
    queries = []
    for i, eps in enumerate((0.1, 0.35, 0.2)):
        center = np.array([0.8, 0.2])
        y = replayer.evaluate64(center)[0]
        queries.append(Query(i, make_property("cr", eps=eps).negation(center, y, 0, Domain())))
    local = PointDecider(load_network(NET), replayer, "z3")
    expected = {q.index: local.decide(q, 10.0).status for q in queries}
    with RayPool(WorkerSpec(ModelBytes.read(NET), "z3"), jobs=1) as pool:
        got = {q.index: v.status for q, v in pool.map(queries, 10.0)}
    assert got == expected
    assert not ray.is_initialized()


def test_verify_run_with_the_ray_executor(tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from robustprop.verify.cli.main import cli

    data = Path(__file__).parent / "golden" / "golden.npz"
    out = tmp_path / "r.json"
    args = ["run", "--property", "cr", "--eps", "0.1", "--net", str(NET), "--data", str(data)]
    args += ["--executor", "ray", "--strategy", "plain", "--backend", "z3"]
    args += ["--no-cache", "--no-progress", "--json", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["points"][0]["verdict"] == "holds"
