"""The ONNX Conv op: N-d convolution geometry (:class:`ConvSpec`) and its handler, which folds a
convolution of the network's activations into a dense affine map."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from robustprop.properties.errors import InputError
from robustprop.verify.engine.network.ir import Array, FloatArray
from robustprop.verify.engine.network.symbolic import GraphState, Handler, Sym, Value, apply_map

if TYPE_CHECKING:
    import onnx

__all__ = ["CONV_OPS", "ConvSpec"]


@dataclass(frozen=True)
class ConvSpec:
    """Geometry of an N-d convolution (ONNX semantics: NCHW..., weights M x C/group x k...)."""

    group: int
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    pads_begin: tuple[int, ...]
    pads_end: tuple[int, ...]
    out_spatial: tuple[int, ...]

    @staticmethod
    def from_attrs(
        attrs: dict[str, Any],
        x_shape: tuple[int, ...],
        w_shape: tuple[int, ...],
        fail: Callable[[str], InputError],
    ) -> ConvSpec:
        spatial = x_shape[2:]
        kernel = tuple(int(k) for k in attrs.get("kernel_shape", w_shape[2:]))
        nd = len(spatial)
        if kernel != tuple(w_shape[2:]):
            raise fail(f"Conv kernel_shape {list(kernel)} does not match weight {list(w_shape)}")
        strides = tuple(int(s) for s in attrs.get("strides", [1] * nd))
        dilations = tuple(int(d) for d in attrs.get("dilations", [1] * nd))
        group = int(attrs.get("group", 1))
        if len(strides) != nd or min(strides, default=1) < 1:
            raise fail(f"Conv strides {list(strides)} (expected {nd} values of at least 1)")
        if len(dilations) != nd or min(dilations, default=1) < 1:
            raise fail(f"Conv dilations {list(dilations)} (expected {nd} values of at least 1)")
        if group < 1:
            raise fail(f"Conv group {group} (expected at least 1)")
        if x_shape[1] != w_shape[1] * group or w_shape[0] % group:
            raise fail(
                f"Conv channels: input {list(x_shape)}, weight {list(w_shape)}, group {group}"
            )
        auto_pad = attrs.get("auto_pad", b"NOTSET")
        auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)
        eff = [(k - 1) * d + 1 for k, d in zip(kernel, dilations, strict=True)]
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            out = [-(-s // st) for s, st in zip(spatial, strides, strict=True)]
            total = [
                max(0, (o - 1) * st + e - s)
                for o, st, e, s in zip(out, strides, eff, spatial, strict=True)
            ]
            small = [t // 2 for t in total]
            big = [t - t // 2 for t in total]
            begin, end = (small, big) if auto_pad == "SAME_UPPER" else (big, small)
        elif auto_pad == "VALID":
            begin, end = [0] * nd, [0] * nd
        elif auto_pad == "NOTSET":
            pads = [int(p) for p in attrs.get("pads", [0] * (2 * nd))]
            if len(pads) != 2 * nd or min(pads, default=0) < 0:
                raise fail(f"Conv pads {pads} (expected {2 * nd} values of at least 0)")
            begin, end = pads[:nd], pads[nd:]
        else:
            raise fail(f"Conv auto_pad {auto_pad!r}")
        out_spatial = tuple(
            (s + b + e - ef) // st + 1
            for s, b, e, ef, st in zip(spatial, begin, end, eff, strides, strict=True)
        )
        if any(o <= 0 for o in out_spatial):
            raise fail(f"Conv output would be empty for input {list(x_shape)}")
        return ConvSpec(group, strides, dilations, tuple(begin), tuple(end), out_spatial)

    def apply(self, x: Array, W: FloatArray) -> FloatArray:
        """Convolution without bias. x: (B, N, C, *spatial) -> (B, N, M, *out_spatial)."""
        B, N, C = x.shape[:3]
        pad = [(0, 0)] * 3 + list(zip(self.pads_begin, self.pads_end, strict=True))
        xp = np.pad(np.asarray(x, dtype=np.float64), pad)
        M = W.shape[0]
        cg, mg = C // self.group, M // self.group
        out = np.zeros((B, N, M, *self.out_spatial))
        kernel = W.shape[2:]
        taps = W.reshape(M, C // self.group, -1)
        for offset in itertools.product(*(range(k) for k in kernel)):
            window = tuple(
                slice(o * d, o * d + (size - 1) * st + 1, st)
                for o, d, size, st in zip(
                    offset, self.dilations, self.out_spatial, self.strides, strict=True
                )
            )
            for g in range(self.group):
                patch = xp[(slice(None), slice(None), slice(g * cg, (g + 1) * cg), *window)]
                w = taps[g * mg : (g + 1) * mg, :, int(np.ravel_multi_index(offset, kernel))]
                # (B, N, cg, *out) x (mg, cg) -> (B, N, mg, *out)
                out[:, :, g * mg : (g + 1) * mg] += np.moveaxis(
                    np.tensordot(patch, w, axes=([2], [1])), -1, 2
                )
        return out


def op_conv(
    g: GraphState, node: onnx.NodeProto, inputs: list[str], attrs: dict[str, Any]
) -> list[Value]:
    x = g.get(inputs[0])
    W = np.asarray(g.const(inputs[1], "Conv weight"), dtype=np.float64)
    bias = (
        np.asarray(g.const(inputs[2], "Conv bias"), dtype=np.float64)
        if len(inputs) > 2 and inputs[2]
        else None
    )
    shape = x.shape if isinstance(x, Sym) else tuple(np.shape(x))
    if len(shape) != W.ndim:
        raise g.fail(f"Conv input of shape {list(shape)} with weight {list(W.shape)}")
    conv = ConvSpec.from_attrs(attrs, shape, W.shape, g.fail)
    rows = x.A.shape[0] if isinstance(x, Sym) else 1
    padded = tuple(
        s + b + e for s, b, e in zip(shape[2:], conv.pads_begin, conv.pads_end, strict=True)
    )
    g.check_dense(rows, (*shape[:2], *padded), "padding this Conv's input")
    out_shape = (shape[0], W.shape[0], *conv.out_spatial)
    g.check_dense(rows, out_shape, "folding this Conv into an affine map")
    if isinstance(x, Sym):
        out = apply_map(x, lambda t: conv.apply(t, W))
        if bias is not None:
            out = Sym(
                A=out.A,
                c=out.c + bias.reshape((-1,) + (1,) * (len(shape) - 2)),
                epoch=out.epoch,
            )
        return [out]
    y = conv.apply(np.asarray(x, dtype=np.float64)[None], W)[0]
    if bias is not None:
        y = y + bias.reshape((-1,) + (1,) * (len(shape) - 2))
    return [y]


CONV_OPS: dict[str, Handler] = {"Conv": op_conv}
