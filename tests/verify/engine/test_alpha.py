"""α-CROWN (optimised ReLU slopes, and β multipliers for split ReLUs): its lower bounds are
never above the true minimum found by dense sampling, and the optimisation does tighten."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from robustprop.verify.engine.alpha import AlphaConfig, alpha_spec_lower
from robustprop.verify.engine.crown import Crown, LayerBounds
from robustprop.verify.engine.network import Clip, Relu
from tests.verify.test_bounds import forward_all, random_net


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), radius=st.floats(0.05, 0.8), split=st.booleans())
def test_alpha_lower_bound_is_below_the_sampled_minimum(
    seed: int, radius: float, split: bool
) -> None:
    """Random nets with ReLU and Clip layers; with ``split``, one unstable first-layer ReLU is
    fixed active or inactive and only samples obeying that constraint count."""
    net = random_net(seed, sizes=(3, 8, 8, 3), scale=2.0)
    rng = np.random.default_rng(seed)
    crown = Crown(net)
    center = rng.uniform(-0.5, 0.5, (2, net.n))
    lo, hi = crown.tensor(center - radius), crown.tensor(center + radius)
    splits: dict[int, torch.Tensor] = {}
    signs: dict[int, torch.Tensor] = {}
    plain = crown.layer_bounds(lo, hi)
    if split and isinstance(net.layers[1], Relu):
        unstable = (plain.lower[0] < 0) & (plain.upper[0] > 0)
        sign = torch.zeros_like(plain.lower[0], dtype=torch.int8)
        for b in range(2):
            idx = torch.nonzero(unstable[b]).reshape(-1)
            if idx.numel():
                sign[b, int(idx[0])] = 1 if rng.random() < 0.5 else -1
        splits, signs = {0: sign}, {1: sign}
    bounds = crown.layer_bounds(lo, hi, splits or None)
    spec = crown.tensor(rng.normal(size=(2, 5, net.m)))
    lower, lam, _ = alpha_spec_lower(
        crown, bounds, spec, AlphaConfig(steps=10, lr=0.5), signs=signs or None
    )
    assert lam.shape == (2, 5, net.n)
    for b in range(2):
        xs = np.vstack([center[b] - radius + 2 * radius * rng.random((20_000, net.n))])
        values = forward_all(net, xs)
        keep = np.ones(len(xs), dtype=bool)
        if splits:
            s = splits[0][b].numpy().astype(float)
            keep = np.all(values[0] * s >= 0.0, axis=1)  # the split constraints s·z ≥ 0
        if not keep.any():
            continue
        true = values[-1][keep] @ spec[b].numpy().T  # (samples, K)
        assert np.all(true.min(axis=0) >= lower[b].numpy()), (true.min(axis=0), lower[b])


def _deeper_case(seed: int) -> tuple[Crown, LayerBounds, torch.Tensor, torch.Tensor]:
    """A 4-16-16-16-3 ReLU net, CROWN's bounds over 8 boxes, 3 random spec rows per box and
    CROWN's lower bounds of them."""
    net = random_net(5, sizes=(4, 16, 16, 16, 3), clip=False)
    crown = Crown(net)
    rng = np.random.default_rng(seed)
    center = rng.uniform(-0.5, 0.5, (8, net.n))
    lo, hi = crown.tensor(center - 0.3), crown.tensor(center + 0.3)
    bounds = crown.layer_bounds(lo, hi)
    spec = crown.tensor(rng.normal(size=(8, 3, net.m)))
    return crown, bounds, spec, crown.spec_lower(bounds, spec)


def test_optimised_slopes_tighten_crown_on_a_deeper_net() -> None:
    crown, bounds, spec, crown_lower = _deeper_case(0)
    alpha_lower, _, _ = alpha_spec_lower(crown, bounds, spec, AlphaConfig(steps=20, lr=0.3))
    # the optimisation starts from CROWN's slopes and keeps the best per row
    assert bool((alpha_lower >= crown_lower - 1e-9).all())
    assert float((alpha_lower - crown_lower).mean()) > 1e-3


def test_zero_steps_is_crown() -> None:
    net = random_net(7, sizes=(3, 8, 8, 3), clip=True)
    crown = Crown(net)
    lo, hi = crown.tensor([[0.0, 0.1, 0.2]]), crown.tensor([[0.4, 0.5, 0.6]])
    bounds = crown.layer_bounds(lo, hi)
    spec = crown.tensor(np.eye(3)[None])
    alpha_lower, _, _ = alpha_spec_lower(crown, bounds, spec, AlphaConfig(steps=0))
    assert torch.allclose(alpha_lower, crown.spec_lower(bounds, spec), rtol=0, atol=1e-12)


def test_float32_steps_tighten_as_float64_ones_and_never_give_the_bound() -> None:
    """The steps run in float32 by default; the bound is still computed in float64 with the
    chosen slopes, so it tightens CROWN about as much as float64 steps do, and a float32
    back-substitution cannot give a bound (with its margin)."""
    crown, bounds, spec, crown_lower = _deeper_case(1)
    low, _, best = alpha_spec_lower(crown, bounds, spec, AlphaConfig(steps=20))
    high, _, _ = alpha_spec_lower(crown, bounds, spec, AlphaConfig(steps=20, float32=False))
    assert low.dtype == torch.float64
    assert all(t.dtype == torch.float64 for ts in best[0].values() for t in ts)
    assert bool((low >= crown_lower - 1e-9).all())
    gain_low, gain_high = float((low - crown_lower).mean()), float((high - crown_lower).mean())
    assert gain_low > 0.9 * gain_high > 0.0, (gain_low, gain_high)
    zero = torch.zeros(8, 3, dtype=torch.float32)
    with pytest.raises(ValueError, match="float64"):
        crown.backward(bounds.to(torch.float32), len(crown.network.layers), spec.float(), zero)


def test_a_clamp_never_reached_is_the_identity_also_for_optimised_slopes() -> None:
    """The ±100 output Clip of a trained network is the identity where its inputs stay inside:
    ``backward`` skips it, and α's steps still run (its slopes are then unused) and give the
    same bounds as the network without it."""
    bare = random_net(5, sizes=(4, 16, 16, 3), clip=False)
    clamped = dataclasses.replace(bare, layers=(*bare.layers, Clip(-100.0, 100.0)))
    rng = np.random.default_rng(0)
    center = rng.uniform(-0.5, 0.5, (4, bare.n))
    spec_np = rng.normal(size=(4, 3, bare.m))
    lowers = []
    for net in (bare, clamped):
        crown = Crown(net)
        bounds = crown.layer_bounds(crown.tensor(center - 0.3), crown.tensor(center + 0.3))
        spec = crown.tensor(spec_np)
        lower, _, _ = alpha_spec_lower(crown, bounds, spec, AlphaConfig(steps=5, lr=0.3))
        lowers.append(lower)
    assert torch.allclose(lowers[0], lowers[1], rtol=0, atol=1e-9)
