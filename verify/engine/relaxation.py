"""Linear relaxations of the activations on pre-activation ranges ``[l, u]``, for
:mod:`~robustprop.verify.engine.crown`: a ReLU's two lines (upper: the chord; lower: slope 1
if ``u ≥ −l`` else 0, or a given α), Clip's as sums of two ReLUs' lines
(``clip(z) = lo + relu(z − lo) − relu(z − hi)``), the interval image of an activation, the
bounds under split constraints, and whether a Clip is never reached (the identity)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from robustprop.verify.engine.network import Clip, Relu

__all__ = ["activation_interval", "clamp_split", "is_identity", "relaxation", "relu_lines"]


def is_identity(layer: Relu | Clip, low: Tensor, up: Tensor) -> bool:
    """Whether ``layer`` is the identity on ``[low, up]`` in every box: a Clip whose bounds
    the inputs never cross (its lines would be ``h = z``)."""
    return isinstance(layer, Clip) and bool((low >= layer.lo).all() and (up <= layer.hi).all())


def clamp_split(lo: Tensor, hi: Tensor, split: Tensor) -> tuple[Tensor, Tensor]:
    """Bounds under the split constraints ``z ≥ 0`` (``+1``) and ``z ≤ 0`` (``−1``)."""
    return (
        torch.where(split > 0, lo.clamp(min=0.0), lo),
        torch.where(split < 0, hi.clamp(max=0.0), hi),
    )


def activation_interval(
    layer: Relu | Clip, lo: Tensor, hi: Tensor, mag: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    if isinstance(layer, Relu):
        return lo.clamp(min=0.0), hi.clamp(min=0.0), mag
    new_lo = lo.clamp(min=layer.lo, max=layer.hi)
    new_hi = hi.clamp(min=layer.lo, max=layer.hi)
    return new_lo, new_hi, torch.maximum(mag, torch.maximum(new_lo.abs(), new_hi.abs()))


def relu_lines(
    low: Tensor, up: Tensor, alpha: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(a_L, c_L, a_U, c_U)``: ``a_L z + c_L ≤ relu(z) ≤ a_U z + c_U`` on ``[low, up]``;
    ``alpha`` (clamped to ``[0, 1]``) replaces the lower slope of unstable ReLUs."""
    active = low >= 0.0
    unstable = ~(active | (up <= 0.0))  # NaN bounds count as unstable (and stay NaN)
    on = active.to(up.dtype)
    width = torch.where(unstable, up - low, 1.0)
    a_hi = torch.where(unstable, up / width, on)
    c_hi = torch.where(unstable, -low * up / width, 0.0)
    if alpha is None:
        a_lo = torch.where(unstable, (up >= -low).to(up.dtype), on)
    else:
        a_lo = torch.where(unstable, alpha.clamp(0.0, 1.0), on)
    return a_lo, up.new_zeros(()), a_hi, c_hi  # the lower line's intercept: 0, broadcast


def relaxation(
    layer: Relu | Clip, low: Tensor, up: Tensor, alphas: tuple[Tensor, ...] | None = None
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Lower and upper lines of the activation on ``[low, up]`` (element-wise); ``alphas``:
    the lower slopes of its unstable ReLUs (one for Relu; Clip's two, ``lo`` then ``hi``)."""
    if isinstance(layer, Relu):
        return relu_lines(low, up, None if alphas is None else alphas[0])
    # clip(z) = lo + relu(z - lo) - relu(z - hi); a missing bound (±inf) drops its ReLU.
    a_lo = torch.zeros_like(low)
    c_lo = torch.zeros_like(low)
    a_hi = torch.zeros_like(low)
    c_hi = torch.zeros_like(low)
    if np.isfinite(layer.lo):
        al, cl, au, cu = relu_lines(low - layer.lo, up - layer.lo, _pick(alphas, 0))
        a_lo, c_lo = a_lo + al, c_lo + cl - al * layer.lo + layer.lo
        a_hi, c_hi = a_hi + au, c_hi + cu - au * layer.lo + layer.lo
    else:
        a_lo, a_hi = a_lo + 1.0, a_hi + 1.0
    if np.isfinite(layer.hi):
        al, cl, au, cu = relu_lines(low - layer.hi, up - layer.hi, _pick(alphas, 1))
        # minus a ReLU: its upper line bounds from below, its lower line from above
        a_lo, c_lo = a_lo - au, c_lo - cu + au * layer.hi
        a_hi, c_hi = a_hi - al, c_hi - cl + al * layer.hi
    return a_lo, c_lo, a_hi, c_hi


def _pick(alphas: tuple[Tensor, ...] | None, k: int) -> Tensor | None:
    return None if alphas is None else alphas[k]
