"""The Ray executor, like the local pool, stops the run on a query's InputError."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from robustprop.properties import Domain, make_property
from robustprop.properties.errors import InputError
from robustprop.verify.engine.point_query import Query
from robustprop.verify.run.model import ModelBytes
from robustprop.verify.run.pool import WorkerSpec

pytest.importorskip("ray", reason="the optional extra robustprop[ray] is not installed")

NET = Path(__file__).parent / "golden" / "golden.onnx"


@pytest.mark.slow  # starts a local Ray instance (~20 s)
def test_input_error_in_a_ray_actor_ends_the_run() -> None:
    from robustprop.verify.run.ray_pool import RayPool

    center = np.array([0.8, 0.2, 0.5])  # the golden net has 2 inputs: check_query refuses it
    negation = make_property("cr", eps=0.1).negation(center, np.zeros(3), 0, Domain())
    with (
        RayPool(WorkerSpec(ModelBytes.read(NET), "z3"), jobs=1) as pool,
        pytest.raises(InputError, match="the property has 3 inputs"),
    ):
        list(pool.map([Query(0, negation)], 10.0))
