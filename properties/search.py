"""Searchers over a region: uniform sampling, FGSM and PGD, all maximising a given objective.

Each searcher takes the model, the objective, the region and a ``torch.Generator``; runs batched
over the region's ``B`` centers; keeps every iterate inside the region (projection after each
step); and returns the best iterate seen, not the last. The model is put in eval mode and
restored; its parameters' ``.grad`` are left untouched (gradients via ``torch.autograd.grad``
with respect to the inputs only). A NaN objective value never counts as best.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor

from robustprop.properties.base import Property, References, class_score
from robustprop.properties.checks import check_positive
from robustprop.properties.cr import CR
from robustprop.properties.domain import Domain
from robustprop.properties.errors import InputError
from robustprop.properties.region import Region
from robustprop.properties.scr import SCR

Model = Callable[[Tensor], Tensor]
"""A network: inputs ``(B, n)`` to clamped scores ``(B, m)``."""

Objective = Callable[[Tensor, Tensor], Tensor]
"""``(x, y = model(x)) -> (B,)`` values to maximise, e.g. a closure over ``Property.margin``."""


@dataclass(frozen=True, eq=False)
class SearchResult:
    """The best point found per center and its objective value.

    Shape:
        x: ``(B, n)``, inside the region; value: ``(B,)`` (``−inf`` if nothing beat it).
    """

    x: Tensor
    value: Tensor


@dataclass(frozen=True)
class PGDConfig:
    """Projected gradient ascent with sign steps.

    ``step_size`` is absolute, or a multiple of ε when ``relative_step``. Each of ``restarts``
    runs starts uniformly at random in the region if ``random_start``, else at the center;
    ``center_first`` makes the first run start at the center regardless.
    """

    steps: int
    step_size: float
    restarts: int = 1
    random_start: bool = True
    relative_step: bool = False
    center_first: bool = False

    def __post_init__(self) -> None:
        for name in ("steps", "restarts"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise InputError(f"PGD {name} must be an integer, got {value!r}")
        if self.steps < 0:
            raise InputError(f"PGD steps must be >= 0, got {self.steps}")
        if self.restarts < 1:
            raise InputError(f"PGD restarts must be >= 1, got {self.restarts}")
        object.__setattr__(self, "step_size", check_positive("step_size", self.step_size))

    @classmethod
    def paper(cls) -> PGDConfig:
        """The paper's code: 50 sign steps of 0.01 from a uniform start (but the best iterate)."""
        return cls(steps=50, step_size=0.01, restarts=1, random_start=True)

    @classmethod
    def strong(cls) -> PGDConfig:
        """Default: 5 runs of 100 steps of 2.5·ε/100; the first from the center, then uniform.

        (For SR and LR the center run stays put: their margin has a zero gradient there.)
        """
        return cls(
            steps=100,
            step_size=2.5 / 100,
            restarts=5,
            random_start=True,
            relative_step=True,
            center_first=True,
        )

    def absolute_step(self, eps: float) -> float:
        """The step length for a region of radius ``eps``."""
        return self.step_size * eps if self.relative_step else self.step_size


def uniform_search(
    model: Model,
    objective: Objective,
    region: Region,
    generator: torch.Generator,
    samples: int = 100,
) -> SearchResult:
    """Best of ``samples`` uniform samples per center.

    Shape:
        region: ``B`` centers of ``n`` features; output ``x``: ``(B, n)``, ``value``: ``(B,)``.
    """
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise InputError(f"the number of samples must be an integer >= 1, got {samples!r}")
    best = _Best(region)
    with _eval_mode(model), torch.no_grad():
        for _ in range(samples):
            x = region.sample(1, generator)[:, 0, :]
            best.update(x, _evaluate(model, objective, x, region.batch_size))
    return best.result()


def fgsm(
    model: Model,
    objective: Objective,
    region: Region,
    generator: torch.Generator,
    step_size: float | None = None,
    random_start: bool = False,
) -> SearchResult:
    """One sign step of ``step_size`` (default ε) from the center or a uniform start.

    Returns the better of the start and the step (FGSM of Goodfellow et al., projected).
    SR's and LR's margins have a zero gradient at the center itself (``|y − r|`` at ``y = r``),
    so for them start at random (``random_start=True``).

    Shape:
        region: ``B`` centers of ``n`` features; output ``x``: ``(B, n)``, ``value``: ``(B,)``.
    """
    step = region.eps if step_size is None else check_positive("step_size", step_size)
    config = PGDConfig(steps=1, step_size=step, restarts=1, random_start=random_start)
    return pgd(model, objective, region, generator, config)


