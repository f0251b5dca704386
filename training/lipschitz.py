"""The lipschitz regime's projection: keep ``∏ ‖W_i‖∞ ≤ L`` over the linear layers.

For ``f = clamp ∘ W_k ∘ ReLU ∘ … ∘ ReLU ∘ W_1`` (biases aside) and inputs ``x, x′``:
``‖f(x) − f(x′)‖∞ ≤ ∏ ‖W_i‖∞ · ‖x − x′‖∞``, because ReLU and the clamp are 1-Lipschitz
coordinate-wise and ``‖W v‖∞ ≤ ‖W‖∞ ‖v‖∞`` with ``‖W‖∞`` the largest row ℓ1 norm. So when
the product is at most ``L``, LR(ε, L) holds at every point for every ε.

:func:`project` gives each of the ``k`` layers the budget ``λ = L^(1/k)·(1 − 1e-5)`` (the
factor absorbs float32 rounding of the rescaled rows, so the product of the norms of the
float32 weights, computed exactly, stays below ``L``) and rescales either every row whose ℓ1
norm exceeds ``λ`` (``rows``) or the whole matrix (``matrix``).
"""

from __future__ import annotations

import math
from typing import Final

import torch
from torch import nn

from robustprop.training.certified import linear_layers
from robustprop.training.config import LipschitzConfig

__all__ = ["SAFETY", "layer_budget", "lipschitz_bound", "operator_norms", "project"]

#: Relative slack of each layer's budget against float32 rounding.
SAFETY: Final = 1.0 - 1e-5


def layer_budget(settings: LipschitzConfig, layers: int) -> float:
    """Each layer's bound on its ∞-operator norm: ``L^(1/layers)`` less the safety slack."""
    return float(settings.bound ** (1.0 / layers) * SAFETY)


def operator_norms(model: nn.Module) -> tuple[float, ...]:
    """``‖W_i‖∞`` (largest row ℓ1 norm) of each linear layer, in float64."""
    return tuple(
        float(layer.weight.detach().to(torch.float64).abs().sum(dim=1).max())
        for layer in linear_layers(model)
    )


def lipschitz_bound(model: nn.Module) -> float:
    """``∏ ‖W_i‖∞``: an L∞ Lipschitz constant of the network."""
    return math.prod(operator_norms(model))


def project(model: nn.Module, settings: LipschitzConfig) -> None:
    """Rescale the weights in place so that every layer's norm is at most its budget."""
    layers = linear_layers(model)
    budget = layer_budget(settings, len(layers))
    with torch.no_grad():
        for layer in layers:
            weight = layer.weight
            norms = weight.abs().sum(dim=1, keepdim=True, dtype=torch.float64)
            if settings.projection == "matrix":
                norms = norms.max().expand_as(norms)
            scale = (budget / norms).clamp(max=1.0).to(weight.dtype)
            weight.mul_(scale)
