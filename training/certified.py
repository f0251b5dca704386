"""Sound bounds of a property's margin over its region, for certified training (IBP, CROWN-IBP).

Plain differentiable float32 torch on the :class:`~robustprop.training.models.ClampMLP`
(``Linear → ReLU → … → Linear → clamp``). The bounds are sound in real arithmetic (float32
rounding aside): training only needs the math to be right; the certificate is always the
verifier's.

- :func:`interval_bounds` (IBP, Gowal et al. 2018): centre/radius interval propagation; the
  pre-activation bounds of every layer.
- :func:`crown_ibp_lower` (CROWN-IBP, Zhang et al. 2020): a lower bound of ``C·z`` for
  specification rows ``C`` over the last layer's scores ``z``, by back-substituting ``C``
  through the ReLUs with linear relaxations built on the IBP bounds (adaptive lower slope),
  concretised over the input box.
- :func:`worst_case_outputs`: outputs ``y*`` built from these bounds at which the *property's
  own margin* (``prop.margin`` from :mod:`robustprop.properties`, not a copy of it) is an upper
  bound of the margin over the whole region:

  * CR, SCR (class ``c``): ``y*_c = 0`` and ``y*_j = ub(y_j − y_c)``. CR's margin
    ``max_{j≠c} y_j − y_c`` and SCR's ``η − softmax(y)_c`` are non-decreasing in every
    difference ``y_j − y_c``, and depend on ``y`` only through them.
  * SR (reference ``r``): ``y*_j`` is whichever of ``lb(y_j)``, ``ub(y_j)`` lies farther from
    ``r_j``, so ``max_j |y*_j − r_j| ≥ |y_j − r_j|`` for every ``y`` in the bounds.

The output clamp ``y = clamp(z, −b, b)`` is monotone and 1-Lipschitz: ``y`` bounds are the
clamped ``z`` bounds, and ``y_j − y_c ≤ (z_j − z_c) + relu(−b − lb z_j) + relu(ub z_c − b)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from robustprop.properties import Property, References, Region
from robustprop.properties.errors import InputError
from robustprop.training.models import ClampMLP

__all__ = [
    "LayerBounds",
    "crown_ibp_lower",
    "interval_bounds",
    "linear_layers",
    "margin_upper_bound",
    "worst_case_outputs",
]


@dataclass(frozen=True, eq=False)
class LayerBounds:
    """Bounds of the pre-activations of each linear layer (the last: the unclamped scores).

    Shape:
        lower[i], upper[i]: ``(B, width_i)``.
    """

    lower: tuple[Tensor, ...]
    upper: tuple[Tensor, ...]


def linear_layers(model: nn.Module) -> tuple[nn.Linear, ...]:
    """The linear layers of a :class:`ClampMLP` (ReLU between each two)."""
    if not isinstance(model, ClampMLP):
        raise InputError(
            f"certified training bounds need a ClampMLP network, got {type(model).__name__}"
        )
    return tuple(layer for layer in model.layers if isinstance(layer, nn.Linear))


def interval_bounds(layers: tuple[nn.Linear, ...], lower: Tensor, upper: Tensor) -> LayerBounds:
    """IBP: interval bounds of every layer's pre-activations over the box ``[lower, upper]``.

    Shape:
        lower, upper: ``(B, n)``.
    """
    lows: list[Tensor] = []
    highs: list[Tensor] = []
    lo, hi = lower, upper
    for i, layer in enumerate(layers):
        if i > 0:
            lo, hi = lo.clamp(min=0.0), hi.clamp(min=0.0)
        mid, rad = (hi + lo) / 2, (hi - lo) / 2
        centre = nn.functional.linear(mid, layer.weight, layer.bias)
        spread = rad @ layer.weight.abs().t()
        lo, hi = centre - spread, centre + spread
        lows.append(lo)
        highs.append(hi)
    return LayerBounds(tuple(lows), tuple(highs))


def crown_ibp_lower(
    layers: tuple[nn.Linear, ...],
    bounds: LayerBounds,
    spec: Tensor,
    lower: Tensor,
    upper: Tensor,
) -> Tensor:
    """CROWN-IBP: a lower bound of ``spec · z`` over the box, ``z`` the last layer's output.

    Each ReLU with pre-activation bounds ``l < 0 < u`` is relaxed by the upper line
    ``u(h − l)/(u − l)`` and the lower line ``α·h`` with ``α = 1`` if ``u > −l`` else 0; the
    coefficient's sign picks the line that keeps the bound a lower bound.

    Shape:
        spec: ``(B, S, m)``; lower, upper: ``(B, n)``; output: ``(B, S)``.
    """
    last = layers[-1]
    coeff = spec @ last.weight  # (B, S, width)
    const = spec @ last.bias
    for i in range(len(layers) - 2, -1, -1):
        lo, hi = bounds.lower[i], bounds.upper[i]
        active = lo >= 0
        unstable = (lo < 0) & (hi > 0)
        width = (hi - lo).clamp(min=1e-12)
        up_slope = torch.where(unstable, hi / width, active.to(hi.dtype))
        up_shift = torch.where(unstable, -up_slope * lo, torch.zeros_like(lo))
        low_slope = torch.where(unstable, (hi > -lo).to(hi.dtype), active.to(hi.dtype))
        positive = coeff >= 0
        slope = torch.where(positive, low_slope[:, None, :], up_slope[:, None, :])
        shift = torch.where(positive, torch.zeros_like(coeff), coeff * up_shift[:, None, :])
        const = const + shift.sum(dim=2)
        coeff = coeff * slope
        layer = layers[i]
        const = const + coeff @ layer.bias
        coeff = coeff @ layer.weight
    mid, rad = (upper + lower) / 2, (upper - lower) / 2
    at_mid = (coeff @ mid[:, :, None]).squeeze(2)
    spread = (coeff.abs() @ rad[:, :, None]).squeeze(2)
    result: Tensor = at_mid - spread + const
    return result


def _class_spec(classes: Tensor, m: int, dtype: torch.dtype) -> Tensor:
    """Rows ``e_c − e_j`` for every class ``j`` (row ``c`` is zero); shape ``(B, m, m)``."""
    eye = torch.eye(m, dtype=dtype, device=classes.device)
    return eye[classes][:, None, :] - eye[None, :, :]


def worst_case_outputs(
    model: nn.Module,
    prop: Property,
    region: Region,
    refs: References,
    *,
    crown_weight: float = 0.0,
) -> Tensor:
    """Outputs ``y*`` at which ``prop.margin`` bounds the margin over ``region`` from above.

    ``crown_weight`` ``w`` mixes the bounds: ``w·CROWN-IBP + (1 − w)·IBP`` (``0``: IBP only;
    both are sound, so every mixture is). See the module docstring for ``y*``.

    Shape:
        refs: ``(B, m)`` scores, ``(B,)`` classes; output: ``(B, m)``.
    """
    if not 0.0 <= crown_weight <= 1.0:
        raise InputError(f"crown_weight must lie in [0, 1], got {crown_weight}")
    layers = linear_layers(model)
    assert isinstance(model, ClampMLP)  # linear_layers checked it
    cap = model.clamp
    lower, upper = region.lower, region.upper
    bounds = interval_bounds(layers, lower, upper)
    z_lo, z_hi = bounds.lower[-1], bounds.upper[-1]
    m = z_lo.shape[1]
    if prop.name in ("cr", "scr"):
        classes = refs.classes
        z_c_hi = z_hi.gather(1, classes[:, None])
        # ub(z_j − z_c) from intervals
        gap = z_hi - z_lo.gather(1, classes[:, None])
        if crown_weight > 0:
            spec = _class_spec(classes, m, z_lo.dtype)
            crown = -crown_ibp_lower(layers, bounds, spec, lower, upper)
            gap = crown_weight * crown + (1.0 - crown_weight) * gap
        gap = gap + (-cap - z_lo).clamp(min=0.0) + (z_c_hi - cap).clamp(min=0.0)
        y_lo, y_hi = z_lo.clamp(-cap, cap), z_hi.clamp(-cap, cap)
        interval_gap = y_hi - y_lo.gather(1, classes[:, None])
        gap = torch.minimum(gap, interval_gap)
        own = nn.functional.one_hot(classes, m).bool()
        return gap.masked_fill(own, 0.0)
    if prop.name == "sr":
        if crown_weight > 0:
            eye = torch.eye(m, dtype=z_lo.dtype, device=z_lo.device)
            spec = torch.cat([eye, -eye]).expand(z_lo.shape[0], 2 * m, m)
            crown = crown_ibp_lower(layers, bounds, spec, lower, upper)
            crown_lo, crown_hi = crown[:, :m], -crown[:, m:]
            z_lo = crown_weight * crown_lo + (1.0 - crown_weight) * z_lo
            z_hi = crown_weight * crown_hi + (1.0 - crown_weight) * z_hi
        y_lo, y_hi = z_lo.clamp(-cap, cap), z_hi.clamp(-cap, cap)
        r = refs.scores
        return torch.where(y_hi - r >= r - y_lo, y_hi, y_lo)
    raise InputError(f"certified training covers cr, sr and scr, not {prop.name}")


def margin_upper_bound(
    model: nn.Module,
    prop: Property,
    region: Region,
    refs: References,
    *,
    crown_weight: float = 0.0,
) -> Tensor:
    """An upper bound of ``prop.margin`` over ``region`` per row (shape ``(B,)``).

    ``violated(bound)`` false proves (in real arithmetic) that no point of the region violates
    the property.
    """
    worst = worst_case_outputs(model, prop, region, refs, crown_weight=crown_weight)
    return prop.margin(region.centers, worst, region.centers, refs)
