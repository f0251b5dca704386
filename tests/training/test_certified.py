"""Certified training bounds: sound against sampling, PGD and the exact verifier."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import Tensor

import robustprop
from robustprop.properties import (
    CR,
    Domain,
    PGDConfig,
    Property,
    References,
    Region,
    attack,
    make_property,
)
from robustprop.properties.errors import InputError
from robustprop.training.certified import (
    crown_ibp_lower,
    interval_bounds,
    linear_layers,
    margin_upper_bound,
    worst_case_outputs,
)
from robustprop.training.models import ClampMLP, build_model

torch.set_num_threads(1)

N, M, B = 6, 3, 12


def _net(seed: int, hidden: tuple[int, ...] = (8,), scale: float = 1.5) -> ClampMLP:
    torch.manual_seed(seed)
    net = ClampMLP(N, M, hidden)
    with torch.no_grad():
        for layer in linear_layers(net):
            layer.weight.mul_(scale)
            layer.bias.mul_(scale)
    return net.eval()


def _points(seed: int) -> tuple[Tensor, Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(B, N, generator=gen), torch.randint(0, M, (B,), generator=gen)


def _sampled_margins(net: ClampMLP, prop: Property, region: Region, refs: References) -> Tensor:
    """The property's margin at 3000 uniform points and every box corner-ish point per row."""
    gen = torch.Generator().manual_seed(7)
    samples = region.sample(3000, gen)
    corners = torch.where(
        torch.rand(B, 500, N, generator=gen) < 0.5,
        region.lower[:, None, :],
        region.upper[:, None, :],
    )
    points = torch.cat([samples, corners], dim=1)
    k = points.shape[1]
    with torch.no_grad():
        out = net(points.reshape(-1, N)).reshape(B, k, M)
    rep = References(
        refs.scores.repeat_interleave(k, dim=0), refs.classes.repeat_interleave(k, dim=0)
    )
    flat = points.reshape(-1, N)
    centers = region.centers.repeat_interleave(k, dim=0)
    return prop.margin(flat, out.reshape(-1, M), centers, rep).reshape(B, k)


