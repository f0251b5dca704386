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

Floating-point soundness: every bound is computed in float64 (a float32 back-substitution,
which α-CROWN's optimisation steps use to choose slopes and strong branching to choose a split
— :meth:`Crown.layer_bounds` with ``sound=False`` —, gives no bound) and moved outwards
by a relative safety margin ``_REL = 1e-9`` of a magnitude bound ``M`` of the quantities
summed, plus ``_ABS = 1e-12``. ``M`` is the same back-substitution on absolute values
(``|Λ|``, ``|W|``, the largest slope and intercept of each relaxation over the rows,
``max(|lo|, |hi|)`` of the box); being linear in ``|Λ|`` with operators shared by the rows, it
is computed forwards, one vector per box, and dotted with ``|Λ|`` at the end. The rounding
error of the float64 computation is at most about ``N·2⁻⁵³·M`` with ``N`` the number of
summed terms along the back-substitution (< 10⁵ for networks this module is meant for), i.e.
below ``1e-11·M``; the margin exceeds it by two orders of magnitude. (The bounds are also
valid for the exact real-valued network.) ``M`` is computed in float32: a sum of ``N``
non-negative float32 terms, in any order, is at least ``(1 − N·2⁻²⁴)`` times the exact one
(< 1 % low for ``N < 10⁵``; float32 overflow gives ``inf``, an infinite margin), which the
hundredfold headroom absorbs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

from robustprop.verify.engine.network import Affine, Clip, Network, Relu
from robustprop.verify.engine.relaxation import (
    activation_interval,
    clamp_split,
    is_identity,
    relaxation,
)

__all__ = ["Crown", "LayerBounds", "Slopes", "relu_count"]

_REL = 1e-9
_ABS = 1e-12

FloatArray = npt.NDArray[np.float64]

#: α-CROWN's lower-line slopes: activation layer index → one ``(B, K, w)`` tensor per ReLU.
Slopes = dict[int, tuple[Tensor, ...]]


def relu_count(layer: Relu | Clip) -> int:
    """How many slope tensors :data:`Slopes` holds for one activation (Clip: two, ``lo`` and
    ``hi``; the one of an infinite bound is unused)."""
    return 1 if isinstance(layer, Relu) else 2


