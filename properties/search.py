"""Searchers over a region — uniform sampling, FGSM, PGD, the property attack — on one loop.

Each is a thin use of :func:`robustprop.properties.ascent.ascend_region` (uniform sampling is
its restarts with no step): it takes the model, the objective, the region and a
``torch.Generator``; runs batched over the region's ``B`` centers; keeps every iterate inside
the region (projection after each step); and returns the best iterate seen, not the last. The
model is put in eval mode and restored; its parameters' ``.grad`` are left untouched
(gradients via ``torch.autograd.grad`` with respect to the inputs only). A NaN objective value
never counts as best.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from robustprop.properties.ascent import (
    BatchObjective,
    Best,
    Model,
    PGDConfig,
    RowObjective,
    SearchResult,
    ascend_region,
    eval_mode,
)
from robustprop.properties.base import Property, References
from robustprop.properties.checks import check_positive
from robustprop.properties.domain import Domain
from robustprop.properties.errors import InputError
from robustprop.properties.region import Region

if TYPE_CHECKING:
    import torch
    from torch import Tensor
else:
    from robustprop.lazy import torch

__all__ = [
    "Model",
    "Objective",
    "PGDConfig",
    "SearchResult",
    "attack",
    "fgsm",
    "objective_rows",
    "pgd",
    "uniform_search",
]


class Objective(Protocol):
    """``(x, y = model(x)) -> (B,)`` values to maximise, e.g. a closure over ``Property.margin``."""

    def __call__(self, x: Tensor, y: Tensor, /) -> Tensor: ...


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
    draws = PGDConfig(steps=0, step_size=region.eps, restarts=samples, random_start=True)
    return _search(model, objective, region, generator, draws)


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
    return _search(model, objective, region, generator, config)


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

    The point is violated iff ``prop.violated(result.value)``. With ``targeted``, PGD then
    also climbs each of the property's :meth:`~Property.targets` (one batch of ``t`` rows per
    point, the same config), every iterate scored by the margin: per point the candidate with
    the largest margin, never worse than without. ``generator=None`` uses a generator seeded
    with 0.

    Shape:
        centers: ``(B, n)``; refs: ``(B, m)`` / ``(B,)``; output ``x``: ``(B, n)``,
        ``value``: ``(B,)``.
    """
    config = PGDConfig.strong() if config is None else config
    if generator is None:
        generator = torch.Generator(device=centers.device).manual_seed(0)
    region = prop.region(centers, domain)
    refs = refs.detach()
    centers = region.centers
    best = Best(region.project(centers))
    ascend_region(model, objective_rows(prop, centers, refs, 1), region, 1, config, generator, best)
    if targeted:
        with eval_mode(model), torch.no_grad():
            t = prop.targets(centers, model(centers), centers, refs).shape[1]
        targets = objective_rows(prop, centers, refs, t, first=1)
        ascend_region(model, targets, region, t, config, generator, best)
    return best.result()


def objective_rows(
    prop: Property, centers: Tensor, refs: References, k: int, first: int = 0
) -> RowObjective:
    """The property's attack objectives as rows of the ascent loop, ``k`` per point.

    Row ``r`` (of point ``r // k``) climbs column ``first + r % k`` of
    :meth:`Property.objectives` (column 0: the margin, then the targets); every row is scored by
    the margin, so the loop keeps per point the iterate with the largest margin.

    Shape:
        centers: ``(B, n)``; refs: ``(B, m)`` / ``(B,)``.
    """
    plain = k == 1 and first == 0

    def bind(rows: Tensor) -> BatchObjective:
        point = rows // k
        at, sub = centers[point], References(refs.scores[point], refs.classes[point])
        column = (first + rows % k)[:, None]

        def objective(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
            if plain:
                margin = prop.margin(x, y, at, sub)
                return margin, margin
            values = prop.objectives(x, y, at, sub)
            return values.gather(1, column).squeeze(1), values[:, 0]

        return objective

    return bind


def _search(
    model: Model,
    objective: Objective,
    region: Region,
    generator: torch.Generator,
    config: PGDConfig,
) -> SearchResult:
    """``objective`` climbed and scored alike, one row per center."""

    def climbed_and_scored(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        value = objective(x, y)
        return value, value

    best = Best(region.project(region.centers))
    ascend_region(model, lambda _: climbed_and_scored, region, 1, config, generator, best)
    return best.result()
