"""Per-batch losses of the regimes, recomputed by hand from the points the network saw."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robustprop.properties import Domain, PGDConfig, Region, make_property
from robustprop.training.models import build_model
from robustprop.training.regimes import (
    STATS,
    Adversarial,
    Augment,
    Baseline,
    Constraint,
    Regime,
)

torch.set_num_threads(1)

B, N, M = 16, 20, 4
PGD = PGDConfig(steps=4, step_size=0.02)


class Recorder(nn.Module):
    """The network, remembering every batch it was called on."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = build_model("mlp", N, M)
        self.calls: list[Tensor] = []

    def forward(self, x: Tensor) -> Tensor:
        self.calls.append(x.detach().clone())
        out: Tensor = self.net(x)
        return out


@pytest.fixture
def batch() -> tuple[Tensor, Tensor]:
    gen = torch.Generator().manual_seed(1)
    return torch.rand(B, N, generator=gen), torch.randint(0, M, (B,), generator=gen)


def _run(regime: Regime, model: Recorder, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    out = regime.batch(model, x, y, regime.region(x), torch.Generator().manual_seed(2))
    assert out.loss.dim() == 0 and out.loss.requires_grad
    assert out.stats.shape == (len(STATS),) and out.stats.dtype == torch.float64
    assert not out.stats.requires_grad
    return out.loss, out.stats


def _stat(stats: Tensor, name: str) -> float:
    return float(stats[STATS.index(name)])


def test_baseline(batch: tuple[Tensor, Tensor]) -> None:
    x, y = batch
    model = Recorder()
    loss, stats = _run(Baseline(), model, x, y)
    out = model.net(x)
    assert torch.allclose(loss, F.cross_entropy(out, y))
    assert _stat(stats, "points") == B and _stat(stats, "sampled") == 0
    assert _stat(stats, "correct") == float((out.argmax(1) == y).sum())
    assert Baseline().region(x) is None


@pytest.mark.parametrize("sampler", ["uniform", "fgsm"])
def test_augment_adds_points_in_the_ball_with_the_same_label(
    sampler: str, batch: tuple[Tensor, Tensor]
) -> None:
    x, y = batch
    model = Recorder()
    regime = Augment(sampler, 0.1, Domain(), 2)
    loss, stats = _run(regime, model, x, y)
    seen = model.calls[-1]
    assert seen.shape == (3 * B, N) and torch.equal(seen[:B], x)
    extra = seen[B:].reshape(B, 2, N)
    region = Region(x, 0.1)
    assert bool(region.contains(extra).all())
    assert not torch.equal(extra[:, 0], extra[:, 1])  # two different points per image
    labels = torch.cat([y, y.repeat_interleave(2)])
    assert torch.allclose(loss, F.cross_entropy(model.net(seen), labels))
    assert _stat(stats, "sampled") == 2 * B


@pytest.mark.parametrize("sampler", ["fgsm", "pgd"])
def test_adversarial_loss(sampler: str, batch: tuple[Tensor, Tensor]) -> None:
    x, y = batch
    model = Recorder()
    regime = Adversarial(sampler, 0.1, Domain(), 1.0, 0.5, PGD)
    loss, stats = _run(regime, model, x, y)
    seen = model.calls[-1]
    x_adv = seen[B:]
    assert torch.equal(seen[:B], x) and bool(Region(x, 0.1).contains(x_adv).all())
    expected = F.cross_entropy(model.net(x), y) + 0.5 * F.cross_entropy(model.net(x_adv), y)
    assert torch.allclose(loss, expected)
    # The attack raises the cross-entropy over that of the images.
    assert _stat(stats, "sample_ce") > _stat(stats, "ce")


@pytest.mark.parametrize("name", ["sr", "lr", "scr"])
@pytest.mark.parametrize("reference", ["output", "label"])
def test_constraint_loss(name: str, reference: str, batch: tuple[Tensor, Tensor]) -> None:
    x, y = batch
    prop = make_property(name, reference=reference, **({"delta": 0.05} if name == "sr" else {}))
    model = Recorder()
    regime = Constraint(prop, Domain(), 1.0, 2.0, PGD)
    loss, stats = _run(regime, model, x, y)
    # Every call of the network saw the whole batch: PGD runs batched, not per image.
    assert all(call.shape == (B, N) for call in model.calls)
    assert len(model.calls) == PGD.steps + 3  # f(x̂), the PGD iterates + final check, f(x′)
    x_adv = model.calls[-1]
    assert bool(prop.region(x, Domain()).contains(x_adv).all())
    out = model.net(x)
    refs = prop.references(out, y)
    out_adv = model.net(x_adv)
    constraint = prop.loss(x_adv, out_adv, x, refs)
    assert torch.allclose(loss, F.cross_entropy(out, y) + 2.0 * constraint.mean())
    assert _stat(stats, "constraint_loss") == pytest.approx(
        float(constraint.detach().sum()), rel=1e-5
    )
    holds = prop.predicate(x_adv, out_adv, x, refs)
    assert _stat(stats, "satisfied") == float(holds.sum()) and _stat(stats, "sampled") == B


def test_constraint_gradient_reaches_the_reference(batch: tuple[Tensor, Tensor]) -> None:
    """As in DL2, L_C differentiates through f(x̂) too, not only through f(x′)."""
    x, y = batch
    prop = make_property("sr", delta=0.01)
    model = Recorder()
    regime = Constraint(prop, Domain(), 0.0, 1.0, PGD)
    loss, _ = _run(regime, model, x, y)
    (grad,) = torch.autograd.grad(loss, [next(model.net.parameters())])
    x_adv = model.calls[-1]
    refs = prop.references(model.net(x).detach(), y)
    detached = prop.loss(x_adv, model.net(x_adv), x, refs).mean()
    (grad_detached,) = torch.autograd.grad(detached, [next(model.net.parameters())])
    assert float(loss.detach()) > 0 and not torch.allclose(grad, grad_detached)
