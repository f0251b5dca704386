"""Regions ``B(x̂, ε) = { x : ‖x − x̂‖∞ ≤ ε } ∩ [lo, hi]``, batched over centers."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from robustprop.properties.checks import check_positive
from robustprop.properties.domain import Domain, FloatArray
from robustprop.properties.errors import InputError

if TYPE_CHECKING:
    import torch
    from torch import Tensor
else:
    from robustprop.lazy import torch


def ball_box(center: FloatArray, eps: float, domain: Domain) -> tuple[FloatArray, FloatArray]:
    """Float64 box ``[max(x̂ − ε, lo), min(x̂ + ε, hi)]`` of one center of shape ``(n,)``.

    Raises :class:`InputError` if the center lies outside the domain.
    """
    center = np.asarray(center, dtype=np.float64)
    if center.ndim != 1:
        raise InputError(f"a center must be 1-D, got shape {center.shape}")
    if not np.all(np.isfinite(center)):
        raise InputError("a center must be finite, got a NaN or infinite feature")
    lo, hi = domain.bounds(center.size)
    outside = np.flatnonzero((center < lo) | (center > hi))
    if outside.size:
        i = int(outside[0])
        raise InputError(
            f"center feature {i} = {center[i]} lies outside the domain [{lo[i]}, {hi[i]}]"
        )
    return np.maximum(center - eps, lo), np.minimum(center + eps, hi)


@dataclass(frozen=True, eq=False)
class Region:
    """``B(x̂_b, ε) ∩ domain`` for each row ``x̂_b`` of ``centers``.

    The per-row box is computed once in float64 and stored in the centers' dtype rounded
    *inwards*, so every point inside ``lower``/``upper`` is inside the exact float64 box
    that :meth:`box_numpy` (and the solver query) uses.

    Shape:
        centers, lower, upper: ``(B, n)``.
    """

    centers: Tensor
    eps: float
    domain: Domain = field(default_factory=Domain)
    lower: Tensor = field(init=False)
    upper: Tensor = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "eps", check_positive("eps", self.eps))
        c = self.centers
        if c.dim() != 2:
            raise InputError(f"centers must have shape (B, n), got {tuple(c.shape)}")
        if not c.is_floating_point():
            raise InputError(f"centers must be floating point, got {c.dtype}")
        c64 = c.detach().to(torch.float64)
        lo_np, hi_np = self.domain.bounds(c.shape[1])
        lo, hi = torch.from_numpy(lo_np).to(c.device), torch.from_numpy(hi_np).to(c.device)
        if not bool(torch.isfinite(c64).all()):
            raise InputError("centers must be finite, got a NaN or infinite feature")
        outside = (c64 < lo) | (c64 > hi)
        if bool(outside.any()):
            b, i = (int(v) for v in outside.nonzero()[0])
            raise InputError(
                f"center {b} feature {i} = {float(c64[b, i])} lies outside the domain "
                f"[{float(lo[i])}, {float(hi[i])}]"
            )
        # Same float64 operations as ball_box, so both give identical boxes.
        lo64 = torch.maximum(c64 - self.eps, lo)
        hi64 = torch.minimum(c64 + self.eps, hi)
        lower = _round_inwards(lo64, c, up=True)
        upper = _round_inwards(hi64, c, up=False)
        # A float64 interval narrower than the dtype's spacing may hold no point of that dtype;
        # fall back to the nearest representable bounds there.
        empty = lower > upper
        if bool(empty.any()):
            lower = torch.where(empty, lo64.to(c.dtype), lower)
            upper = torch.where(empty, hi64.to(c.dtype), upper)
        object.__setattr__(self, "centers", c.detach())
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "upper", upper)

    @property
    def batch_size(self) -> int:
        return int(self.centers.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.centers.shape[1])

    def project(self, x: Tensor) -> Tensor:
        """Clamp ``x`` into the region (the L∞-ball ∩ box projection).

        Shape:
            x: ``(B, n)`` or ``(B, k, n)``; the output has the same shape.
        """
        lower, upper = self._broadcast(x)
        return torch.minimum(torch.maximum(x, lower), upper)

    def contains(self, x: Tensor, atol: float = 0.0) -> Tensor:
        """Whether each point lies in its row's region, up to ``atol`` per feature.

        Shape:
            x: ``(B, n)`` or ``(B, k, n)``; output: ``(B,)`` or ``(B, k)``, bool.
        """
        lower, upper = self._broadcast(x)
        return ((x >= lower - atol) & (x <= upper + atol)).all(dim=-1)

    def sample(self, k: int, generator: torch.Generator) -> Tensor:
        """``k`` points per row, uniform in the region.

        Shape:
            output: ``(B, k, n)`` in the centers' dtype and device.
        """
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise InputError(f"the number of samples must be an integer >= 0, got {k!r}")
        b, n = self.centers.shape
        u = torch.rand(
            (b, k, n), generator=generator, dtype=self.centers.dtype, device=self.centers.device
        )
        lower, upper = self.lower[:, None, :], self.upper[:, None, :]
        return self.project(lower + (upper - lower) * u)

    def box_numpy(self, i: int) -> tuple[FloatArray, FloatArray]:
        """The exact float64 box of row ``i`` (what the solver query uses)."""
        center = self.centers[i].detach().to("cpu", torch.float64).numpy()
        return ball_box(center, self.eps, self.domain)

    def _broadcast(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if x.dim() == 2 and x.shape == self.centers.shape:
            return self.lower, self.upper
        if x.dim() == 3 and x.shape[0] == self.batch_size and x.shape[2] == self.n_features:
            return self.lower[:, None, :], self.upper[:, None, :]
        raise InputError(
            f"points must have shape (B, n) or (B, k, n) with B={self.batch_size}, "
            f"n={self.n_features}; got {tuple(x.shape)}"
        )


def _round_inwards(exact: Tensor, like: Tensor, *, up: bool) -> Tensor:
    """Cast a float64 bound to ``like``'s dtype, moved inwards where the cast rounded it out."""
    cast = exact.to(like.dtype)
    outside = cast.double() < exact if up else cast.double() > exact
    towards = torch.full_like(cast, math.inf if up else -math.inf)
    return torch.where(outside, torch.nextafter(cast, towards), cast)
