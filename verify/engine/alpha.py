"""α-CROWN: CROWN bounds of a specification with the ReLU lower-line slopes optimised.

CROWN relaxes an unstable ReLU ``σ(z)``, ``l < 0 < u``, from below by ``α z`` with a fixed
``α ∈ {0, 1}``; every ``α ∈ [0, 1]`` gives a valid line, and the best one depends on the
linear function being bounded. :func:`alpha_spec_lower` keeps one ``α`` per unstable ReLU
(Clip: per each of its two ReLUs), per spec row and per box, starts from CROWN's choice and
takes a few projected Adam steps (``α`` clamped to ``[0, 1]``) maximising the margin-free
lower bound of every row at once (the rows and boxes are independent, so the sum is the
objective). Intermediate-layer bounds stay the ones given (CROWN's).

Soundness: the optimisation only *chooses* slopes (its steps run in float32 unless
:attr:`AlphaConfig.float32` is off: on a CPU a step then costs about half, and the steps of
ReLU splitting on the paper's Fashion-MNIST and GTSRB networks took 12–14 % less time in all
for the same sub-domains). The bound returned is recomputed with the
best slopes found (per row) by :meth:`~robustprop.verify.engine.crown.Crown.backward` *with*
its floating-point safety margin, exactly as CROWN's own bound, and it is the maximum of that
and the interval bound (both sound). Shape: ``spec`` ``(B, K, m)`` → bounds ``(B, K)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from robustprop.verify.engine.crown import Crown, LayerBounds, Slopes, relu_count
from robustprop.verify.engine.network import Affine, Clip, Relu

__all__ = ["AlphaConfig", "Warm", "alpha_spec_lower", "initial_slopes"]


@dataclass(frozen=True)
class AlphaConfig:
    """``steps`` Adam steps of learning rate ``lr`` on the slopes (0 steps: plain CROWN);
    ``float32``: whether the steps run in float32 (see the module doc). They only choose
    slopes and multipliers: the bound returned is computed with them in float64, with its
    safety margin, either way."""

    steps: int = 8
    lr: float = 0.3
    float32: bool = True

    def __post_init__(self) -> None:
        if self.steps < 0 or not self.lr > 0:
            raise ValueError(f"alpha steps must be >= 0 and lr > 0, got {self.steps}, {self.lr}")


#: Slopes (as :func:`initial_slopes`) and multipliers (activation layer → ``(B, K, w)``) to
#: start the optimisation from, or the best ones it met.
Warm = tuple[Slopes, dict[int, Tensor]]


def initial_slopes(crown: Crown, bounds: LayerBounds, rows: int) -> Slopes:
    """CROWN's adaptive slopes (1 where ``u ≥ −l``, else 0), one copy per spec row."""
    slopes: Slopes = {}
    for j, layer in enumerate(crown.network.layers):
        if isinstance(layer, Affine):
            continue
        low, up = bounds.pre(j)
        shifts = _shifts(layer)[: relu_count(layer)]
        parts = []
        for shift in shifts:
            lo, hi = low - shift, up - shift
            start = (hi >= -lo).to(lo.dtype)
            parts.append(start[:, None, :].expand(-1, rows, -1).clone())
        slopes[j] = tuple(parts)
    return slopes


def alpha_spec_lower(
    crown: Crown,
    bounds: LayerBounds,
    spec: Tensor,
    config: AlphaConfig | None = None,
    *,
    signs: Mapping[int, Tensor] | None = None,
    trace: dict[int, Tensor] | None = None,
    start: Warm | None = None,
) -> tuple[Tensor, Tensor, Warm]:
    """``(lower, lam_x, best)``: sound lower bounds of ``spec[b] @ f(x)`` over box ``b``
    (``(B, K)``), with optimised slopes, the input coefficients ``(B, K, n)`` of the linear
    bound that gave them (for branching heuristics), and the best slopes and multipliers met.

    ``signs`` (ReLU splitting): activation layer → ``(B, w)`` split signs (``+1`` active,
    ``−1`` inactive, 0 free), as given to ``layer_bounds`` for ``bounds``; the split
    constraints then enter the bound with optimised multipliers ``β ≥ 0`` (β-CROWN).
    ``trace``: filled as by :meth:`~robustprop.verify.engine.crown.Crown.backward`.
    ``start``: where the optimisation starts instead of CROWN's slopes and zero multipliers
    (layers it lacks start as usual): branch and bound hands a sub-domain's ``best`` to its
    children, so that a few steps go further than from scratch. Only the starting point
    changes; the bound is as sound whatever the slopes.
    """
    cfg = config or AlphaConfig()
    n_layers = len(crown.network.layers)
    rows = spec.shape[1]
    zero = torch.zeros(spec.shape[:2], dtype=torch.float64, device=crown.device)
    slopes = initial_slopes(crown, bounds, rows)
    s = {j: t[:, None, :].to(torch.float64) for j, t in (signs or {}).items()}
    betas = {j: torch.zeros(t.shape[0], rows, t.shape[2], dtype=torch.float64, device=t.device)
             for j, t in s.items()}  # fmt: skip
    if start is not None:
        slopes = {j: start[0].get(j, ts) for j, ts in slopes.items()}
        betas = {j: start[1].get(j, b) for j, b in betas.items()}
    if cfg.steps and (slopes or betas):
        slopes, betas = _optimise(crown, bounds, spec, zero, (slopes, betas, s), cfg)
    with torch.no_grad():
        extra = {j: b.clamp(min=0.0) * s[j] for j, b in betas.items()}
        value, lam_x = crown.backward(
            bounds, n_layers, spec, zero, slopes, margin=True, trace=trace, betas=extra
        )
        interval = crown.spec_lower_interval(bounds, spec)
    return torch.maximum(value, interval), lam_x, (slopes, betas)