@pytest.mark.parametrize("name", ["cr", "sr", "scr"])
@pytest.mark.parametrize("crown", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_margin_bound_is_above_every_sampled_margin(name: str, crown: float, seed: int) -> None:
    hidden = (8,) if seed != 2 else (7, 5)
    net = _net(seed, hidden)
    x, y = _points(seed)
    prop = make_property(name, eps=0.08)
    region = prop.region(x, Domain())
    with torch.no_grad():
        refs = References(net(x), y)
        bound = margin_upper_bound(net, prop, region, refs, crown_weight=crown)
    sampled = _sampled_margins(net, prop, region, refs)
    assert bool((sampled.amax(dim=1) <= bound + 1e-5).all())


def test_clamp_is_handled_soundly() -> None:
    """Scores beyond the clamp: the bound still covers the clamped outputs."""
    net = _net(3, scale=60.0)
    x, y = _points(3)
    for name in ("cr", "sr", "scr"):
        prop = make_property(name, eps=0.05)
        region = prop.region(x, Domain())
        with torch.no_grad():
            refs = References(net(x), y)
            z = interval_bounds(linear_layers(net), region.lower, region.upper)
            assert float(z.upper[-1].abs().max()) > 100  # the clamp is active somewhere
            for crown in (0.0, 1.0):
                bound = margin_upper_bound(net, prop, region, refs, crown_weight=crown)
                sampled = _sampled_margins(net, prop, region, refs)
                assert bool((sampled.amax(dim=1) <= bound + 1e-4).all()), (name, crown)


def test_crown_ibp_is_exact_on_a_linear_net_and_tighter_than_ibp() -> None:
    torch.manual_seed(0)
    net = ClampMLP(N, M, (10,)).eval()
    x, _ = _points(0)
    region = Region(x, 0.1)
    layers = linear_layers(net)
    with torch.no_grad():
        bounds = interval_bounds(layers, region.lower, region.upper)
        spec = torch.eye(M).expand(B, M, M)
        crown = crown_ibp_lower(layers, bounds, spec, region.lower, region.upper)
    # IBP's lower bound of z itself and CROWN-IBP's: both sound, CROWN-IBP never looser here
    assert bool((crown >= bounds.lower[-1] - 1e-5).all())
    sampled = net(region.sample(2000, torch.Generator().manual_seed(0)).reshape(-1, N))
    assert bool((sampled.reshape(B, 2000, M).amin(dim=1) >= crown - 1e-5).all())


def test_worst_case_outputs_at_a_point_are_the_outputs() -> None:
    """A region of (almost) one point: the bound is the property's margin there."""
    net = _net(4)
    x, y = _points(4)
    for name in ("cr", "sr", "scr"):
        prop = make_property(name, eps=1e-7)
        region = prop.region(x, Domain())
        with torch.no_grad():
            out = net(x)
            refs = References(out, y)
            bound = margin_upper_bound(net, prop, region, refs, crown_weight=1.0)
            exact = prop.margin(x, out, x, refs)
        assert torch.allclose(bound, exact, atol=1e-3), name


def test_bound_proofs_agree_with_the_exact_verifier() -> None:
    """Where the training bound proves CR, the verifier never finds a violation; where the
    verifier or PGD finds one, the bound's margin is at least the witness's."""
    proved = 0
    violated = 0
    for seed, eps in enumerate((0.05, 0.15, 0.3)):
        net = _net(seed, (8,), scale=3.0)
        with torch.no_grad():
            linear_layers(net)[-1].bias.zero_()  # no class wins everywhere
        x, _ = _points(seed)
        x = x[:6]
        prop = CR(eps=eps)
        model = robustprop.load(net, example_input=torch.zeros(1, N))
        region = prop.region(x, Domain())
        with torch.no_grad():
            out = net(x)
            refs = prop.references(out)
            bound = margin_upper_bound(net, prop, region, refs, crown_weight=1.0)
        found = attack(prop, net, x, refs, Domain(), PGDConfig.strong(), targeted=True)
        for i in range(x.shape[0]):
            verdict = robustprop.decide(model, prop, x[i].numpy(), timeout=30)
            assert verdict.status in ("holds", "violated"), verdict
            if not bool(prop.violated(bound[i])):
                proved += 1
                assert verdict.status == "holds"
            if verdict.status == "violated":
                violated += 1
                witness = torch.as_tensor(np.asarray(verdict.witness), dtype=torch.float32)
                with torch.no_grad():
                    one = References(refs.scores[i : i + 1], refs.classes[i : i + 1])
                    at = prop.margin(witness[None], net(witness[None]), x[i : i + 1], one)
                assert float(at[0]) <= float(bound[i]) + 1e-5
            assert float(found.value[i]) <= float(bound[i]) + 1e-5
    assert proved > 0 and violated > 0  # both directions were exercised


def test_only_cr_sr_scr_on_clamp_mlps() -> None:
    net = _net(0)
    x, y = _points(0)
    lr = make_property("lr", eps=0.1)
    with torch.no_grad(), pytest.raises(InputError, match="not lr"):
        worst_case_outputs(net, lr, lr.region(x, Domain()), References(net(x), y))
    seq = torch.nn.Sequential(torch.nn.Linear(N, M))
    with pytest.raises(InputError, match="ClampMLP network, got Sequential"):
        linear_layers(seq)
    cr = make_property("cr", eps=0.1)
    with pytest.raises(InputError, match="crown_weight must lie in"):
        worst_case_outputs(net, cr, cr.region(x, Domain()), References(net(x), y), crown_weight=2)


def test_deeper_networks_are_bounded_too() -> None:
    net = build_model("mlp-deep", N, M)
    x = _points(0)[0]
    assert len(linear_layers(net)) == 3
    with torch.no_grad():
        at_point = interval_bounds(linear_layers(net), x, x)
        assert torch.allclose(at_point.upper[-1].clamp(-100, 100), net(x), atol=1e-5)
        assert math.isfinite(float(at_point.upper[-1].sum()))
