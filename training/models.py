"""Network architectures: fully connected ReLU networks whose scores are clamped to ±100.

``ClampMLP`` with one hidden layer of 100 units is the paper's network ``n → 100 → m``;
the output is ``torch.clamp(z, -100, 100)``, which the ONNX exporter writes as ``Clip``
(DESIGN.md §2: the clamp is part of the network). Inputs are flattened ``(B, n)`` floats.
Weights use PyTorch's default initialisation, so construction is deterministic under
``torch.manual_seed``.
"""

from __future__ import annotations

from typing import Final

import torch
from torch import nn

from robustprop.properties.errors import InputError

__all__ = ["ARCHITECTURES", "CLAMP_BOUND", "ClampMLP", "build_model"]

CLAMP_BOUND: Final = 100.0

#: Hidden-layer widths of each architecture, keyed by its CLI token.
ARCHITECTURES: Final[dict[str, tuple[int, ...]]] = {
    "mlp": (100,),  # the paper's network
    "mlp-deep": (256, 128),
}


class ClampMLP(nn.Module):
    """``n → hidden... → m`` with ReLU after each hidden layer and a clamped output.

    Shape:
        - Input: ``(B, n_inputs)`` float.
        - Output: ``(B, n_classes)`` scores in ``[-clamp, clamp]``.
    """

    def __init__(
        self,
        n_inputs: int,
        n_classes: int,
        hidden: tuple[int, ...] = (100,),
        clamp: float = CLAMP_BOUND,
    ) -> None:
        super().__init__()
        if n_inputs < 1 or n_classes < 1 or any(h < 1 for h in hidden) or not clamp > 0:
            raise InputError(
                f"invalid network size: n_inputs={n_inputs}, n_classes={n_classes}, "
                f"hidden={hidden}, clamp={clamp} (all must be positive)"
            )
        self.n_inputs = n_inputs
        self.n_classes = n_classes
        self.clamp = float(clamp)
        layers: list[nn.Module] = []
        width = n_inputs
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, n_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Clamped scores ``clamp(z, -clamp, clamp)`` of a batch ``(B, n_inputs)``."""
        z: torch.Tensor = self.layers(x)
        return torch.clamp(z, -self.clamp, self.clamp)


def build_model(arch: str, n_inputs: int, n_classes: int) -> nn.Module:
    """A fresh network of architecture ``arch`` (a key of :data:`ARCHITECTURES`)."""
    try:
        hidden = ARCHITECTURES[arch]
    except KeyError:
        choices = ", ".join(ARCHITECTURES)
        raise InputError(f"unknown architecture {arch!r}: choose one of {choices}") from None
    return ClampMLP(n_inputs, n_classes, hidden)
