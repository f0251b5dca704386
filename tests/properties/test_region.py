"""Domain and Region: validation, boxes, projection, containment, sampling."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from robustprop.properties import Domain, InputError, Region, ball_box


def test_domain_defaults_and_arrays() -> None:
    assert Domain() == Domain(0.0, 1.0)
    d = Domain.from_arrays(np.array([0.0, -1.0]), np.array([1.0, 2.0]))
    assert d.lower == (0.0, -1.0) and d.n_features == 2
    lo, hi = d.bounds(2)
    np.testing.assert_array_equal(lo, [0.0, -1.0])
    np.testing.assert_array_equal(hi, [1.0, 2.0])
    assert hash(d) == hash(Domain((0.0, -1.0), (1.0, 2.0)))
    with pytest.raises(InputError, match="domain has 2 features but the input has 3"):
        d.bounds(3)


@pytest.mark.parametrize(
    ("lower", "upper", "message"),
    [
        (1.0, 0.0, "lower < upper, got lower=1.0 and upper=0.0"),
        (0.0, 0.0, "lower < upper"),
        (math.nan, 1.0, "domain lower must be finite, got nan"),
        (0.0, (1.0, 2.0, 3.0), None),
        ((0.0, 0.0), (1.0, 2.0, 3.0), "same length, got 2 and 3"),
        ((0.0, 5.0), 1.0, "lower=5.0 and upper=1.0 at feature 1"),
        ("0", 1.0, "must be a number"),
        ((), 1.0, "non-empty"),
    ],
)
def test_domain_validation(lower: object, upper: object, message: str | None) -> None:
    if message is None:
        Domain(lower, upper)  # type: ignore[arg-type]
        return
    with pytest.raises(InputError, match=message):
        Domain(lower, upper)  # type: ignore[arg-type]


def test_region_box_and_methods() -> None:
    centers = torch.tensor([[0.5, 0.5], [0.0, 1.0]], dtype=torch.float64)
    region = Region(centers, 0.25)
    assert region.lower.tolist() == [[0.25, 0.25], [0.0, 0.75]]
    assert region.upper.tolist() == [[0.75, 0.75], [0.25, 1.0]]
    lo, hi = region.box_numpy(1)
    assert lo.dtype == np.float64 and lo.tolist() == [0.0, 0.75] and hi.tolist() == [0.25, 1.0]
    x = torch.tensor([[0.9, 0.4], [0.1, 0.8]], dtype=torch.float64)
    assert region.contains(x).tolist() == [False, True]
    assert region.contains(x, atol=0.15).tolist() == [True, True]
    assert region.project(x).tolist() == [[0.75, 0.4], [0.1, 0.8]]
    samples = region.sample(7, torch.Generator().manual_seed(1))
    assert samples.shape == (2, 7, 2) and bool(region.contains(samples).all())
    with pytest.raises(InputError, match=r"got \(3, 2\)"):
        region.project(torch.zeros(3, 2))


@pytest.mark.parametrize(
    ("centers", "eps", "message"),
    [
        (torch.tensor([[0.5, 1.5]]), 0.1, "center 0 feature 1 = 1.5 lies outside the domain"),
        (torch.tensor([0.5, 0.5]), 0.1, r"shape \(B, n\)"),
        (torch.tensor([[0.5, 0.5]]), -0.1, "eps must be > 0, got -0.1"),
        (torch.tensor([[1, 0]]), 0.1, "floating point"),
        (torch.tensor([[math.nan, 0.5]]), 0.1, "finite"),
    ],
)
def test_region_validation(centers: torch.Tensor, eps: float, message: str) -> None:
    with pytest.raises(InputError, match=message):
        Region(centers, eps)


@settings(deadline=None, max_examples=50)
@given(
    st.lists(st.floats(0.0, 1.0, width=32), min_size=1, max_size=6),
    st.floats(1e-6, 2.0),
)
def test_float32_box_lies_inside_float64_box(center: list[float], eps: float) -> None:
    """Inward rounding: every float32 point of the region is inside the exact solver box."""
    c = torch.tensor([center], dtype=torch.float32)
    region = Region(c, eps)
    lo, hi = ball_box(np.array(center, dtype=np.float64), eps, Domain())
    assert bool((region.lower.double()[0].numpy() >= lo).all())
    assert bool((region.upper.double()[0].numpy() <= hi).all())
    assert bool((region.lower <= region.upper).all())
    assert bool(region.contains(c).all())
