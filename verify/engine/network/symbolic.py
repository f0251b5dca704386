"""The ONNX reader's symbolic tensors and the state the op handlers work on.

Every tensor that depends on the input is a :class:`Sym`: an affine function ``A·h + c`` of the
output ``h`` of the last nonlinearity (at first, of the input). Linear ops update ``A`` and
``c``; a nonlinearity (:meth:`GraphState.nonlinear`) emits the pending map as one
:class:`~robustprop.verify.engine.network.ir.Affine` layer followed by the nonlinearity and
starts a new ``h``. Tensors that do not depend on the input are plain numpy arrays.
:class:`GraphState` holds the layers emitted so far, the values by tensor name and the node
being read (for error messages); a :data:`Handler` maps one node's inputs to its outputs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from robustprop.properties.errors import InputError
from robustprop.verify.engine.network.ir import Affine, Array, Clip, FloatArray, Layer, Relu

if TYPE_CHECKING:
    import onnx

__all__ = [
    "MAX_DENSE",
    "MAX_NODES",
    "MAX_READ_BYTES",
    "MAX_TENSOR_VALUES",
    "GraphState",
    "Handler",
    "Sym",
    "Value",
    "apply_map",
    "broadcast",
    "reshape",
    "value_bytes",
]

# What reading a model may allocate. A model is untrusted input: a few kB of graph can ask for
# terabytes (a Concat doubling a constant 40 times, a broadcast of (n, 1) + (1, n), a Conv padded
# by 10**6), so every op checks the size of what it would build *before* building it, and the
# reader checks what it holds after every node.

#: Largest dense map (entries) the reader folds Conv / broadcasts into: 400 MB of float64.
MAX_DENSE = 50_000_000
#: Most values of one constant tensor: an initializer, a Constant node or a folded constant.
MAX_TENSOR_VALUES = 50_000_000
#: Most bytes the reader holds at once: live tensors and the layers emitted so far (2 GiB).
MAX_READ_BYTES = 2 * 1024**3
#: Most nodes in a graph.
MAX_NODES = 100_000


@dataclass(frozen=True, eq=False)
class Sym:
    """A tensor depending on the input: ``value = tensordot(h, A, 1) + c``.

    ``A`` has shape ``(k,) + shape`` (one slice per component of ``h``), ``c`` has ``shape``;
    ``epoch`` counts the nonlinearities emitted before ``h``.
    """

    A: FloatArray
    c: FloatArray
    epoch: int

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.c.shape)


Value = Sym | Array


def value_bytes(value: Value) -> int:
    """Bytes a value stands for (a broadcast view counts at its full size: an upper bound)."""
    if isinstance(value, Sym):
        return int(value.A.nbytes + value.c.nbytes)
    return int(np.asarray(value).nbytes)


def apply_map(sym: Sym, fn: Callable[[Array], Array]) -> Sym:
    """Apply a linear, batch-aware map ``fn`` (leading axis = batch) to a symbolic tensor."""
    A = fn(sym.A)
    c = fn(sym.c[None, ...])[0]
    return Sym(
        A=np.asarray(A, dtype=np.float64), c=np.asarray(c, dtype=np.float64), epoch=sym.epoch
    )


def broadcast(sym: Sym, shape: tuple[int, ...]) -> Sym:
    """``sym`` broadcast to ``shape`` (numpy rules)."""
    k = sym.A.shape[0]
    rank_gap = len(shape) - len(sym.shape)
    A = sym.A.reshape((k,) + (1,) * rank_gap + sym.shape) if rank_gap > 0 else sym.A
    return Sym(A=np.broadcast_to(A, (k, *shape)), c=np.broadcast_to(sym.c, shape), epoch=sym.epoch)


def reshape(x: Value, new: tuple[int, ...]) -> Value:
    """``x`` reshaped to ``new`` (symbolic or constant)."""
    if isinstance(x, Sym):
        k = x.A.shape[0]
        return Sym(A=x.A.reshape((k, *new)), c=x.c.reshape(new), epoch=x.epoch)
    return np.reshape(x, new)


class GraphState:
    """What the op handlers read and write while one ONNX graph is read."""

    def __init__(self, source: str, opset: int) -> None:
        self.source = source
        self.opset = opset
        self.layers: list[Layer] = []
        self.epoch = 0
        self.values: dict[str, Value] = {}
        self.node_label = ""
        self.live_bytes = 0  # bytes of the tensors in ``values``
        self.layer_bytes = 0  # bytes of the affine layers emitted

    # -- errors -----------------------------------------------------------------------------

    def fail(self, message: str, hint: str = "") -> InputError:
        """``message`` with the node and the file, then ``hint`` (what to do), if any."""
        tail = f"; {hint}" if hint else ""
        if not self.node_label:
            return InputError(f"{self.source}: {message}{tail}")
        return InputError(f"{message} at node {self.node_label} in {self.source}{tail}")

    # -- values -----------------------------------------------------------------------------

    def get(self, name: str) -> Value:
        if name not in self.values:
            raise self.fail(f"input tensor {name!r} is not available")
        return self.values[name]

    def const(self, name: str, what: str) -> Array:
        v = self.get(name)
        if isinstance(v, Sym):
            raise self.fail(f"{what} {name!r} must be constant (initializer or Constant node)")
        return v

    # -- the nonlinearity boundary ------------------------------------------------------------

    def emit_affine(self, sym: Sym) -> None:
        k = sym.A.shape[0]
        W = sym.A.reshape(k, -1).T
        b = sym.c.reshape(-1)
        if W.shape[0] == W.shape[1] and np.array_equal(W, np.eye(k)) and not np.any(b):
            return
        self.check_memory(int(W.size + b.size) * 8, "the affine layer emitted here")
        layer = Affine(W=np.ascontiguousarray(W, dtype=np.float64), b=b.copy())
        self.layers.append(layer)
        self.layer_bytes += int(layer.W.nbytes + layer.b.nbytes)

    def check_dense(self, rows: int, shape: tuple[int, ...], what: str) -> None:
        entries = rows * math.prod(shape)
        if entries > MAX_DENSE:
            raise self.fail(
                f"{what} would need a dense {rows} x {math.prod(shape)} matrix "
                f"({entries:.3g} entries, at most {MAX_DENSE:.3g} supported)"
            )

    def check_values(self, count: int, what: str) -> None:
        """Refuse to build a constant of more than :data:`MAX_TENSOR_VALUES` values."""
        if count > MAX_TENSOR_VALUES:
            raise self.fail(
                f"{what} would have {count:.3g} values (at most {MAX_TENSOR_VALUES:.3g}, "
                "MAX_TENSOR_VALUES)"
            )

    def check_memory(self, extra: int, what: str) -> None:
        """Refuse to hold more than :data:`MAX_READ_BYTES` (with ``extra`` bytes about to be
        added by ``what``)."""
        total = self.live_bytes + self.layer_bytes + extra
        if total > MAX_READ_BYTES:
            raise self.fail(
                f"reading the model would hold {total / 2**30:.3g} GiB with {what} (at most "
                f"{MAX_READ_BYTES / 2**30:.3g} GiB, MAX_READ_BYTES)"
            )

    def tensor(self, proto: onnx.TensorProto, what: str) -> Array:
        """A TensorProto's values, refused if they live outside the model or are too many."""
        from onnx import TensorProto, numpy_helper

        if proto.data_location == TensorProto.EXTERNAL or len(proto.external_data):
            raise self.fail(
                f"{what} {proto.name!r} keeps its values in an external file; only "
                "self-contained models are read (no file outside the model is opened)"
            )
        dims = [int(d) for d in proto.dims]
        if any(d < 0 for d in dims):
            raise self.fail(f"{what} {proto.name!r} has negative dimensions {dims}")
        self.check_values(math.prod(dims), f"{what} {proto.name!r}")
        try:
            return np.asarray(numpy_helper.to_array(proto))
        except Exception as err:  # onnx raises several types for bad tensors
            raise self.fail(f"cannot read {what} {proto.name!r}: {err}") from err

    def nonlinear(self, sym: Sym, layer: Relu | Clip) -> Sym:
        self.current(sym)
        self.check_dense(math.prod(sym.shape), sym.shape, "the layer after this nonlinearity")
        self.emit_affine(sym)
        self.layers.append(layer)
        self.epoch += 1
        size = math.prod(sym.shape)
        return Sym(
            A=np.eye(size).reshape((size, *sym.shape)), c=np.zeros(sym.shape), epoch=self.epoch
        )

    def current(self, *syms: Sym) -> None:
        for s in syms:
            if s.epoch != self.epoch:
                raise self.fail(
                    "a tensor from before an earlier nonlinearity is used again "
                    "(not a sequential feed-forward network)"
                )


Handler = Callable[[GraphState, "onnx.NodeProto", list[str], dict[str, Any]], list[Value]]
"""An op: ``handler(state, node, input names, attributes) -> the node's output values``."""
