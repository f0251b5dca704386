"""The IR as a torch module, so the ascent loop (PGD, sampling, the VNN-LIB falsifier) can
attack it.

Attacks only *propose* points: every counterexample is replayed through onnxruntime before a
point is called violated, so the float32 arithmetic here never decides a verdict. Also here:
:func:`torch_threads`, the thread count the engine's many small torch ops run on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from robustprop.verify.engine.network import Affine, Clip, Network, Relu


class _Clip(nn.Module):
    def __init__(self, lo: float, hi: float) -> None:
        super().__init__()
        self.lo = lo
        self.hi = hi

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(x, min=self.lo, max=self.hi)


def to_torch(network: Network, dtype: torch.dtype = torch.float32) -> nn.Module:
    """An ``nn.Sequential`` computing ``network`` on flattened ``(B, n)`` inputs."""
    modules: list[nn.Module] = []
    for layer in network.layers:
        if isinstance(layer, Affine):
            linear = nn.Linear(layer.in_size, layer.out_size, dtype=dtype)
            with torch.no_grad():
                linear.weight.copy_(torch.tensor(layer.W, dtype=dtype))  # a copy: W may be
                linear.bias.copy_(torch.tensor(layer.b, dtype=dtype))  # read-only
            modules.append(linear)
        elif isinstance(layer, Relu):
            modules.append(nn.ReLU())
        elif isinstance(layer, Clip):
            modules.append(_Clip(layer.lo, layer.hi))
    model = nn.Sequential(*modules)
    model.requires_grad_(False)
    return model.eval()


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run torch ops on ``count`` intra-op threads, then restore the setting.

    The attacks, the bounds and branch and bound run many small ops; on a loaded machine
    (solver processes, pool workers or other jobs on the other cores) every op's thread
    hand-off can wait a scheduler slice, which made them ~10x slower with two threads than
    with one on our two-core machine; a pool runs ``jobs`` workers of one thread each.
    """
    saved = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(saved)