def pgd(
    model: Model,
    objective: Objective,
    region: Region,
    generator: torch.Generator,
    config: PGDConfig | None = None,
) -> SearchResult:
    """Projected sign-gradient ascent on ``objective`` (default :meth:`PGDConfig.strong`).

    ``x ← project(x + step · sign(∇ₓ objective))``; every iterate (starts included) is scored.

    Shape:
        region: ``B`` centers of ``n`` features; output ``x``: ``(B, n)``, ``value``: ``(B,)``.
    """
    config = PGDConfig.strong() if config is None else config
    step = config.absolute_step(region.eps)
    best = _Best(region)
    with _eval_mode(model):
        for restart in range(config.restarts):
            uniform = config.random_start and not (config.center_first and restart == 0)
            x = region.sample(1, generator)[:, 0, :] if uniform else region.project(region.centers)
            for _ in range(config.steps):
                value, grad = _value_and_grad(model, objective, x, region.batch_size)
                best.update(x, value)
                x = region.project(x + step * torch.nan_to_num(grad, nan=0.0).sign())
            with torch.no_grad():
                best.update(x, _evaluate(model, objective, x, region.batch_size))
    return best.result()


def attack(
    prop: Property,
    model: Model,
    centers: Tensor,
    refs: References,
    domain: Domain,
    config: PGDConfig | None = None,
    generator: torch.Generator | None = None,
    *,
    targeted: bool = False,
) -> SearchResult:
    """PGD on ``prop.margin`` around ``centers``; ``value`` is the margin at the returned ``x``.

    The point is violated iff ``prop.violated(result.value)``. With ``targeted`` (CR and SCR
    only) PGD also runs once per class ``j`` on ``y_j − y_c`` and keeps, per point, the
    candidate with the largest margin. ``generator=None`` uses a generator seeded with 0.

    Shape:
        centers: ``(B, n)``; refs: ``(B, m)`` / ``(B,)``; output ``x``: ``(B, n)``,
        ``value``: ``(B,)``.
    """
    if targeted and not isinstance(prop, CR | SCR):
        raise InputError(f"targeted attacks are for CR and SCR, got {prop.name!r}")
    if generator is None:
        generator = torch.Generator(device=centers.device).manual_seed(0)
    region = prop.region(centers, domain)
    refs = refs.detach()
    centers = region.centers

    def margin(x: Tensor, y: Tensor) -> Tensor:
        return prop.margin(x, y, centers, refs)

    best = pgd(model, margin, region, generator, config)
    if targeted:
        for j in range(refs.scores.shape[1]):
            found = pgd(model, _towards_class(j, refs), region, generator, config)
            with _eval_mode(model), torch.no_grad():
                value = _evaluate(model, margin, found.x, region.batch_size)
            better = value > best.value
            best = SearchResult(
                torch.where(better[:, None], found.x, best.x),
                torch.where(better, value, best.value),
            )
    return best


def _towards_class(j: int, refs: References) -> Objective:
    """``y_j − y_c`` (``−inf`` where ``c = j``): pushes class ``j`` over the reference class."""

    def objective(x: Tensor, y: Tensor) -> Tensor:
        gap = y[:, j] - class_score(y, refs.classes)
        return torch.where(refs.classes == j, torch.full_like(gap, -math.inf), gap)

    return objective


class _Best:
    """Running per-row maximum of the objective and the point that reached it."""

    def __init__(self, region: Region) -> None:
        self.x = region.project(region.centers).clone()
        self.value = torch.full(
            (region.batch_size,),
            -math.inf,
            dtype=region.centers.dtype,
            device=region.centers.device,
        )

    def update(self, x: Tensor, value: Tensor) -> None:
        better = value.detach().to(self.value.dtype) > self.value
        self.x = torch.where(better[:, None], x.detach(), self.x)
        self.value = torch.where(better, value.detach().to(self.value.dtype), self.value)

    def result(self) -> SearchResult:
        return SearchResult(self.x, self.value)


def _evaluate(model: Model, objective: Objective, x: Tensor, batch: int) -> Tensor:
    value = objective(x, model(x))
    if value.shape != (batch,):
        raise InputError(f"the objective must return shape ({batch},), got {tuple(value.shape)}")
    return value


def _value_and_grad(
    model: Model, objective: Objective, x: Tensor, batch: int
) -> tuple[Tensor, Tensor]:
    """Objective at ``x`` and its gradient in ``x`` (zeros where it does not depend on ``x``)."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        value = _evaluate(model, objective, x, batch)
        if not value.requires_grad:
            return value.detach(), torch.zeros_like(x)
        (grad,) = torch.autograd.grad(value.sum(), x, allow_unused=True)
    return value.detach(), torch.zeros_like(x) if grad is None else grad


@contextmanager
def _eval_mode(model: Model) -> Iterator[None]:
    """Put a ``torch.nn.Module`` (and every submodule) in eval mode; restore each one's mode."""
    if not isinstance(model, torch.nn.Module):
        yield
        return
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training
