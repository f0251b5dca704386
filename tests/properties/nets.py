"""Tiny hand-written networks for the properties tests."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Clamped(nn.Module):
    """``clamp(W2 relu(W1 x + b1) + b2, −100, 100)`` with given weights (float64)."""

    def __init__(self, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor) -> None:
        super().__init__()
        self.hidden = nn.Linear(w1.shape[1], w1.shape[0]).double()
        self.out = nn.Linear(w2.shape[1], w2.shape[0]).double()
        with torch.no_grad():
            self.hidden.weight.copy_(w1)
            self.hidden.bias.copy_(b1)
            self.out.weight.copy_(w2)
            self.out.bias.copy_(b2)

    def forward(self, x: Tensor) -> Tensor:
        return torch.clamp(self.out(torch.relu(self.hidden(x))), -100.0, 100.0)


def hand_net() -> Clamped:
    """2 inputs, 3 outputs: ``y = (16(x0 − x1), 16(x1 − x0), 1)`` on ``[0, 1]²``."""
    eye = torch.eye(2, dtype=torch.float64)
    w2 = torch.tensor([[16.0, -16.0], [-16.0, 16.0], [0.0, 0.0]], dtype=torch.float64)
    b2 = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    return Clamped(eye, torch.zeros(2, dtype=torch.float64), w2, b2)


def random_net(seed: int, n: int, m: int, hidden: int = 4, scale: float = 1.0) -> Clamped:
    """A random ``n → hidden → m`` clamped ReLU net (float64), reproducible from ``seed``."""
    g = torch.Generator().manual_seed(seed)

    def draw(*shape: int) -> Tensor:
        return scale * torch.randn(*shape, generator=g, dtype=torch.float64)

    return Clamped(draw(hidden, n), draw(hidden), draw(m, hidden), draw(m))