_Start = tuple[Slopes, dict[int, Tensor], dict[int, Tensor]]


def _optimise(
    crown: Crown, bounds: LayerBounds, spec: Tensor, zero: Tensor, start: _Start, cfg: AlphaConfig
) -> tuple[Slopes, dict[int, Tensor]]:
    """The best slopes and multipliers (per row) met in ``cfg.steps`` projected Adam steps
    from ``start``."""
    slopes0, betas0, signs = start
    n_layers = len(crown.network.layers)
    dtype = torch.float32 if cfg.float32 else torch.float64
    bounds, spec, zero = bounds.to(dtype), spec.to(dtype), zero.to(dtype)
    signs = {j: t.to(dtype) for j, t in signs.items()}
    slopes0 = {j: tuple(t.to(dtype) for t in ts) for j, ts in slopes0.items()}
    betas0 = {j: t.to(dtype) for j, t in betas0.items()}
    params = {j: tuple(t.clone().requires_grad_(True) for t in ts) for j, ts in slopes0.items()}
    betas = {j: t.clone().requires_grad_(True) for j, t in betas0.items()}
    flat = [t for ts in params.values() for t in ts] + list(betas.values())
    moments = [(torch.zeros_like(t), torch.zeros_like(t)) for t in flat]
    best = {j: tuple(t.clone() for t in ts) for j, ts in slopes0.items()}
    best_b = {j: t.clone() for j, t in betas0.items()}
    best_value: Tensor | None = None
    for step in range(cfg.steps + 1):
        with torch.enable_grad():
            extra = {j: b * signs[j] for j, b in betas.items()}
            value, _ = crown.backward(
                bounds, n_layers, spec, zero, params, margin=False, betas=extra
            )
            # a slope of a clamp its inputs never reach is unused (Crown.backward skips it)
            grads = (
                torch.autograd.grad(value.sum(), flat, allow_unused=True)
                if step < cfg.steps
                else ()
            )
        detached = value.detach()
        if best_value is None:
            best_value = detached.clone()
        else:
            better = detached > best_value
            best_value = torch.where(better, detached, best_value)
            mask = better[:, :, None]
            for j, ts in params.items():
                best[j] = tuple(
                    torch.where(mask, t.detach(), b) for t, b in zip(ts, best[j], strict=True)
                )
            for j, t in betas.items():
                best_b[j] = torch.where(mask, t.detach(), best_b[j])
        with torch.no_grad():
            for k, (t, g, (m1, m2)) in enumerate(zip(flat, grads, moments, strict=False)):
                if g is not None:
                    _adam_ascent(t, g, m1, m2, step + 1, cfg.lr, k >= len(flat) - len(betas))
    double = torch.float64
    return (
        {j: tuple(t.to(double) for t in ts) for j, ts in best.items()},
        {j: t.to(double) for j, t in best_b.items()},
    )


def _adam_ascent(
    t: Tensor, g: Tensor, m1: Tensor, m2: Tensor, step: int, lr: float, beta: bool
) -> None:
    """One Adam step *up* the gradient ``g``, projected on ``[0, 1]`` (slopes) or ``[0, ∞)``
    (multipliers), in place. (Written out: ``torch.optim`` imports torch's compiler on first
    use, seconds of start-up.)"""
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    m1.mul_(beta1).add_(g, alpha=1.0 - beta1)
    m2.mul_(beta2).addcmul_(g, g, value=1.0 - beta2)
    m1_hat = m1 / (1.0 - beta1**step)
    m2_hat = m2 / (1.0 - beta2**step)
    t.add_(lr * m1_hat / (m2_hat.sqrt() + eps))
    t.clamp_(min=0.0) if beta else t.clamp_(0.0, 1.0)


def _shifts(layer: Relu | Clip) -> tuple[float, ...]:
    """The ReLUs' thresholds: ``relu(z)``; Clip's ``relu(z − lo)`` and ``relu(z − hi)``."""
    if isinstance(layer, Relu):
        return (0.0,)
    lo = layer.lo if math.isfinite(layer.lo) else 0.0
    hi = layer.hi if math.isfinite(layer.hi) else 0.0
    return (lo, hi)
