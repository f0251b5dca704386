"""The lipschitz regime: the projection keeps ∏‖W_i‖∞ ≤ L at every step, and the trained
network satisfies the global bound (by sampling and by the verifier)."""

from __future__ import annotations

import dataclasses
import logging

import pytest
import torch

import robustprop
from robustprop.properties import LR
from robustprop.properties.errors import InputError
from robustprop.training.config import LipschitzConfig, TrainConfig
from robustprop.training.data import Dataset, load_dataset, subset
from robustprop.training.lipschitz import SAFETY, lipschitz_bound, operator_norms, project
from robustprop.training.models import build_model
from robustprop.training.regimes import Lipschitz, make_regime
from robustprop.training.steps import StepRunner

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def data() -> Dataset:
    return subset(load_dataset("fashion-mnist-slice", "train"), 512, seed=None)


@pytest.mark.parametrize("projection", ["rows", "matrix"])
@pytest.mark.parametrize("bound", [10.0, 2.0])
def test_every_step_keeps_the_product_of_norms_below_l(
    data: Dataset, projection: str, bound: float
) -> None:
    torch.manual_seed(0)
    model = build_model("mlp", data.n_inputs, 10)
    assert lipschitz_bound(model) > bound  # the initial network is far outside
    settings = LipschitzConfig(bound, projection)  # type: ignore[arg-type]
    regime = Lipschitz(settings)
    regime.constrain(model)
    assert lipschitz_bound(model) <= bound
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = torch.from_numpy(data.x), torch.from_numpy(data.y)
    runner = StepRunner(
        model, optimizer, regime, x, y, torch.Generator().manual_seed(0), batch_size=64
    )
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(1))
    for i in range(0, len(y), 64):
        runner.step(order[i : i + 64])
        norms = operator_norms(model)
        assert lipschitz_bound(model) <= bound, norms  # exact float64 product of float32 norms
        assert max(norms) <= bound ** (1 / 2) * SAFETY * (1 + 1e-6)
    assert float(runner.totals[0]) == len(y)


def test_projection_leaves_small_layers_alone() -> None:
    torch.manual_seed(0)
    model = build_model("mlp", 6, 3)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(0.01)
    before = [p.detach().clone() for p in model.parameters()]
    project(model, LipschitzConfig(10.0))
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_trained_network_satisfies_the_global_bound(data: Dataset) -> None:
    config = TrainConfig.preset("certified", "lipschitz", seed=0)
    assert config.lipschitz == LipschitzConfig(10.0, "rows")
    model = build_model("mlp", data.n_inputs, 10)
    regime = make_regime(config)
    regime.constrain(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    x, y = torch.from_numpy(data.x), torch.from_numpy(data.y)
    runner = StepRunner(model, optimizer, regime, x, y, torch.Generator(), batch_size=128)
    for i in range(0, len(y), 128):
        runner.step(torch.arange(i, min(i + 128, len(y))))
    model.eval()
    assert lipschitz_bound(model) <= 10.0
    gen = torch.Generator().manual_seed(3)
    a = torch.rand(2000, data.n_inputs, generator=gen)
    b = (a + (torch.rand(a.shape, generator=gen) - 0.5) * 0.4).clamp(0, 1)
    # pairs far apart too: any two images
    c = torch.rand(2000, data.n_inputs, generator=gen)
    with torch.no_grad():
        for u, v in ((a, b), (a, c)):
            out = (model(u) - model(v)).abs().amax(dim=1).double()
            gap = (u - v).abs().amax(dim=1).double()
            assert bool((out <= 10.0 * gap + 1e-5).all())
    # the verifier proves LR(0.1, 10) at these points, whatever they are
    logging.disable(logging.WARNING)
    try:
        onnx_model = robustprop.load(model, example_input=torch.zeros(1, data.n_inputs))
        result = robustprop.check(
            onnx_model,
            LR(eps=0.1, lipschitz=10.0),
            data.x[:4],
            metrics=("satisfaction",),
            timeout=60,
        )
    finally:
        logging.disable(logging.NOTSET)
    assert [p.verdict.status for p in result.points if p.verdict] == ["holds"] * 4


def test_settings_are_validated() -> None:
    with pytest.raises(InputError, match="lipschitz must be > 0"):
        LipschitzConfig(0.0)
    with pytest.raises(InputError, match="unknown projection 'spectral'"):
        LipschitzConfig(10.0, "spectral")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="lipschitz settings are for the lipschitz regime"):
        dataclasses.replace(TrainConfig.paper("baseline"), lipschitz=LipschitzConfig())
