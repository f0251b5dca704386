"""The one projected sign-gradient ascent loop; every search and attack in robustprop runs it.

:func:`ascend` moves a batch of *rows* by sign steps inside their boxes, scores every iterate
(the start and the last included) and offers it to a :class:`Best`, which keeps per point the
best-scoring iterate over the point's rows. A point owns ``k`` consecutive rows (row ``r`` is
row ``r % k`` of point ``r // k``), so one batch can climb several objectives per point — the
margin and the targeted objectives of :meth:`Property.objectives` — and still answer per point.
:func:`ascend_region` runs :func:`ascend` from the starts a :class:`PGDConfig` asks for (the
center or uniform in a :class:`Region`).

Its callers only choose the objective, the starts and when a point is done: the uniform
searcher, FGSM, PGD and the property attack (:mod:`robustprop.properties.search`), the
``verify run`` attack stage (``verify/engine/attack.py``) and the VNN-LIB falsifier
(``verify/engine/falsify.py``).

The loop puts the model in eval mode and restores every submodule's mode; it leaves parameter
``.grad`` alone (input gradients by ``torch.autograd.grad``); it works under
``torch.no_grad()``; a NaN score never counts as best and a NaN gradient entry is no step. Unless
points may leave the batch (``stop``), it never waits on the device, so a training step that
calls it can be captured in a CUDA graph.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from robustprop.properties.checks import check_positive
from robustprop.properties.errors import InputError
from robustprop.properties.region import Region

if TYPE_CHECKING:
    import torch
    from torch import Tensor
else:
    from robustprop.lazy import torch

__all__ = [
    "BatchObjective",
    "Best",
    "Model",
    "PGDConfig",
    "RowObjective",
    "SearchResult",
    "Stop",
    "ascend",
    "ascend_region",
    "eval_mode",
]


class Model(Protocol):
    """A network: inputs ``(B, n)`` to clamped scores ``(B, m)``."""

    def __call__(self, x: Tensor, /) -> Tensor: ...


class BatchObjective(Protocol):
    """``(x, y = model(x)) -> (ascent, score)``: rows climb ``ascent``; ``score`` picks the best.

    Shape:
        x: ``(R, n)``; y: ``(R, m)``; ascent, score: ``(R,)``.
    """

    def __call__(self, x: Tensor, y: Tensor, /) -> tuple[Tensor, Tensor]: ...


class RowObjective(Protocol):
    """``rows -> objective``: the :class:`BatchObjective` of these rows, in this order.

    ``rows`` are indices among all ``P·k`` rows (row ``r`` is row ``r % k`` of point
    ``r // k``). The loop binds the objective once per run and again whenever rows leave the
    batch, so per-row data (centers, references, which objective) is gathered then, not at
    every step.

    Shape:
        rows: ``(R,)``, int64.
    """

    def __call__(self, rows: Tensor, /) -> BatchObjective: ...


class Stop(Protocol):
    """``points -> done``: which of these points (indices, ``(P,)``) need no more search."""

    def __call__(self, points: Tensor, /) -> Tensor: ...


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


class Best:
    """Per point, the best-scoring iterate offered so far over its rows, and that score.

    A score replaces the kept one only if strictly higher; NaN counts as ``−inf``. Among a
    point's rows the first best-scoring one is taken.

    Shape:
        x: ``(P, n)``; value: ``(P,)``, in ``x``'s dtype (``−inf`` until something is offered).
    """

    def __init__(self, x: Tensor, value: Tensor | None = None) -> None:
        self.x = x.detach().clone()
        if value is None:
            self.value = torch.full((x.shape[0],), -math.inf, dtype=x.dtype, device=x.device)
        else:
            self.value = _finite_or_below(value, x.dtype)

    def update(self, x: Tensor, score: Tensor, points: Tensor | None = None) -> None:
        """Offer iterates: ``k`` consecutive rows of ``x`` per point of ``points``.

        ``points=None`` means every point, in order (then nothing waits on the device).

        Shape:
            x: ``(P·k, n)``; score: ``(P·k,)``; points: ``(P,)`` indices.
        """
        p = self.value.shape[0] if points is None else points.shape[0]
        per_point = score.detach().to(self.value.dtype).reshape(p, -1)
        chosen = x.detach()
        if per_point.shape[1] == 1:
            value = per_point[:, 0]  # NaN > anything is False: a NaN never counts
        else:
            value, arg = _finite_or_below(per_point, per_point.dtype).max(dim=1)
            chosen = chosen.reshape(p, per_point.shape[1], -1)
            chosen = chosen.gather(1, arg[:, None, None].expand(p, 1, chosen.shape[2]))[:, 0]
        if points is None:
            better = value > self.value
            self.x = chosen.where(better[:, None], self.x)
            self.value = value.where(better, self.value)
            return
        better = value > self.value[points]
        improved = points[better]
        self.value[improved] = value[better]
        self.x[improved] = chosen[better]

    def result(self) -> SearchResult:
        """The kept iterates and scores."""
        return SearchResult(self.x, self.value)


def ascend(
    model: Model,
    objective: RowObjective,
    best: Best,
    x: Tensor,
    lower: Tensor,
    upper: Tensor,
    step: float | Tensor,
    steps: int,
    *,
    points: Tensor | None = None,
    stop: Stop | None = None,
    check_every: int = 1,
    halve_at: Collection[int] = (),
) -> None:
    """The loop: ``steps`` projected sign steps from ``x``, every iterate offered to ``best``.

    Per row ``x ← min(max(x + step · sign(∇ₓ ascent), lower), upper)``; the iterates
    ``x_0 … x_steps`` are scored (``steps + 1`` model calls, the last without gradient). The
    rows belong ``k`` each to ``points`` (``None``: all of ``best``'s points, in order), point
    by point. ``step`` halves after iterate ``i`` for each ``i`` in ``halve_at``. With
    ``stop``, every ``check_every`` iterates the points it names leave the batch; when none is
    left the loop ends.

    Shape:
        x, lower, upper: ``(P·k, n)``; step: a number or ``(n,)``; points: ``(P,)``.
    """
    if isinstance(check_every, bool) or not isinstance(check_every, int) or check_every < 1:
        raise InputError(f"check_every must be an integer >= 1, got {check_every!r}")
    p = best.value.shape[0] if points is None else points.shape[0]
    if p == 0:
        return
    k = x.shape[0] // p
    if x.shape[0] != p * k or k == 0:
        raise InputError(f"{x.shape[0]} rows cannot be split among {p} points")
    rows = torch.arange(p * k, device=x.device) if points is None else _rows(points, k)
    climb = objective(rows)
    no_grad, enable_grad, gradient = torch.no_grad, torch.enable_grad, torch.autograd.grad
    with eval_mode(model):
        for it in range(steps + 1):
            last = it == steps
            with no_grad() if last else enable_grad():
                x = x.detach().requires_grad_(not last)
                ascent, score = climb(x, model(x))
                _check_shapes(ascent, score, x.shape[0])
                grad = None
                if not last and ascent.requires_grad:
                    (grad,) = gradient(ascent.sum(), x, allow_unused=True)
            best.update(x, score, points)
            if last:
                return
            if it in halve_at:
                step = step / 2
            x = x.detach()
            if grad is not None:
                moved = x + step * grad.nan_to_num(nan=0.0).sign()
                x = moved.maximum(lower).minimum(upper)
            if stop is not None and (it + 1) % check_every == 0:
                active = torch.arange(p, device=x.device) if points is None else points
                keep = ~stop(active)
                if not bool(keep.all()):
                    if not bool(keep.any()):
                        return
                    kept = keep.repeat_interleave(k)
                    points, rows = active[keep], rows[kept]
                    x, lower, upper = x[kept], lower[kept], upper[kept]
                    climb = objective(rows)


def ascend_region(
    model: Model,
    objective: RowObjective,
    region: Region,
    k: int,
    config: PGDConfig,
    generator: torch.Generator,
    best: Best,
    *,
    stop: Stop | None = None,
    check_every: int = 1,
) -> None:
    """``config.restarts`` runs of :func:`ascend` with ``k`` rows per center of ``region``.

    A run starts every row at its center (every run without ``random_start``, the first with
    ``center_first``) or uniformly in the region (one ``torch.rand`` draw of shape
    ``(rows, n)`` from ``generator``, projected). With ``stop``, the points it names before a
    run sit that run out; when it names them all, no more runs.
    """
    step = config.absolute_step(region.eps)
    b = region.batch_size
    device = region.centers.device
    for restart in range(config.restarts):
        points: Tensor | None = None
        if stop is not None:
            points = torch.nonzero(~stop(torch.arange(b, device=device))).flatten()
            if points.numel() == 0:
                return
            if points.numel() == b:
                points = None  # everyone: the cheaper bookkeeping of ascend
        if points is None and k == 1:
            lower, upper, centers = region.lower, region.upper, region.centers
        else:
            owners = torch.arange(b, device=device) if points is None else points
            owner = owners.repeat_interleave(k)
            lower, upper, centers = region.lower[owner], region.upper[owner], region.centers[owner]
        if config.random_start and not (config.center_first and restart == 0):
            u = torch.rand(lower.shape, generator=generator, dtype=lower.dtype, device=device)
            start = lower + (upper - lower) * u
        else:
            start = centers
        x = torch.minimum(torch.maximum(start, lower), upper)
        ascend(
            model,
            objective,
            best,
            x,
            lower,
            upper,
            step,
            config.steps,
            points=points,
            stop=stop,
            check_every=check_every,
        )


@contextmanager
def eval_mode(model: Model) -> Iterator[None]:
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


def _rows(points: Tensor, k: int) -> Tensor:
    """The row indices of ``points``, ``k`` consecutive ones each."""
    slots = torch.arange(k, device=points.device).repeat(points.shape[0])
    return points.repeat_interleave(k) * k + slots


def _finite_or_below(score: Tensor, dtype: torch.dtype) -> Tensor:
    """``score`` detached, in ``dtype``, with NaN as ``−inf`` (so it never counts as best)."""
    return score.detach().to(dtype).nan_to_num(nan=-math.inf, posinf=math.inf, neginf=-math.inf)


def _check_shapes(ascent: Tensor, score: Tensor, rows: int) -> None:
    for value in (ascent, score):
        if value.shape != (rows,):
            raise InputError(f"the objective must return shape ({rows},), got {tuple(value.shape)}")