@dataclass(frozen=True, eq=False)
class LayerBounds:
    """Bounds of every layer's output, ``lower[i]``/``upper[i]`` of shape ``(B, width_i)``,
    for ``B`` input boxes ``box_lower``/``box_upper`` of shape ``(B, n)``."""

    box_lower: Tensor
    box_upper: Tensor
    lower: tuple[Tensor, ...]
    upper: tuple[Tensor, ...]
    magnitude: tuple[Tensor, ...]  # forward bound on |h| (for the interval margins)

    def to(self, dtype: torch.dtype) -> LayerBounds:
        """These bounds in ``dtype`` (float32: for optimising slopes, never for a bound)."""
        return LayerBounds(
            _shared(self.box_lower).to(dtype).expand_as(self.box_lower),
            _shared(self.box_upper).to(dtype).expand_as(self.box_upper),
            tuple(t.to(dtype) for t in self.lower),
            tuple(t.to(dtype) for t in self.upper),
            self.magnitude,
        )

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
        # back-substitution's operands: [W | b] (one product gives λ·W and λ·b) and
        # [|W| | |b|] in float32 for the magnitude
        self._Wb: list[Tensor] = []
        self._Wb32: list[Tensor] = []  # for float32 back-substitution (α's optimisation)
        self._abs32: list[Tensor] = []
        for layer in network.layers:
            if isinstance(layer, Affine):
                W, b = self.tensor(layer.W), self.tensor(layer.b)
                self._W.append(W)
                self._b.append(b)
                self._Wb.append(torch.cat([W, b[:, None]], dim=1))
                self._abs32.append(self._Wb[-1].abs().float())
                self._Wb32.append(self._Wb[-1].float())
            else:
                self._W.append(None)
                self._b.append(None)
                self._Wb.append(torch.empty(0))
                self._abs32.append(torch.empty(0))
                self._Wb32.append(torch.empty(0))

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
                lo, hi, mag = activation_interval(layer, lo, hi, mag)
            los.append(lo)
            his.append(hi)
            mags.append(mag)
        return LayerBounds(lower, upper, tuple(los), tuple(his), tuple(mags))

    def layer_bounds(
        self,
        lower: Tensor,
        upper: Tensor,
        splits: Mapping[int, Tensor] | None = None,
        prior: tuple[Tensor, Tensor] | None = None,
        *,
        sound: bool = True,
    ) -> LayerBounds:
        """CROWN bounds of every layer's output (intersected with interval bounds).

        ``splits`` (branch and bound on ReLUs): affine layer index → ``(B, width)`` of
        ``+1`` (the ReLU after it is active: ``z ≥ 0``), ``−1`` (inactive: ``z ≤ 0``) or 0.
        The bounds are then over the inputs of the box that satisfy those constraints: each
        split neuron's bounds are clamped at 0 before later layers use them (a box where a
        clamped ``lower > upper`` is empty: no input satisfies its splits).

        ``prior``: sound bounds of every affine layer's output over each box, side by side
        (:meth:`affine_bounds`, ``(B, Σ widths)``), e.g. those of a larger box that contains
        it (input splitting hands a parent's to its children); each layer's bounds are
        intersected with them before they choose the relaxations and the neurons that CROWN
        tightens (CROWN over a child box is looser than over its parent for some neurons).

        ``sound=False``: an *estimate* for heuristics, never a bound — computed in the dtype
        of ``lower`` (float32 allowed: about 2.5 times faster on a CPU) and without the
        floating-point safety margins of the back-substitutions."""
        if sound and lower.dtype != torch.float64:
            raise ValueError(f"a sound bound is computed in float64, not {lower.dtype}")
        los: list[Tensor] = []
        his: list[Tensor] = []
        mags: list[Tensor] = []
        lo, hi = lower, upper
        mag = torch.maximum(lower.abs(), upper.abs())
        at = 0  # where affine layer i's outputs start in ``prior``
        for i, layer in enumerate(self.network.layers):
            if isinstance(layer, Affine):
                ilo, ihi, mag = self._affine_interval(i, lo, hi, mag)
                if prior is not None:
                    ilo = torch.maximum(ilo, prior[0][:, at : at + layer.out_size])
                    ihi = torch.minimum(ihi, prior[1][:, at : at + layer.out_size])
                    ihi = torch.maximum(ihi, ilo)  # both enclose the outputs: never apart
                    at += layer.out_size
                split = None if splits is None else splits.get(i)
                if split is not None:
                    ilo, ihi = clamp_split(ilo, ihi, split)
                if _has_nonlinearity_before(self.network, i):
                    partial = LayerBounds(lower, upper, tuple(los), tuple(his), tuple(mags))
                    W, b = self._W[i], self._b[i]
                    assert W is not None and b is not None
                    idx = self._undecided(i, ilo, ihi)
                    if idx.numel():
                        W, b = W[idx].to(lower.dtype), b[idx].to(lower.dtype)
                        rows = torch.cat([W, -W], dim=0).expand(lower.shape[0], -1, -1)
                        bias = torch.cat([b, -b]).expand(lower.shape[0], -1)
                        lin = self.backward(partial, i, rows, bias, margin=sound, paired=True)[0]
                        width = W.shape[0]
                        ilo, ihi = ilo.clone(), ihi.clone()
                        ilo[:, idx] = torch.maximum(ilo[:, idx], lin[:, :width])
                        new_hi = torch.minimum(ihi[:, idx], -lin[:, width:])
                        ihi[:, idx] = torch.maximum(new_hi, ilo[:, idx])  # keep lo <= hi
                        if split is not None:
                            ilo, ihi = clamp_split(ilo, ihi, split)
                lo, hi = ilo, ihi
            else:
                lo, hi, mag = activation_interval(layer, lo, hi, mag)
            los.append(lo)
            his.append(hi)
            mags.append(mag)
        return LayerBounds(lower, upper, tuple(los), tuple(his), tuple(mags))

    def affine_bounds(self, bounds: LayerBounds) -> tuple[Tensor, Tensor]:
        """The bounds of every affine layer's output side by side, ``(B, Σ widths)`` each:
        the ``prior`` of :meth:`layer_bounds` for boxes inside these."""
        idx = [i for i, layer in enumerate(self.network.layers) if isinstance(layer, Affine)]
        return (
            torch.cat([bounds.lower[i] for i in idx], dim=1),
            torch.cat([bounds.upper[i] for i in idx], dim=1),
        )

    def _undecided(self, i: int, lo: Tensor, hi: Tensor) -> Tensor:
        """Indices of the neurons of affine layer ``i`` worth CROWN's back-substitution: all
        when no activation follows (the output layer), else those whose activation is not
        linear over their interval bounds in some box (for the others, tighter bounds change
        no relaxation)."""
        layers = self.network.layers
        after = layers[i + 1] if i + 1 < len(layers) else None
        if isinstance(after, Relu):
            mask = (lo < 0.0) & (hi > 0.0)
        elif isinstance(after, Clip):
            mask = ((lo < after.lo) & (hi > after.lo)) | ((lo < after.hi) & (hi > after.hi))
        else:
            return torch.arange(lo.shape[1], device=lo.device)
        return torch.nonzero(mask.any(dim=0)).reshape(-1)

    def spec_lower(self, bounds: LayerBounds, spec: Tensor) -> Tensor:
        """Sound lower bounds of ``spec[b] @ f(x)`` over box ``b``: ``(B, K, m) -> (B, K)``.

        ``bounds`` must come from :meth:`layer_bounds` (or :meth:`interval`) on the same boxes.
        """
        n_layers = len(self.network.layers)
        zero = torch.zeros(spec.shape[:2], dtype=torch.float64, device=self.device)
        crown = self._backward(bounds, n_layers, spec, zero)
        return torch.maximum(crown, self.spec_lower_interval(bounds, spec))

    def spec_lower_interval(self, bounds: LayerBounds, spec: Tensor) -> Tensor:
        """Sound lower bounds of ``spec[b] @ f(x)`` from the output bounds alone."""
        n_layers = len(self.network.layers)
        mag = bounds.magnitude[-1] if n_layers else bounds.pre_magnitude(0)
        lo_y, hi_y = bounds.pre(n_layers)
        pos, neg = spec.clamp(min=0.0), spec.clamp(max=0.0)
        interval = (pos * lo_y[:, None, :]).sum(-1) + (neg * hi_y[:, None, :]).sum(-1)
        slack = _REL * (spec.abs() * mag[:, None, :]).sum(-1) + _ABS
        return interval - slack

    # -- internals -------------------------------------------------------------------------

    def _affine_interval(
        self, i: int, lo: Tensor, hi: Tensor, mag: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        W, b = self._W[i], self._b[i]
        assert W is not None and b is not None
        if lo.dtype == torch.float32:  # an estimate (layer_bounds with sound=False)
            W, b = self._Wb32[i][:, :-1], self._Wb32[i][:, -1]
        mid, rad = (lo + hi) / 2.0, (hi - lo) / 2.0
        center = mid @ W.T + b
        radius = rad @ W.abs().T
        new_mag = mag @ W.abs().T + b.abs()
        slack = _REL * new_mag + _ABS
        return center - radius - slack, center + radius + slack, new_mag

    def _backward(self, bounds: LayerBounds, upto: int, lam: Tensor, bias: Tensor) -> Tensor:
        """Lower bound of ``lam · h_upto + bias`` (``h_upto`` = input of layer ``upto``) over
        each box, by back-substitution through layers ``upto − 1 … 0``; ``lam``: (B, K, w)."""
        return self.backward(bounds, upto, lam, bias)[0]

    def backward(
        self,
        bounds: LayerBounds,
        upto: int,
        lam: Tensor,
        bias: Tensor,
        slopes: Slopes | None = None,
        *,
        margin: bool = True,
        trace: dict[int, Tensor] | None = None,
        betas: Mapping[int, Tensor] | None = None,
        paired: bool = False,
    ) -> tuple[Tensor, Tensor]:
        """``(value, lam_x)``: the lower bound of ``lam · h_upto + bias`` over each box (as
        :meth:`_backward`) and its linear coefficients on the input, ``(B, K, n)``.

        ``slopes`` (α-CROWN) replaces, per spec row, the lower-line slope of each *unstable*
        ReLU (layer index → one ``(B, K, w)`` tensor per ReLU of the layer: one for Relu,
        two for Clip); any slope in ``[0, 1]`` gives a valid line through the origin, so the
        bound stays sound (it is clamped to ``[0, 1]`` here). ``margin=False`` leaves out the
        floating-point safety margin (for optimisation only: that value is not a sound bound).
        ``trace`` receives, per activation layer, the coefficients of its output (for
        branching heuristics). ``betas`` (β-CROWN; activation layer → ``(B, K, w)``, ``β·s``
        with ``β ≥ 0`` and ``s`` the split signs) adds ``−β·s·z`` for the split constraints
        ``s·z ≥ 0`` on that layer's pre-activation ``z``: valid on the split sub-domain for
        any ``β ≥ 0`` (the caller keeps ``β ≥ 0``; the bounds must come from
        :meth:`layer_bounds` with the same splits). ``paired``: the second half of the rows
        (and of ``bias``) is the first half negated — a neuron's lower and upper bound — so
        their magnitudes are equal and computed once.
        """
        # The magnitude bound M (module doc): |λ| pushed back through |W| and, per activation,
        # the largest slope and intercept of its lines, is linear in |λ| with operators that
        # do not depend on the row, so it is computed forwards instead, one vector per box
        # (``_magnitude``): the same sum of non-negative terms, at a matrix-vector product per
        # layer instead of a matrix product. With α's slopes (one set of lines per row) each
        # slope and intercept is bounded by its largest over the rows, so M can only grow;
        # β's ``|β·s|`` enter as their own terms.
        if margin and lam.dtype != torch.float64:
            raise ValueError(f"a sound bound is computed in float64, not {lam.dtype}")
        if paired and (slopes is not None or betas is not None):
            raise ValueError("paired rows take no slopes or multipliers")
        half = lam.shape[1] // 2 if paired else lam.shape[1]
        top_lam, top_bias = lam[:, :half], bias[:, :half]
        lines: dict[int, tuple[Tensor, Tensor, Tensor | None]] = {}  # j → slope, intercept, |β·s|
        for j in range(upto - 1, -1, -1):
            layer = self.network.layers[j]
            if isinstance(layer, Affine):
                both = lam @ (self._Wb32[j] if lam.dtype == torch.float32 else self._Wb[j])
                bias = bias + both[..., -1]
                lam = both[..., :-1]
                continue
            if trace is not None:
                trace[j] = lam  # the coefficients of activation j's output
            low, up = bounds.pre(j)
            extra = None if betas is None else betas.get(j)
            if extra is None and is_identity(layer, low, up):
                continue  # a clamp its inputs never reach (the ±100 output Clip): h = z
            chosen = None if slopes is None else slopes.get(j)
            a_lo, c_lo, a_hi, c_hi = relaxation(layer, low[:, None, :], up[:, None, :], chosen)
            # pos·a_lo + neg·a_hi = lam·a_lo + neg·(a_hi − a_lo); a ReLU's lower line has no
            # intercept
            neg = lam.clamp(max=0.0)
            bias = bias + _rowdot(neg, c_hi)
            if not isinstance(layer, Relu):
                bias = bias + _rowdot(lam - neg, c_lo)
            lam = (lam * a_lo).addcmul_(neg, a_hi - a_lo)  # in place: half the time
            if extra is not None:
                lam = lam - extra
            if margin:
                lines[j] = _magnitude_lines(a_lo, c_lo, a_hi, c_hi, extra)
        lo, hi = _shared(bounds.box_lower)[:, None, :], _shared(bounds.box_upper)[:, None, :]
        if lam.requires_grad and not margin:  # choosing slopes: a cheaper gradient
            value = bias + _Corner.apply(lam, lo, hi)  # type: ignore[no-untyped-call]
        else:
            value = bias + _rowdot(lam.clamp(min=0.0), lo) + _rowdot(lam.clamp(max=0.0), hi)
        if not margin:
            return value, lam
        magnitude = self._magnitude(bounds, upto, top_lam, top_bias, lines).double()
        if paired:
            magnitude = torch.cat([magnitude, magnitude], dim=1)
        return value - _REL * magnitude - _ABS, lam

    def _magnitude(
        self,
        bounds: LayerBounds,
        upto: int,
        lam: Tensor,
        bias: Tensor,
        lines: Mapping[int, tuple[Tensor, Tensor, Tensor | None]],
    ) -> Tensor:
        """``M`` per row (float32, ``(B, K)``) for :meth:`backward`: ``|bias| + |lam|·v`` with
        ``v`` pushed forwards from ``max(|lo|, |hi|)`` of the box through ``|W|·v + |b|`` and
        each activation's ``slope·v + intercept``, plus ``|β·s|·v`` at each split layer."""
        lo, hi = _shared(bounds.box_lower), _shared(bounds.box_upper)
        v = torch.maximum(lo.abs(), hi.abs()).float()  # (B, n), or (1, n) for a shared box
        total = bias.abs().float()
        for j in range(upto):
            if isinstance(self.network.layers[j], Affine):
                wb = self._abs32[j]
                v = torch.addmm(wb[:, -1], v, wb[:, :-1].T)
                continue
            if j not in lines:
                continue  # an identity clamp (see backward)
            slope, intercept, extra = lines[j]
            if extra is not None:
                total = total + _rowdot(extra, v[:, None, :])
            v = slope * v + intercept
        return total + _rowdot(lam.abs().float(), v.expand(lam.shape[0], -1)[:, None, :])


def _magnitude_lines(
    a_lo: Tensor, c_lo: Tensor, a_hi: Tensor, c_hi: Tensor, extra: Tensor | None
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Per box ``(B, w)``, float32: the largest ``|slope|`` and ``|intercept|`` of one
    activation's lines over the rows (one set of lines without α's slopes, ``(B, 1, w)``; one
    per row with them), and ``|β·s|`` (``(B, K, w)``) when multipliers are given."""
    slope = torch.maximum(a_lo.abs(), a_hi.abs()).amax(dim=1).float()
    intercept = torch.maximum(c_lo.abs(), c_hi.abs()).amax(dim=1).float()
    return slope, intercept, None if extra is None else extra.abs().float()


def _shared(box: Tensor) -> Tensor:
    """``box`` ``(B, n)``, or its first row when every row is that row by ``expand`` (ReLU
    splitting's sub-domains share their search's box): element-wise work on the expanded
    tensor repeats the same values ``B`` times and writes a full result (profiling ReLU
    splitting on Fashion-MNIST: ``abs`` and ``maximum`` of a 512 × 784 box took about 1 ms
    each per bound); broadcasting the row gives the same values."""
    if box.dim() == 2 and box.shape[0] > 1 and box.stride(0) == 0:
        return box[:1]
    return box


class _Corner(torch.autograd.Function):
    """``min over the box of lam · x``, ``(B, K)``, for ``lam`` ``(B, K, n)`` and the box's
    bounds ``(B or 1, 1, n)``: the value as in :meth:`Crown.backward`, with a gradient
    ``lo`` or ``hi`` per coefficient (the minimising corner) written out. Autograd's own,
    through ``clamp``, takes ``where`` and a multiplication by a mask, over every input per
    row: torch 2.13 on this CPU spends about 3.6 ns per element in ``where`` from 10⁵
    elements on (a 512 × 784 batch: 1.5 ms, against 0.05 ms for ``mul``), and that
    gradient was about a tenth of ReLU splitting's time on Fashion-MNIST. Only where slopes
    are chosen (``margin=False``): a sound bound is computed without it."""

    @staticmethod
    def forward(ctx: Any, lam: Tensor, lo: Tensor, hi: Tensor) -> Tensor:
        ctx.save_for_backward(lam, lo, hi)
        return _rowdot(lam, lo) + _rowdot(lam.clamp(max=0.0), hi - lo)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        lam, lo, hi = ctx.saved_tensors
        corner = lo + (hi - lo) * (-lam.sign()).clamp_(min=0.0)  # hi where lam < 0, else lo
        return grad[..., None] * corner, None, None


def _rowdot(x: Tensor, c: Tensor) -> Tensor:
    """``(x * c).sum(-1)`` for ``x`` ``(B, K, w)`` and ``c`` ``(B, 1, w)`` or ``(B, K, w)``;
    one batched product (one pass over ``x``) when ``c`` is shared by the ``K`` rows, one
    matrix-vector product when by the boxes too (``(1, 1, w)``)."""
    if c.shape[0] == 1 and c.shape[1] == 1:
        return (x.reshape(-1, x.shape[-1]) @ c[0, 0]).view(x.shape[:-1])
    if c.shape[1] == 1 and x.shape[1] != 1:
        return torch.matmul(x, c.transpose(1, 2)).squeeze(-1)
    return (x * c).sum(-1)


def _has_nonlinearity_before(network: Network, i: int) -> bool:
    return any(not isinstance(layer, Affine) for layer in network.layers[:i])
