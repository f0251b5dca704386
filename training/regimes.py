"""The per-batch loss of each training regime (DESIGN.md §5), built on ``properties``.

Every regime maps a batch ``(x̂, y)`` to a scalar loss and a vector of statistics (sums over
the batch, see :data:`STATS`). Points ``x′`` come from the searchers of
:mod:`robustprop.properties.search`, batched over the whole batch, inside the region ``B(x̂, ε) ∩
domain``
that the caller builds with :meth:`Regime.region`. Cross-entropy is taken on the softmax of
the clamped scores (``F.cross_entropy`` of the network output).

- ``baseline``: ``CE(x̂)``.
- ``augment``: ``k`` extra points per image, same label: uniform samples, or FGSM (the first
  a step of ε from the center, the others from uniform starts, so the ``k`` points differ);
  the loss is the mean CE over all ``(1 + k)·B`` points.
- ``adversarial``: ``α·CE(x̂) + β·CE(x′)``, ``x′`` from FGSM (one step of ε from the center)
  or PGD on the per-point CE.
- ``certified``: ``κ·CE(x̂) + (1 − κ)·mean L_cert`` at the worst-case outputs ``y*``
  (:mod:`.certified`) over the property's region at the scheduled ε, ``c`` the label, ``r =
  f(x̂)``: CR ``CE(y*, c)``, SCR ``max(CE(y*, c) + log η, 0)`` (> 0 exactly when the margin
  bound is), SR ``prop.loss(y*)``; ε = 0: ``CE(x̂)`` only. Schedule: :meth:`Regime.start_epoch`.
- ``lipschitz``: ``CE(s·f(x̂))`` (``s`` the logit scale); :meth:`Regime.constrain` projects
  the layers after every step (:mod:`robustprop.training.lipschitz`).
- ``constraint``: ``α·CE(x̂) + β·mean L_C(x′)`` with ``L_C = prop.loss`` and ``x′`` from PGD
  on ``prop.margin`` (what :func:`robustprop.properties.attack` runs), references
  ``prop.references``.
  As in DL2, the gradient of ``L_C`` flows through both ``f(x′)`` and the reference
  ``r = f(x̂)``; the attack itself sees the references detached.

The "satisfied" statistic counts sampled points where the trained property holds
(``constraint``), or where CR with the label as class holds (``augment``, ``adversarial``:
the sampled point is still classified as its label); for ``certified`` it counts the regions
(at the scheduled ε) whose margin bound proves the property.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import ClassVar, Final

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robustprop.properties import (
    CR,
    SCR,
    Domain,
    PGDConfig,
    Property,
    References,
    Region,
    fgsm,
    pgd,
)
from robustprop.properties.errors import InternalError
from robustprop.properties.search import Objective, SearchResult
from robustprop.training.certified import worst_case_outputs
from robustprop.training.config import CertifiedConfig, LipschitzConfig, TrainConfig
from robustprop.training.lipschitz import project

__all__ = [
    "STATS",
    "Adversarial",
    "Augment",
    "Baseline",
    "BatchLoss",
    "Certified",
    "Constraint",
    "Lipschitz",
    "Regime",
    "make_regime",
]

Model = Callable[[Tensor], Tensor]

#: Entries of :attr:`BatchLoss.stats`, all sums over the batch.
STATS: Final = (
    "points",  # images in the batch
    "ce",  # cross-entropy at the images
    "constraint_loss",  # L_C at the sampled points (constraint)
    "sample_ce",  # cross-entropy at the sampled points (augment, adversarial)
    "correct",  # images classified as their label
    "satisfied",  # sampled points satisfying the monitored property
    "sampled",  # sampled points
)


@dataclass(frozen=True, eq=False)
class BatchLoss:
    """The loss to minimise and the batch's statistics.

    Shape:
        loss: ``()``, differentiable; stats: ``(len(STATS),)`` float64, detached sums.
    """

    loss: Tensor
    stats: Tensor


class Regime(ABC):
    """One training regime: its region around each image and its per-batch loss."""

    name: ClassVar[str]
    #: Which optional statistics the regime reports (others are logged as null).
    reports: ClassVar[frozenset[str]] = frozenset()

    @property
    def capturable(self) -> bool:
        """Whether :meth:`batch` runs without host synchronisation (CUDA-graph capture)."""
        return True

    def start_epoch(self, epoch: int, batches: int) -> None:
        """Called before epoch ``epoch`` (from 1) of ``batches`` steps (for schedules)."""
        return  # most regimes have no schedule

    def constrain(self, model: nn.Module) -> None:
        """Called after every optimiser step and once before the first (for projections)."""
        return  # most regimes leave the weights alone

    @abstractmethod
    def region(self, x: Tensor) -> Region | None:
        """The region the sampler searches around each row of ``x`` (``None``: no sampling)."""

    @abstractmethod
    def batch(
        self,
        model: Model,
        x: Tensor,
        y: Tensor,
        region: Region | None,
        generator: torch.Generator,
    ) -> BatchLoss:
        """Loss and statistics of one batch.

        Shape:
            x: ``(B, n)`` images; y: ``(B,)`` int64 labels; region: around ``x``.
        """


def _stats(
    x: Tensor,
    ce: Tensor,
    *,
    constraint: Tensor | None = None,
    sample_ce: Tensor | None = None,
    correct: Tensor,
    satisfied: Tensor | None = None,
    sampled: int = 0,
) -> Tensor:
    """The :data:`STATS` vector (built from tensors only, so CUDA graphs can capture it)."""

    def total(value: Tensor | None) -> Tensor:
        if value is None:
            return torch.zeros((), dtype=torch.float64, device=x.device)
        return value.detach().to(torch.float64).sum()

    def count(n: int) -> Tensor:
        return torch.full((), float(n), dtype=torch.float64, device=x.device)

    return torch.stack(
        [
            count(x.shape[0]),
            total(ce),
            total(constraint),
            total(sample_ce),
            total(correct),
            total(satisfied),
            count(sampled),
        ]
    )


def _ce_objective(labels: Tensor) -> Objective:
    """Per-point cross-entropy with ``labels`` (an objective for FGSM/PGD to maximise)."""

    def objective(x: Tensor, out: Tensor) -> Tensor:
        return F.cross_entropy(out, labels, reduction="none")

    return objective


def _need(region: Region | None, name: str) -> Region:
    if region is None:
        raise InternalError(f"regime {name} needs a region around the batch")
    return region


def _still_classified(eps: float, x: Tensor, out: Tensor, labels: Tensor) -> Tensor:
    """CR with the label as class at sampled points ``x`` (rows) with outputs ``out``."""
    refs = References(out.detach(), labels)  # CR reads only the classes
    return CR(eps=eps).predicate(x, out.detach(), x, refs)


class Baseline(Regime):
    """Cross-entropy only."""

    name = "baseline"

    def region(self, x: Tensor) -> Region | None:
        return None

    def batch(
        self,
        model: Model,
        x: Tensor,
        y: Tensor,
        region: Region | None,
        generator: torch.Generator,
    ) -> BatchLoss:
        out = model(x)
        ce = F.cross_entropy(self.logit_scale * out, y, reduction="none")
        correct = out.detach().argmax(dim=1) == y
        return BatchLoss(ce.mean(), _stats(x, ce, correct=correct))

    @property
    def logit_scale(self) -> float:
        """The cross-entropy is of ``logit_scale·f(x)`` (the lipschitz regime's scale)."""
        return 1.0


@dataclass(frozen=True)
class Augment(Regime):
    """``points`` extra points per image in its ε-ball, same label (uniform or FGSM)."""

    name: ClassVar[str] = "augment"
    reports: ClassVar[frozenset[str]] = frozenset({"sample_ce", "satisfied"})

    sampler: str
    eps: float
    domain: Domain
    points: int

    def region(self, x: Tensor) -> Region | None:
        return Region(x, self.eps, self.domain)

    def _sample(
        self, model: Model, y: Tensor, region: Region, generator: torch.Generator
    ) -> Tensor:
        if self.sampler == "uniform":
            return region.sample(self.points, generator)
        objective = _ce_objective(y)
        found = [
            fgsm(model, objective, region, generator, random_start=i > 0).x
            for i in range(self.points)
        ]
        return torch.stack(found, dim=1)

    def batch(
        self,
        model: Model,
        x: Tensor,
        y: Tensor,
        region: Region | None,
        generator: torch.Generator,
    ) -> BatchLoss:
        b, n = x.shape
        extra = self._sample(model, y, _need(region, self.name), generator).reshape(-1, n)
        labels = y.repeat_interleave(self.points)
        out = model(torch.cat([x, extra]))
        ce = F.cross_entropy(out, torch.cat([y, labels]), reduction="none")
        stats = _stats(
            x,
            ce[:b],
            sample_ce=ce[b:],
            correct=out[:b].detach().argmax(dim=1) == y,
            satisfied=_still_classified(self.eps, extra, out[b:], labels),
            sampled=b * self.points,
        )
        return BatchLoss(ce.mean(), stats)


@dataclass(frozen=True)
class Adversarial(Regime):
    """``α·CE(x̂) + β·CE(x′)`` with ``x′`` from FGSM or PGD on the cross-entropy."""

    name: ClassVar[str] = "adversarial"
    reports: ClassVar[frozenset[str]] = frozenset({"sample_ce", "satisfied"})

    sampler: str
    eps: float
    domain: Domain
    alpha: float
    beta: float
    pgd: PGDConfig

    def region(self, x: Tensor) -> Region | None:
        return Region(x, self.eps, self.domain)

    def batch(
        self,
        model: Model,
        x: Tensor,
        y: Tensor,
        region: Region | None,
        generator: torch.Generator,
    ) -> BatchLoss:
        area = _need(region, self.name)
        objective = _ce_objective(y)
        found: SearchResult
        if self.sampler == "fgsm":
            found = fgsm(model, objective, area, generator)
        else:
            found = pgd(model, objective, area, generator, self.pgd)
        b = x.shape[0]
        out = model(torch.cat([x, found.x]))
        ce = F.cross_entropy(out, torch.cat([y, y]), reduction="none")
        loss = self.alpha * ce[:b].mean() + self.beta * ce[b:].mean()
        stats = _stats(
            x,
            ce[:b],
            sample_ce=ce[b:],
            correct=out[:b].detach().argmax(dim=1) == y,
            satisfied=_still_classified(self.eps, found.x, out[b:], y),
            sampled=b,
        )
        return BatchLoss(loss, stats)


@dataclass(frozen=True)
class Constraint(Regime):
    """``α·CE(x̂) + β·mean L_C(x′)``, ``x′`` from PGD on the property's margin."""

    name: ClassVar[str] = "constraint"
    reports: ClassVar[frozenset[str]] = frozenset({"constraint_loss", "satisfied"})

    prop: Property
    domain: Domain
    alpha: float
    beta: float
    pgd: PGDConfig

    @property
    def capturable(self) -> bool:
        # reference="label" validates the labels of every batch on the host.
        return self.prop.reference == "output"

    def region(self, x: Tensor) -> Region | None:
        return self.prop.region(x, self.domain)

    def batch(
        self,
        model: Model,
        x: Tensor,
        y: Tensor,
        region: Region | None,
        generator: torch.Generator,
    ) -> BatchLoss:
        area = _need(region, self.name)
        centers = area.centers
        out = model(x)
        ce = F.cross_entropy(out, y, reduction="none")
        refs = self.prop.references(out, y)
        fixed = refs.detach()

        def margin(points: Tensor, scores: Tensor) -> Tensor:
            return self.prop.margin(points, scores, centers, fixed)

        # The body of robustprop.properties.attack, on the region the caller built (so that a CUDA
        # graph can refresh that region in place instead of constructing one per batch).
        found = pgd(model, margin, area, generator, self.pgd)
        out_found = model(found.x)
        constraint = self.prop.loss(found.x, out_found, centers, refs)
        loss = self.alpha * ce.mean() + self.beta * constraint.mean()
        stats = _stats(
            x,
            ce,
            constraint=constraint,
            correct=out.detach().argmax(dim=1) == y,
            satisfied=self.prop.predicate(found.x, out_found.detach(), centers, fixed),
            sampled=x.shape[0],
        )
        return BatchLoss(loss, stats)


class _Clock:
    """Where a schedule stands: the current epoch (from 1), its step, its number of steps."""

    def __init__(self) -> None:
        self.epoch = 0
        self.step = 0
        self.batches = 1

    @property
    def done(self) -> float:
        """Epochs finished, counting the current one's steps so far."""
        return self.epoch - 1 + self.step / self.batches


@dataclass(frozen=True)
class Certified(Regime):
    """``κ·CE(x̂) + (1 − κ)·L_cert`` on sound bounds of the property's margin (module doc)."""

    name: ClassVar[str] = "certified"
    reports: ClassVar[frozenset[str]] = frozenset({"constraint_loss", "satisfied"})

    prop: Property
    domain: Domain
    schedule: CertifiedConfig
    clock: _Clock = field(default_factory=_Clock, compare=False, repr=False)

    @property
    def capturable(self) -> bool:
        return False  # ε and κ change every step, as Python numbers

    def start_epoch(self, epoch: int, batches: int) -> None:
        self.clock.epoch, self.clock.step, self.clock.batches = epoch, 0, max(batches, 1)

    def weights(self) -> tuple[float, float, float]:
        """``(ε, κ, CROWN-IBP weight)`` at the current step."""
        s = self.schedule
        ramp = min(max(self.clock.done - s.warmup_epochs, 0.0) / s.ramp_epochs, 1.0)
        kappa = s.kappa_start + (s.kappa_end - s.kappa_start) * ramp
        crown = 1.0 - ramp if s.bound == "crown-ibp" else 0.0
        return self.prop.eps * ramp, kappa, crown

    def region(self, x: Tensor) -> Region | None:
        eps = self.weights()[0]
        return None if eps <= 0 else replace(self.prop, eps=eps).region(x, self.domain)

    def batch(
        self,
        model: Model,
        x: Tensor,
        y: Tensor,
        region: Region | None,
        generator: torch.Generator,
    ) -> BatchLoss:
        _, kappa, crown = self.weights()
        self.clock.step += 1
        out = model(x)
        ce = F.cross_entropy(out, y, reduction="none")
        correct = out.detach().argmax(dim=1) == y
        if region is None:
            return BatchLoss(ce.mean(), _stats(x, ce, correct=correct))
        if not isinstance(model, nn.Module):
            raise InternalError("the certified regime bounds an nn.Module network")
        prop = replace(self.prop, eps=region.eps)
        refs = References(out, y)  # r = f(x̂); c = the label
        worst = worst_case_outputs(model, prop, region, refs, crown_weight=crown)
        bound = prop.margin(region.centers, worst, region.centers, refs)
        if prop.name == "sr":
            cert = prop.loss(region.centers, worst, region.centers, refs)
        else:
            cert = F.cross_entropy(worst, y, reduction="none")
            if isinstance(prop, SCR):
                cert = (cert + math.log(prop.eta)).clamp(min=0.0)
        loss = kappa * ce.mean() + (1.0 - kappa) * cert.mean()
        stats = _stats(
            x,
            ce,
            constraint=cert,
            correct=correct,
            satisfied=~prop.violated(bound.detach()),
            sampled=x.shape[0],
        )
        return BatchLoss(loss, stats)


@dataclass(frozen=True)
class Lipschitz(Baseline):
    """Cross-entropy; every layer projected after each step so ``∏ ‖W_i‖∞ ≤ L``."""

    name: ClassVar[str] = "lipschitz"

    settings: LipschitzConfig

    @property
    def capturable(self) -> bool:
        return False

    @property
    def logit_scale(self) -> float:
        return self.settings.logit_scale

    def constrain(self, model: nn.Module) -> None:
        project(model, self.settings)


def make_regime(config: TrainConfig) -> Regime:
    """The regime of ``config`` with its hyper-parameters."""
    if config.regime == "certified":
        assert config.prop is not None and config.certified is not None  # TrainConfig checks
        return Certified(config.prop, config.domain, config.certified)
    if config.regime == "lipschitz":
        assert config.lipschitz is not None
        return Lipschitz(config.lipschitz)
    if config.regime == "baseline":
        return Baseline()
    if config.regime == "augment":
        assert config.sampler is not None  # resolved by TrainConfig
        return Augment(config.sampler, config.eps, config.domain, config.extra_points)
    if config.regime == "adversarial":
        assert config.sampler is not None
        return Adversarial(
            config.sampler, config.eps, config.domain, config.alpha, config.beta, config.pgd
        )
    assert config.prop is not None  # TrainConfig requires one for constraint
    return Constraint(config.prop, config.domain, config.alpha, config.beta, config.pgd)
