"""Sound bounds of a piecewise-linear :class:`~robustprop.verify.engine.network.Network` over input
boxes.

Two methods, both batched over ``B`` input boxes (one per point, or per LR shell) and run in
torch float64 on any device:

- **interval** arithmetic (:meth:`Crown.interval`), layer by layer;
- **CROWN / DeepPoly** back-substitution (:meth:`Crown.layer_bounds`, :meth:`Crown.spec_lower`):
  a linear function ``Λ·h + β`` of a layer's output is pushed back through every layer to the
  input, relaxing each ReLU ``σ(z)`` on its pre-activation range ``[l, u]`` by two lines
  ``a_L z + c_L ≤ σ(z) ≤ a_U z + c_U`` (upper: the chord; lower: slope 1 if ``u ≥ −l`` else 0,
  CROWN's adaptive choice) and taking, per coefficient, the line that keeps the bound valid for
  its sign. Clip is ``lo + relu(z − lo) − relu(z − hi)``: its two lines are sums of the two
  ReLUs' lines. Pre-activation ranges come from the same procedure applied to each earlier
  layer (and are intersected with interval bounds). A specification matrix ``C`` (``K`` rows
  over the ``m`` outputs, per box) is bounded directly — ``min C_k·f(x)`` — so a property's
  atoms are bounded as linear functions, not through output intervals.

Floating-point soundness: every bound is moved outwards by a relative safety margin
``_REL = 1e-9`` of a magnitude bound ``M`` of the quantities summed, plus ``_ABS = 1e-12``.
``M`` is computed alongside: the same back-substitution on absolute values (``|Λ|``, ``|W|``,
the largest slope and intercept of each relaxation, ``max(|lo|, |hi|)`` of the box). The
rounding error of the float64 computation is at most about ``N·2⁻⁵³·M`` with ``N`` the number
of summed terms along the back-substitution (< 10⁵ for networks this module is meant for),
i.e. below ``1e-11·M``; the margin exceeds it by two orders of magnitude. (The bounds are
also valid for the exact real-valued network.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

from robustprop.verify.engine.network import Affine, Clip, Network, Relu

__all__ = ["Crown", "LayerBounds"]

_REL = 1e-9
_ABS = 1e-12

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class LayerBounds:
    """Bounds of every layer's output, ``lower[i]``/``upper[i]`` of shape ``(B, width_i)``,
    for ``B`` input boxes ``box_lower``/``box_upper`` of shape ``(B, n)``."""

    box_lower: Tensor
    box_upper: Tensor
    lower: tuple[Tensor, ...]
    upper: tuple[Tensor, ...]
    magnitude: tuple[Tensor, ...]  # forward bound on |h| (for the interval margins)

    def pre(self, i: int) -> tuple[Tensor, Tensor]:
        """Bounds of the input of layer ``i`` (the box for ``i = 0``)."""
        if i == 0:
            return self.box_lower, self.box_upper
        return self.lower[i - 1], self.upper[i - 1]

    def pre_magnitude(self, i: int) -> Tensor:
        if i == 0:
            return torch.maximum(self.box_lower.abs(), self.box_upper.abs())
        return self.magnitude[i - 1]

    def numpy(self, row: int) -> list[tuple[FloatArray, FloatArray]]:
        """The bounds of box ``row`` as numpy arrays, one ``(lower, upper)`` per layer."""
        return [
            (lo[row].cpu().numpy().copy(), hi[row].cpu().numpy().copy())
            for lo, hi in zip(self.lower, self.upper, strict=True)
        ]


class Crown:
    """Bound propagation for one network (weights copied to ``device`` once, float64)."""

    def __init__(self, network: Network, device: str | torch.device = "cpu") -> None:
        self.network = network
        self.device = torch.device(device)
        self._W: list[Tensor | None] = []
        self._b: list[Tensor | None] = []
        for layer in network.layers:
            if isinstance(layer, Affine):
                self._W.append(self.tensor(layer.W))
                self._b.append(self.tensor(layer.b))
            else:
                self._W.append(None)
                self._b.append(None)

    # -- public API ------------------------------------------------------------------------

    def tensor(self, value: npt.ArrayLike) -> Tensor:
        """A float64 copy on this device (numpy arrays may be read-only)."""
        return torch.tensor(np.array(value, dtype=np.float64), device=self.device)

    def interval(self, lower: Tensor, upper: Tensor) -> LayerBounds:
        """Interval bounds of every layer for the boxes ``[lower, upper]`` (``(B, n)``)."""
        los: list[Tensor] = []
        his: list[Tensor] = []
        mags: list[Tensor] = []
        lo, hi = lower, upper
        mag = torch.maximum(lower.abs(), upper.abs())
        for i, layer in enumerate(self.network.layers):
            if isinstance(layer, Affine):
                lo, hi, mag = self._affine_interval(i, lo, hi, mag)
            else:
                lo, hi, mag = _activation_interval(layer, lo, hi, mag)
            los.append(lo)
            his.append(hi)
            mags.append(mag)
        return LayerBounds(lower, upper, tuple(los), tuple(his), tuple(mags))

    def layer_bounds(self, lower: Tensor, upper: Tensor) -> LayerBounds:
        """CROWN bounds of every layer's output (intersected with interval bounds)."""
        los: list[Tensor] = []
        his: list[Tensor] = []
        mags: list[Tensor] = []
        lo, hi = lower, upper
        mag = torch.maximum(lower.abs(), upper.abs())
        for i, layer in enumerate(self.network.layers):
            if isinstance(layer, Affine):
                ilo, ihi, mag = self._affine_interval(i, lo, hi, mag)
                if _has_nonlinearity_before(self.network, i):
                    partial = LayerBounds(lower, upper, tuple(los), tuple(his), tuple(mags))
                    W, b = self._W[i], self._b[i]
                    assert W is not None and b is not None
                    rows = torch.cat([W, -W], dim=0).expand(lower.shape[0], -1, -1)
                    bias = torch.cat([b, -b]).expand(lower.shape[0], -1)
                    lin = self._backward(partial, i, rows, bias)
                    width = W.shape[0]
                    ilo = torch.maximum(ilo, lin[:, :width])
                    ihi = torch.minimum(ihi, -lin[:, width:])
                    ihi = torch.maximum(ihi, ilo)  # equal up to the margins; keep lo <= hi
                lo, hi = ilo, ihi
            else:
                lo, hi, mag = _activation_interval(layer, lo, hi, mag)
            los.append(lo)
            his.append(hi)
            mags.append(mag)
        return LayerBounds(lower, upper, tuple(los), tuple(his), tuple(mags))

    def spec_lower(self, bounds: LayerBounds, spec: Tensor) -> Tensor:
        """Sound lower bounds of ``spec[b] @ f(x)`` over box ``b``: ``(B, K, m) -> (B, K)``.

        ``bounds`` must come from :meth:`layer_bounds` (or :meth:`interval`) on the same boxes.
        """
        n_layers = len(self.network.layers)
        zero = torch.zeros(spec.shape[:2], dtype=torch.float64, device=self.device)
        crown = self._backward(bounds, n_layers, spec, zero)
        mag = bounds.magnitude[-1] if n_layers else bounds.pre_magnitude(0)
        lo_y, hi_y = bounds.pre(n_layers)
        pos, neg = spec.clamp(min=0.0), spec.clamp(max=0.0)
        interval = (pos * lo_y[:, None, :]).sum(-1) + (neg * hi_y[:, None, :]).sum(-1)
        slack = _REL * (spec.abs() * mag[:, None, :]).sum(-1) + _ABS
        return torch.maximum(crown, interval - slack)

    # -- internals -------------------------------------------------------------------------

    def _affine_interval(
        self, i: int, lo: Tensor, hi: Tensor, mag: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        W, b = self._W[i], self._b[i]
        assert W is not None and b is not None
        mid, rad = (lo + hi) / 2.0, (hi - lo) / 2.0
        center = mid @ W.T + b
        radius = rad @ W.abs().T
        new_mag = mag @ W.abs().T + b.abs()
        slack = _REL * new_mag + _ABS
        return center - radius - slack, center + radius + slack, new_mag

    def _backward(self, bounds: LayerBounds, upto: int, lam: Tensor, bias: Tensor) -> Tensor:
        """Lower bound of ``lam · h_upto + bias`` (``h_upto`` = input of layer ``upto``) over
        each box, by back-substitution through layers ``upto − 1 … 0``; ``lam``: (B, K, w)."""
        mag_lam = lam.abs()
        mag_bias = bias.abs()
        for j in range(upto - 1, -1, -1):
            layer = self.network.layers[j]
            if isinstance(layer, Affine):
                W, b = self._W[j], self._b[j]
                assert W is not None and b is not None
                bias = bias + lam @ b
                mag_bias = mag_bias + mag_lam @ b.abs()
                lam = lam @ W
                mag_lam = mag_lam @ W.abs()
                continue
            low, up = bounds.pre(j)
            a_lo, c_lo, a_hi, c_hi = _relaxation(layer, low, up)
            pos, neg = lam.clamp(min=0.0), lam.clamp(max=0.0)
            bias = bias + (pos * c_lo[:, None, :]).sum(-1) + (neg * c_hi[:, None, :]).sum(-1)
            lam = pos * a_lo[:, None, :] + neg * a_hi[:, None, :]
            intercept = torch.maximum(c_lo.abs(), c_hi.abs())
            slope = torch.maximum(a_lo.abs(), a_hi.abs())
            mag_bias = mag_bias + (mag_lam * intercept[:, None, :]).sum(-1)
            mag_lam = mag_lam * slope[:, None, :]
        lo, hi = bounds.box_lower, bounds.box_upper
        pos, neg = lam.clamp(min=0.0), lam.clamp(max=0.0)
        value = bias + (pos * lo[:, None, :]).sum(-1) + (neg * hi[:, None, :]).sum(-1)
        x_mag = torch.maximum(lo.abs(), hi.abs())
        magnitude = mag_bias + (mag_lam * x_mag[:, None, :]).sum(-1)
        return value - _REL * magnitude - _ABS


def _has_nonlinearity_before(network: Network, i: int) -> bool:
    return any(not isinstance(layer, Affine) for layer in network.layers[:i])


def _activation_interval(
    layer: Relu | Clip, lo: Tensor, hi: Tensor, mag: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    if isinstance(layer, Relu):
        return lo.clamp(min=0.0), hi.clamp(min=0.0), mag
    new_lo = lo.clamp(min=layer.lo, max=layer.hi)
    new_hi = hi.clamp(min=layer.lo, max=layer.hi)
    return new_lo, new_hi, torch.maximum(mag, torch.maximum(new_lo.abs(), new_hi.abs()))


def _relu_lines(low: Tensor, up: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(a_L, c_L, a_U, c_U)``: ``a_L z + c_L ≤ relu(z) ≤ a_U z + c_U`` on ``[low, up]``."""
    active = low >= 0.0
    inactive = up <= 0.0
    unstable = ~(active | inactive)
    width = torch.where(unstable, up - low, torch.ones_like(up))
    a_hi = torch.where(unstable, up / width, active.to(up.dtype))
    c_hi = torch.where(unstable, -low * up / width, torch.zeros_like(up))
    a_lo = torch.where(unstable, (up >= -low).to(up.dtype), active.to(up.dtype))
    return a_lo, torch.zeros_like(up), a_hi, c_hi


def _relaxation(
    layer: Relu | Clip, low: Tensor, up: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Lower and upper lines of the activation on ``[low, up]`` (element-wise)."""
    if isinstance(layer, Relu):
        return _relu_lines(low, up)
    # clip(z) = lo + relu(z - lo) - relu(z - hi); a missing bound (±inf) drops its ReLU.
    a_lo = torch.zeros_like(low)
    c_lo = torch.zeros_like(low)
    a_hi = torch.zeros_like(low)
    c_hi = torch.zeros_like(low)
    if np.isfinite(layer.lo):
        al, cl, au, cu = _relu_lines(low - layer.lo, up - layer.lo)
        a_lo, c_lo = a_lo + al, c_lo + cl - al * layer.lo + layer.lo
        a_hi, c_hi = a_hi + au, c_hi + cu - au * layer.lo + layer.lo
    else:
        a_lo, a_hi = a_lo + 1.0, a_hi + 1.0
    if np.isfinite(layer.hi):
        al, cl, au, cu = _relu_lines(low - layer.hi, up - layer.hi)
        # minus a ReLU: its upper line bounds from below, its lower line from above
        a_lo, c_lo = a_lo - au, c_lo - cu + au * layer.hi
        a_hi, c_hi = a_hi - al, c_hi - cl + al * layer.hi
    return a_lo, c_lo, a_hi, c_hi
