"""The attack stage of ``verify run``: PGD with every objective of a point in one batch.

Each point gets ``k`` rows in one batch: row 0 ascends the property's margin (as
:func:`robustprop.properties.attack` does), the others are *targeted*: for CR and SCR one per class
``j``
(``y_j − y_c``), for SR and LR one per output and direction (``±(y_j − r_j)``, minus
``L·‖x − x̂‖∞`` for LR). All rows take projected sign-gradient steps of the configured size
(``PGDConfig``: steps, restarts, center-first, uniform restarts) inside the region, and every
iterate of every row is scored by the property **margin**: per point the best-margin iterate is
returned, so the answer is at least as good as each objective's best iterate.

Points whose margin already signals a *clear* violation (margin above
``CLEAR · (1 + max |r|)``, well above float32 noise: at the center itself float32 outputs can
differ from the float64 references by about 1e-6) leave the batch (checked every
:data:`CHECK_EVERY` steps and between restarts), so violated points cost a few steps and only
the undecided ones run every restart. Candidates are only candidates: the runner replays them
through onnxruntime.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from robustprop.properties import PGDConfig, Property
from robustprop.properties.base import References, class_score, input_distance
from robustprop.properties.cr import CR
from robustprop.properties.domain import Domain
from robustprop.properties.lr import LR
from robustprop.properties.scr import SCR
from robustprop.properties.search import Model, SearchResult

__all__ = ["CHECK_EVERY", "CLEAR", "batched_attack"]

CHECK_EVERY = 10
CLEAR = 1e-4


def batched_attack(
    prop: Property,
    model: Model,
    centers: Tensor,
    refs: References,
    domain: Domain,
    config: PGDConfig,
    generator: torch.Generator,
) -> SearchResult:
    """Best PGD point per center and the property margin there (see the module doc).

    Shape:
        centers: ``(B, n)``; refs: ``(B, m)`` / ``(B,)``; output ``x``: ``(B, n)`` inside the
        region, ``value``: ``(B,)``.
    """
    m = refs.scores.shape[1]
    k = 1 + (m if isinstance(prop, CR | SCR) else 2 * m)
    region = prop.region(centers, domain)
    refs = refs.detach()
    clear = CLEAR * (1.0 + refs.scores.abs().amax(dim=1))
    best_x = region.project(region.centers).clone()
    with torch.no_grad():
        best = _margin(prop, model, best_x, region.centers, refs)
    step = config.absolute_step(region.eps)
    was_training = getattr(model, "training", False)
    if isinstance(model, torch.nn.Module):
        model.eval()
    try:
        for restart in range(config.restarts):
            active = torch.nonzero(~(best > clear)).flatten()
            if active.numel() == 0:
                break
            uniform = config.random_start and not (config.center_first and restart == 0)
            _run(
                prop,
                model,
                region.centers,
                region.lower,
                region.upper,
                refs,
                k,
                active,
                uniform,
                step,
                config.steps,
                generator,
                best_x,
                best,
                clear,
            )
    finally:
        if isinstance(model, torch.nn.Module):
            model.train(was_training)
    return SearchResult(best_x, best)


def _margin(prop: Property, model: Model, x: Tensor, centers: Tensor, refs: References) -> Tensor:
    value = prop.margin(x, model(x), centers, refs)
    return torch.nan_to_num(value, nan=-math.inf)


def _run(
    prop: Property,
    model: Model,
    centers: Tensor,
    lower: Tensor,
    upper: Tensor,
    refs: References,
    k: int,
    points: Tensor,
    uniform: bool,
    step: float,
    steps: int,
    generator: torch.Generator,
    best_x: Tensor,
    best: Tensor,
    clear: Tensor,
) -> None:
    """One restart for ``points``; updates ``best_x``/``best`` in place."""
    rows = points.repeat_interleave(k)
    slots = torch.arange(k, device=centers.device).repeat(points.numel())
    lo, hi, c = lower[rows], upper[rows], centers[rows]
    sub = References(refs.scores[rows], refs.classes[rows])
    if uniform:
        noise = torch.rand(lo.shape, generator=generator, device=lo.device, dtype=lo.dtype)
        x = lo + (hi - lo) * noise
    else:
        x = c.clone()
    for it in range(steps + 1):
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            y = model(x)
            margin = torch.nan_to_num(prop.margin(x, y, c, sub), nan=-math.inf)
            objective = torch.where(slots == 0, margin, _target(prop, x, y, c, sub, slots))
            grad = None
            if it < steps and objective.requires_grad:
                (grad,) = torch.autograd.grad(objective.sum(), x, allow_unused=True)
        _keep_best(x.detach(), margin.detach(), points, k, best_x, best)
        if it == steps:
            return
        x = x.detach()
        if grad is not None:
            x = torch.minimum(torch.maximum(x + step * torch.nan_to_num(grad).sign(), lo), hi)
        if (it + 1) % CHECK_EVERY == 0:
            keep = ~(best[points] > clear[points])
            if not bool(keep.all()):
                if not bool(keep.any()):
                    return
                mask = keep.repeat_interleave(k)
                points = points[keep]
                x, lo, hi, c, slots = x[mask], lo[mask], hi[mask], c[mask], slots[mask]
                sub = References(sub.scores[mask], sub.classes[mask])


def _keep_best(
    x: Tensor, margin: Tensor, points: Tensor, k: int, best_x: Tensor, best: Tensor
) -> None:
    per_point = margin.reshape(points.numel(), k)
    value, arg = per_point.max(dim=1)
    better = value > best[points]
    if bool(better.any()):
        chosen = x.reshape(points.numel(), k, -1)[torch.arange(points.numel()), arg]
        idx = points[better]
        best[idx] = value[better]
        best_x[idx] = chosen[better]


def _target(
    prop: Property, x: Tensor, y: Tensor, c: Tensor, refs: References, slots: Tensor
) -> Tensor:
    """The targeted objective of each row (rows with slot 0 are not used)."""
    target = (slots - 1).clamp(min=0)
    if isinstance(prop, CR | SCR):
        gap = y.gather(1, target[:, None]).squeeze(1) - class_score(y, refs.classes)
        return torch.where(refs.classes == target, torch.full_like(gap, -math.inf), gap)
    j = target // 2
    sign = 1.0 - 2.0 * (target % 2).to(y.dtype)
    moved = (y.gather(1, j[:, None]) - refs.scores.gather(1, j[:, None])).squeeze(1)
    gap = sign * moved
    if isinstance(prop, LR):
        gap = gap - prop.lipschitz * input_distance(x, c)
    return gap
