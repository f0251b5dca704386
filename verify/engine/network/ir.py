"""The piecewise-linear IR of a feed-forward network: affine maps, ReLU and Clip.

A :class:`Network` is a tuple of :class:`Affine`, :class:`Relu` and :class:`Clip` layers over
the flattened input; it evaluates batches in float64 and gives sound interval bounds of every
layer over an input box.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from robustprop.properties.errors import InputError

__all__ = ["Affine", "Array", "Clip", "FloatArray", "Layer", "Network", "Relu"]

FloatArray = npt.NDArray[np.float64]
Array = npt.NDArray[Any]

# Relative slack added to interval bounds so that float64 rounding never makes them unsound.
_BOUND_SLACK = 1e-9


@dataclass(frozen=True, eq=False)
class Affine:
    """``z = W @ h + b`` with ``W`` of shape (out, in)."""

    W: FloatArray
    b: FloatArray

    @property
    def in_size(self) -> int:
        return int(self.W.shape[1])

    @property
    def out_size(self) -> int:
        return int(self.W.shape[0])


@dataclass(frozen=True)
class Relu:
    """``max(z, 0)`` element-wise."""


@dataclass(frozen=True)
class Clip:
    """``min(max(z, lo), hi)`` element-wise; a missing bound is ``-inf`` / ``+inf``."""

    lo: float
    hi: float


Layer = Affine | Relu | Clip


@dataclass(frozen=True, eq=False)
class Network:
    """A piecewise-linear network ``f: R^n -> R^m`` over flattened inputs and outputs.

    ``input_shape``/``output_shape`` are the ONNX shapes (symbolic batch dimensions read as 1);
    ``sha256`` is the hash of the model file's bytes; ``source`` names the model in messages.
    """

    layers: tuple[Layer, ...]
    n: int
    m: int
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    sha256: str
    source: str

    def sizes(self) -> tuple[int, ...]:
        """Width after each layer (``len(layers)`` entries)."""
        width = self.n
        out = []
        for layer in self.layers:
            if isinstance(layer, Affine):
                width = layer.out_size
            out.append(width)
        return tuple(out)

    def evaluate(self, x: npt.ArrayLike) -> FloatArray:
        """Outputs for a batch of inputs.

        Shape:
            x: (B, n) float64 (a single (n,) vector is accepted) -> (B, m) float64.
        """
        h = np.asarray(x, dtype=np.float64)
        if h.ndim == 1:
            h = h[None, :]
        if h.ndim != 2 or h.shape[1] != self.n:
            raise InputError(
                f"{self.source}: expected inputs of shape (B, {self.n}), got {h.shape}"
            )
        for layer in self.layers:
            if isinstance(layer, Affine):
                h = h @ layer.W.T + layer.b
            elif isinstance(layer, Relu):
                h = np.maximum(h, 0.0)
            else:
                h = np.clip(h, layer.lo, layer.hi)
        return h

    def interval_bounds(
        self, lower: npt.ArrayLike, upper: npt.ArrayLike
    ) -> list[tuple[FloatArray, FloatArray]]:
        """Sound element-wise bounds of every layer's output for inputs in ``[lower, upper]``.

        Interval arithmetic with a small outward slack (relative ``1e-9`` of the magnitudes
        involved), so the bounds also hold for the exact real-valued network.
        Entry ``i`` bounds the output of ``layers[i]``.
        """
        lo = np.asarray(lower, dtype=np.float64).reshape(-1)
        hi = np.asarray(upper, dtype=np.float64).reshape(-1)
        if lo.size != self.n or hi.size != self.n:
            raise InputError(
                f"{self.source}: box has {lo.size} bounds, the network {self.n} inputs"
            )
        out: list[tuple[FloatArray, FloatArray]] = []
        for layer in self.layers:
            if isinstance(layer, Affine):
                mid = (lo + hi) / 2.0
                rad = (hi - lo) / 2.0
                center = layer.W @ mid + layer.b
                radius = np.abs(layer.W) @ rad
                mag = np.abs(layer.W) @ np.maximum(np.abs(lo), np.abs(hi)) + np.abs(layer.b)
                slack = _BOUND_SLACK * (1.0 + mag)
                lo, hi = center - radius - slack, center + radius + slack
            elif isinstance(layer, Relu):
                lo, hi = np.maximum(lo, 0.0), np.maximum(hi, 0.0)
            else:
                lo, hi = np.clip(lo, layer.lo, layer.hi), np.clip(hi, layer.lo, layer.hi)
            out.append((lo, hi))
        return out
