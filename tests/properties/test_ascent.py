"""The one ascent loop: per-point bookkeeping over several rows, points leaving the batch, the
step schedule, determinism, and no host synchronisation on the path training captures."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import torch
from torch import Tensor, nn

from robustprop.properties import (
    BatchObjective,
    Best,
    Domain,
    InputError,
    PGDConfig,
    Region,
    ascend,
    ascend_region,
    pgd,
)
from tests.properties.nets import random_net


def climb_x0(_: Tensor) -> BatchObjective:
    """Every row climbs and is scored by its first input."""

    def objective(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        return x[:, 0], x[:, 0]

    return objective


def test_best_keeps_the_first_best_row_per_point_and_ignores_nan() -> None:
    best = Best(torch.zeros(2, 1, dtype=torch.float64))
    x = torch.arange(6, dtype=torch.float64)[:, None]  # rows 0..2 of point 0, 3..5 of point 1
    best.update(x, torch.tensor([1.0, 3.0, 3.0, math.nan, -1.0, math.nan], dtype=torch.float64))
    assert best.x.tolist() == [[1.0], [4.0]] and best.value.tolist() == [3.0, -1.0]
    best.update(x, torch.tensor([3.0, 0.0, 0.0, 5.0, 0.0, 0.0], dtype=torch.float64))
    assert best.x.tolist() == [[1.0], [3.0]] and best.value.tolist() == [3.0, 5.0]  # 3 ≯ 3
    best.update(x[:2], torch.tensor([7.0, 8.0], dtype=torch.float64), torch.tensor([1]))
    assert best.x.tolist() == [[1.0], [1.0]] and best.value.tolist() == [3.0, 8.0]
    start = Best(torch.zeros(1, 1), torch.tensor([math.nan]))
    assert start.value.tolist() == [-math.inf]


def test_points_leave_the_batch_when_stop_says_so() -> None:
    seen: list[int] = []

    def model(x: Tensor) -> Tensor:
        seen.append(x.shape[0])
        return x

    best = Best(torch.zeros(3, 1))
    lower, upper = torch.zeros(6, 1), torch.ones(6, 1)
    x = torch.zeros(6, 1)  # two rows per point; point p stops once its best x0 reaches p / 4

    def done(points: Tensor) -> Tensor:
        return best.value[points] >= points / 4

    ascend(model, climb_x0, best, x, lower, upper, 0.1, 20, stop=done, check_every=2)
    # checked after iterates 1, 3, 5: point 0 leaves after 1, point 1 after 3, point 2 after 5
    assert seen == [6, 6, 4, 4, 2, 2]
    assert best.value.tolist() == pytest.approx([0.1, 0.3, 0.5])


def test_step_halves_after_the_named_iterates() -> None:
    best = Best(torch.zeros(1, 1, dtype=torch.float64))
    x = torch.zeros(1, 1, dtype=torch.float64)
    seen: list[float] = []

    def model(x: Tensor) -> Tensor:
        seen.append(float(x[0, 0].detach()))
        return x

    box = torch.zeros(1, 1, dtype=torch.float64), torch.full((1, 1), 9.0, dtype=torch.float64)
    ascend(model, climb_x0, best, x, *box, 1.0, 4, halve_at=(1, 2))
    assert seen == [0.0, 1.0, 1.5, 1.75, 2.0]


def test_rows_must_divide_among_points() -> None:
    with pytest.raises(InputError, match="5 rows cannot be split among 2 points"):
        ascend(nn.Identity(), climb_x0, Best(torch.zeros(2, 1)), torch.zeros(5, 1),
               torch.zeros(5, 1), torch.ones(5, 1), 0.1, 1)  # fmt: skip
    with pytest.raises(InputError, match="check_every must be an integer >= 1"):
        ascend(nn.Identity(), climb_x0, Best(torch.zeros(1, 1)), torch.zeros(1, 1),
               torch.zeros(1, 1), torch.ones(1, 1), 0.1, 1, check_every=0)  # fmt: skip


def test_region_restarts_are_deterministic_and_stay_inside() -> None:
    net = random_net(4, n=3, m=2)
    centers = torch.rand(5, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    region = Region(centers, 0.3, Domain())
    config = PGDConfig(steps=5, step_size=0.2, restarts=3, relative_step=True)

    def rows(_: Tensor) -> BatchObjective:
        def objective(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
            return y[:, 0], y[:, 0] - y[:, 1]

        return objective

    results = []
    for _ in range(2):
        best = Best(region.project(region.centers))
        ascend_region(net, rows, region, 2, config, torch.Generator().manual_seed(9), best)
        results.append(best.result())
    assert torch.equal(results[0].x, results[1].x)
    assert torch.equal(results[0].value, results[1].value)
    assert bool(region.contains(results[0].x).all())
    with torch.no_grad():
        y = net(results[0].x)
    assert torch.equal(y[:, 0] - y[:, 1], results[0].value)  # scored by score, not by ascent


@pytest.fixture
def no_host_sync(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail on every tensor → Python conversion (each one waits for a CUDA device)."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("host synchronisation")

    for name in ("__bool__", "__int__", "__float__", "__index__", "item", "tolist", "nonzero"):
        monkeypatch.setattr(torch.Tensor, name, refuse)
    yield


#: Built at import: building a region checks its centers on the host.
REGION = Region(torch.rand(4, 3, generator=torch.Generator().manual_seed(2)).double(), 0.1)


def test_pgd_never_waits_on_the_device(no_host_sync: None) -> None:
    """Training captures its PGD step in a CUDA graph: nothing there may read a value back."""
    config = PGDConfig(steps=3, step_size=0.25, restarts=2, relative_step=True, center_first=True)
    found = pgd(random_net(1, n=3, m=2), lambda x, y: y[:, 0] - y[:, 1], REGION,
                torch.Generator().manual_seed(0), config)  # fmt: skip
    assert found.x.shape == (4, 3)
