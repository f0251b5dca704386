"""Searchers: iterates stay in the region, the best iterate is returned, models are left as found,
and PGD finds violations that exist."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

from robustprop.properties import (
    CR,
    LR,
    SCR,
    SR,
    Domain,
    InputError,
    Objective,
    PGDConfig,
    Region,
    SearchResult,
    attack,
    fgsm,
    pgd,
    uniform_search,
)
from tests.properties.nets import hand_net, random_net

CENTER = torch.tensor([[0.5, 0.375]], dtype=torch.float64)
SMALL = PGDConfig(steps=10, step_size=0.25, restarts=2, relative_step=True, center_first=True)


class Recorder:
    """Wraps an objective and keeps every point it was evaluated at, with its value."""

    def __init__(self, objective: Objective) -> None:
        self.objective = objective
        self.points: list[Tensor] = []
        self.values: list[Tensor] = []

    def __call__(self, x: Tensor, y: Tensor) -> Tensor:
        value = self.objective(x, y)
        self.points.append(x.detach().clone())
        self.values.append(value.detach().clone())
        return value


def run(searcher: str, model: nn.Module, objective: Objective, region: Region) -> SearchResult:
    g = torch.Generator().manual_seed(0)
    if searcher == "uniform":
        return uniform_search(model, objective, region, g, samples=5)
    if searcher == "fgsm":
        return fgsm(model, objective, region, g, random_start=True)
    return pgd(model, objective, region, g, SMALL)


@settings(deadline=None, max_examples=40)
@given(
    st.sampled_from(["uniform", "fgsm", "pgd"]),
    st.integers(0, 2**16),
    st.integers(1, 3),
    st.floats(0.01, 0.6),
)
def test_every_iterate_stays_in_region_and_best_is_returned(
    searcher: str, seed: int, b: int, eps: float
) -> None:
    net = random_net(seed, n=3, m=2, scale=2.0)
    g = torch.Generator().manual_seed(seed)
    centers = torch.rand(b, 3, generator=g, dtype=torch.float64)
    region = Region(centers, eps, Domain())
    recorder = Recorder(lambda x, y: y[:, 0] - y[:, 1])
    result = run(searcher, net, recorder, region)
    for x in recorder.points:
        assert bool(region.contains(x).all())
    assert bool(region.contains(result.x).all())
    best = torch.stack(recorder.values).amax(dim=0)
    assert torch.equal(result.value, best)
    with torch.no_grad():
        assert torch.equal(recorder.objective(result.x, net(result.x)), result.value)


def test_best_iterate_not_last() -> None:
    """Sign steps of 0.1 around a peak at 0.55 oscillate; the best iterate beats the last."""
    region = Region(torch.tensor([[0.5]], dtype=torch.float64), 0.3)
    recorder = Recorder(lambda x, y: -(x[:, 0] - 0.55).abs())
    config = PGDConfig(steps=4, step_size=0.1, random_start=False)
    result = pgd(nn.Identity(), recorder, region, torch.Generator(), config)
    last = recorder.values[-1]
    assert float(result.value[0]) == pytest.approx(-0.05)
    assert float(result.value[0]) > float(last[0])


def test_model_mode_and_parameter_grads_are_untouched() -> None:
    seen: list[bool] = []

    class Spy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = nn.Sequential(nn.Linear(2, 3), nn.Dropout(0.5)).double()

        def forward(self, x: Tensor) -> Tensor:
            seen.append(self.training or self.inner[1].training)
            out: Tensor = self.inner(x)
            return out

    model = Spy()
    model.train()
    model.inner[0].eval()  # a mixed state must come back as it was
    region = Region(CENTER, 0.1)
    for searcher in ("uniform", "fgsm", "pgd"):
        run(searcher, model, lambda x, y: y[:, 0], region)
    assert seen and not any(seen)
    assert model.training and model.inner[1].training and not model.inner[0].training
    assert all(p.grad is None for p in model.parameters())


def test_pgd_runs_under_no_grad() -> None:
    region = Region(CENTER, 0.125)
    with torch.no_grad():
        result = pgd(hand_net(), lambda x, y: y[:, 1], region, torch.Generator(), SMALL)
    assert result.x.tolist() == [[0.375, 0.5]]  # the corner maximising y1 = 16(x1 − x0)
    assert result.value.tolist() == [2.0]


def test_objective_shape_is_checked() -> None:
    with pytest.raises(InputError, match=r"shape \(1,\), got \(1, 3\)"):
        pgd(hand_net(), lambda x, y: y, Region(CENTER, 0.1), torch.Generator(), SMALL)


@pytest.mark.parametrize("config", [PGDConfig.paper(), PGDConfig.strong()])
@pytest.mark.parametrize(
    ("prop", "margin"),
    [
        (SR(eps=0.125, delta=3.0), 1.0),  # corner (0.375, 0.5): y0 = −2, |−2 − 2| = 4 = δ + 1
        (LR(eps=0.125, lipschitz=8.0), 3.0),  # same corner: 4 − 8 · 0.125
        (CR(eps=0.125), 4.0),  # same corner: y1 − y0 = 2 − (−2)
        (SCR(eps=0.125, eta=0.9), 0.9 - math.exp(-2) / (math.exp(-2) + math.exp(2) + math.e)),
    ],
)
def test_attack_finds_known_violation(
    prop: SR | LR | CR | SCR, margin: float, config: PGDConfig
) -> None:
    net = hand_net()
    with torch.no_grad():
        refs = prop.references(net(CENTER))
    result = attack(prop, net, CENTER, refs, Domain(), config, torch.Generator().manual_seed(3))
    assert bool(prop.violated(result.value)[0])
    assert float(result.value[0]) == pytest.approx(margin, abs=1e-6)
    assert result.x.tolist() == [[0.375, 0.5]]
    with torch.no_grad():
        y = net(result.x)
    assert not bool(prop.predicate(result.x, y, CENTER, refs)[0])


def test_attack_on_robust_point_reports_no_violation() -> None:
    net = hand_net()
    prop = SR(eps=0.125, delta=5.0)  # max ‖y − r‖∞ on the region is 4
    with torch.no_grad():
        refs = prop.references(net(CENTER))
    result = attack(prop, net, CENTER, refs, Domain(), SMALL, torch.Generator())
    assert float(result.value[0]) == -1.0
    assert not bool(prop.violated(result.value)[0])


@pytest.mark.parametrize(
    "prop", [SR(eps=0.2, delta=1.0), LR(eps=0.2, lipschitz=4.0), CR(eps=0.2), SCR(eps=0.2)]
)
def test_targeted_attack_is_at_least_as_strong(prop: SR | LR | CR | SCR) -> None:
    net = random_net(7, n=2, m=4, scale=3.0)
    centers = torch.rand(6, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        refs = prop.references(net(centers))
    plain = attack(prop, net, centers, refs, Domain(), SMALL, torch.Generator().manual_seed(0))
    both = attack(
        prop, net, centers, refs, Domain(), SMALL, torch.Generator().manual_seed(0), targeted=True
    )
    assert bool((both.value >= plain.value).all())
    assert bool(prop.region(centers, Domain()).contains(both.x).all())
    with torch.no_grad():
        assert torch.equal(prop.margin(both.x, net(both.x), centers, refs), both.value)


def test_targets_find_what_the_margin_cannot_from_the_center() -> None:
    """SR's margin ``‖y − r‖∞ − δ`` has a zero gradient at the center (``y = r``): PGD on it
    stays put, while the targets "output 0 up / down" walk to a violating corner."""
    net = hand_net()
    prop = SR(eps=0.125, delta=3.0)
    with torch.no_grad():
        refs = prop.references(net(CENTER))
    config = PGDConfig(steps=4, step_size=0.25, random_start=False, relative_step=True)
    plain = attack(prop, net, CENTER, refs, Domain(), config)
    assert plain.x.tolist() == CENTER.tolist() and not bool(prop.violated(plain.value)[0])
    targeted = attack(prop, net, CENTER, refs, Domain(), config, targeted=True)
    assert targeted.x.tolist() in ([[0.625, 0.25]], [[0.375, 0.5]])  # |y0 − r0| = 4 = δ + 1
    assert float(targeted.value[0]) == pytest.approx(1.0)


def test_searchers_are_deterministic_under_a_seed() -> None:
    net = random_net(3, n=2, m=2)
    region = Region(torch.rand(4, 2, generator=torch.Generator().manual_seed(2)).double(), 0.2)
    results = [
        pgd(net, lambda x, y: y[:, 0], region, torch.Generator().manual_seed(5), PGDConfig.paper())
        for _ in range(2)
    ]
    assert torch.equal(results[0].x, results[1].x)


def test_pgd_config_validation() -> None:
    with pytest.raises(InputError, match="steps must be >= 0, got -1"):
        PGDConfig(steps=-1, step_size=0.1)
    with pytest.raises(InputError, match="restarts must be >= 1, got 0"):
        PGDConfig(steps=1, step_size=0.1, restarts=0)
    with pytest.raises(InputError, match="step_size must be > 0, got 0"):
        PGDConfig(steps=1, step_size=0)
    with pytest.raises(InputError, match=r"steps must be an integer, got 1\.5"):
        PGDConfig(steps=1.5, step_size=0.1)  # type: ignore[arg-type]


def test_pgd_presets() -> None:
    paper = PGDConfig.paper()
    assert (paper.steps, paper.step_size, paper.restarts, paper.random_start) == (50, 0.01, 1, True)
    assert paper.absolute_step(0.3) == 0.01
    strong = PGDConfig.strong()
    assert strong.center_first and strong.restarts == 5 and strong.steps == 100
    assert strong.absolute_step(0.1) == pytest.approx(2.5 * 0.1 / 100)
