"""Reading a sequential ONNX graph into a piecewise-linear :class:`Network`.

:func:`load_network` reads any sequential ONNX graph built from the ops in :data:`HANDLERS`
(Gemm, MatMul, Add, Sub, Mul, Div, Neg, Relu, Clip, Conv, BatchNormalization, Flatten, Reshape,
Squeeze, Unsqueeze, Transpose, Identity, Dropout, Constant, and Shape/Gather/Concat/Cast on
constants) into a :class:`Network` (a tuple of ``Affine``, ``Relu`` and ``Clip`` layers over the
flattened input) and checks the IR against onnxruntime before returning it.

How the graph is read: every tensor that depends on the input is kept *symbolically* as an affine
function ``A·h + c`` of the output ``h`` of the last nonlinearity (at first, of the input), see
:mod:`robustprop.verify.engine.network.symbolic`. Linear ops update ``A`` and ``c``, so
consecutive affine maps are composed on the way; Relu and Clip emit the pending map as one
``Affine`` layer followed by the nonlinearity. Tensors that do not depend on the input
(initializers, Constant nodes and what is computed from them) are plain numpy arrays.
Symbolic batch dimensions are read as 1. The op handlers live in the ``ops_*`` modules.

onnx is imported inside the functions that need it, so that worker processes which only
evaluate or encode a :class:`Network` do not pay for it.
"""

from __future__ import annotations

import hashlib
import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from robustprop.properties.errors import InputError
from robustprop.verify.engine.network.ir import Network
from robustprop.verify.engine.network.onnxruntime_check import check_against_onnxruntime
from robustprop.verify.engine.network.ops_activation import ACTIVATION_OPS
from robustprop.verify.engine.network.ops_affine import AFFINE_OPS
from robustprop.verify.engine.network.ops_conv import CONV_OPS
from robustprop.verify.engine.network.ops_shape import SHAPE_OPS
from robustprop.verify.engine.network.softmax import SOFTMAX_OPS, final_softmax, softmax_hint
from robustprop.verify.engine.network.symbolic import (
    MAX_DENSE,
    MAX_NODES,
    GraphState,
    Handler,
    Sym,
    Value,
    value_bytes,
)

if TYPE_CHECKING:
    import onnx

__all__ = ["HANDLERS", "SUPPORTED_OPS", "GraphReader", "load_network", "network_from_bytes"]

log = logging.getLogger(__name__)

#: Every supported ONNX op (default domain) and its handler.
HANDLERS: dict[str, Handler] = {**SHAPE_OPS, **ACTIVATION_OPS, **AFFINE_OPS, **CONV_OPS}

#: The supported ops' names, sorted (for messages, ``verify run --help`` and the README).
SUPPORTED_OPS: tuple[str, ...] = tuple(sorted(HANDLERS))

_FLOAT_TYPES = {1: np.float32, 10: np.float16, 11: np.float64}


def load_network(
    path: str | Path,
    *,
    check_box: tuple[npt.ArrayLike, npt.ArrayLike] | None = None,
    check_points: int = 8,
    seed: int = 0,
) -> Network:
    """Read an ONNX file into a :class:`Network` and check it against onnxruntime.

    ``check_box`` (lower, upper) is where the random check inputs are drawn; default ``[0, 1]``
    per feature. ``check_points = 0`` skips the check.

    Raises:
        InputError: unreadable or unsupported model (the message names file, op and node).
        InternalError: the IR disagrees with onnxruntime on a check input.
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as err:
        raise InputError(f"cannot read ONNX model {p}: {err.strerror or err}") from err
    return network_from_bytes(
        data, source=str(p), check_box=check_box, check_points=check_points, seed=seed
    )


def network_from_bytes(
    data: bytes,
    *,
    source: str = "<model>",
    check_box: tuple[npt.ArrayLike, npt.ArrayLike] | None = None,
    check_points: int = 8,
    seed: int = 0,
) -> Network:
    """Like :func:`load_network`, for model bytes; ``source`` names the model in messages."""
    import onnx

    try:
        model = onnx.load_model_from_string(data)
    except Exception as err:  # protobuf's DecodeError and onnx's own errors
        raise InputError(f"{source} is not a readable ONNX model: {err}") from err
    if not model.graph.node and not model.graph.output:
        raise InputError(f"{source} is not a readable ONNX model: empty graph")
    net = GraphReader(model, source, hashlib.sha256(data).hexdigest()).read()
    if check_points > 0:
        if check_box is None:
            lo, hi = np.zeros(net.n), np.ones(net.n)
        else:
            lo = np.broadcast_to(np.asarray(check_box[0], dtype=np.float64), (net.n,))
            hi = np.broadcast_to(np.asarray(check_box[1], dtype=np.float64), (net.n,))
        check_against_onnxruntime(net, data, lo, hi, points=check_points, seed=seed)
    return net


class GraphReader(GraphState):
    """Reads one ONNX model, node by node, into a :class:`Network`."""

    def __init__(self, model: onnx.ModelProto, source: str, sha256: str) -> None:
        opset = 1
        for imp in model.opset_import:
            if imp.domain in ("", "ai.onnx"):
                opset = int(imp.version)
        super().__init__(source, opset)
        self.model = model
        self.graph = model.graph
        self.sha256 = sha256

    def read(self) -> Network:
        if len(self.graph.node) > MAX_NODES:
            raise InputError(
                f"{self.source}: the graph has {len(self.graph.node)} nodes (at most "
                f"{MAX_NODES}, MAX_NODES)"
            )
        for init in self.graph.initializer:
            self._store(init.name, self.tensor(init, "initializer"), "an initializer")
        real_inputs = [i for i in self.graph.input if i.name not in self.values]
        if len(real_inputs) != 1:
            names = ", ".join(repr(i.name) for i in real_inputs) or "none"
            raise InputError(
                f"{self.source} must have exactly one real (non-initializer) input, has {names}"
            )
        inp = real_inputs[0]
        in_shape = self._value_shape(inp, "input")
        n = math.prod(in_shape)
        if n * n > MAX_DENSE:
            raise InputError(
                f"{self.source}: input {inp.name!r} has {n} values; at most "
                f"{math.isqrt(MAX_DENSE)} are supported"
            )
        self._store(
            inp.name,
            Sym(A=np.eye(n).reshape((n, *in_shape)), c=np.zeros(in_shape), epoch=0),
            "the input",
        )
        if len(self.graph.output) != 1:
            names = ", ".join(repr(o.name) for o in self.graph.output) or "none"
            raise InputError(f"{self.source} must have exactly one output, has {names}")

        last_use: dict[str, int] = {}
        for index, node in enumerate(self.graph.node):
            for name in node.input:
                last_use[name] = index
        keep = {o.name for o in self.graph.output}
        for index, node in enumerate(self.graph.node):
            self.node_label = repr(node.name) if node.name else f"#{index} ({node.op_type})"
            self._node(node)
            for name in set(node.input):  # free what no later node reads
                if last_use.get(name) == index and name not in keep and name in self.values:
                    self.live_bytes -= value_bytes(self.values.pop(name))

        out_name = self.graph.output[0].name
        out = self.values.get(out_name)
        if not isinstance(out, Sym):
            raise InputError(
                f"{self.source}: output {out_name!r} "
                + ("is never computed" if out is None else "does not depend on the input")
            )
        if out.epoch != self.epoch:
            raise InputError(
                f"{self.source}: output {out_name!r} bypasses a nonlinearity "
                "(not a sequential feed-forward network)"
            )
        self.emit_affine(out)
        net = Network(
            layers=tuple(self.layers),
            n=n,
            m=math.prod(out.shape),
            input_shape=in_shape,
            output_shape=out.shape,
            sha256=self.sha256,
            source=self.source,
        )
        log.info(
            "read %s: %d inputs, %d outputs, layers %s",
            self.source,
            net.n,
            net.m,
            " ".join(type(layer).__name__ for layer in net.layers),
        )
        return net

    def _value_shape(self, info: onnx.ValueInfoProto, what: str) -> tuple[int, ...]:
        ttype = info.type.tensor_type
        if ttype.elem_type not in _FLOAT_TYPES:
            raise InputError(
                f"{self.source}: {what} {info.name!r} has element type {ttype.elem_type}, "
                "expected a floating-point tensor"
            )
        dims: list[int] = []
        for axis, dim in enumerate(ttype.shape.dim):
            if dim.HasField("dim_value") and dim.dim_value > 0:
                dims.append(int(dim.dim_value))
            elif axis == 0:
                dims.append(1)  # symbolic batch dimension
            else:
                raise InputError(
                    f"{self.source}: {what} {info.name!r} has a symbolic dimension "
                    f"{dim.dim_param or '?'!r} at axis {axis}; only the batch axis may be symbolic"
                )
        return tuple(dims)

    # -- nodes --------------------------------------------------------------------------------

    def _attrs(self, node: onnx.NodeProto) -> dict[str, Any]:
        from onnx import helper

        return {a.name: helper.get_attribute_value(a) for a in node.attribute}

    def _node(self, node: onnx.NodeProto) -> None:
        if node.domain not in ("", "ai.onnx"):
            raise self.fail(
                f"unsupported ONNX op '{node.domain}.{node.op_type}'",
                f"supported: the default domain's {', '.join(SUPPORTED_OPS)}",
            )
        handler = HANDLERS.get(node.op_type)
        if handler is None:
            final = final_softmax(self.model) if node.op_type in SOFTMAX_OPS else None
            if final is not None and list(final.output) == list(node.output):
                hint = softmax_hint(node.op_type)
            else:
                hint = f"supported: {', '.join(SUPPORTED_OPS)}"
            raise self.fail(f"unsupported ONNX op '{node.op_type}'", hint)
        attrs = self._attrs(node)
        inputs = list(node.input)
        self._check_finite(node, inputs)
        try:
            outputs = handler(self, node, inputs, attrs)
        except InputError:
            raise
        # numpy's answer to operands that do not fit (shapes, axes, indices, dtypes): the
        # model is inconsistent, which is the user's input, not our fault.
        except (ValueError, IndexError, TypeError) as err:
            summary = " ".join(str(err).split())
            raise self.fail(
                f"op '{node.op_type}' cannot be applied to its operands ({summary})"
            ) from err
        for name, value in zip(node.output, outputs, strict=False):
            if name:
                self._check_output(node, name, value)
                self._store(name, value, f"its output {name!r}")

    def _store(self, name: str, value: Value, what: str) -> None:
        """Hold ``value`` under ``name``, within :data:`MAX_READ_BYTES`."""
        size = value_bytes(value)
        old = self.values.get(name)
        self.check_memory(size - (0 if old is None else value_bytes(old)), what)
        if old is not None:
            self.live_bytes -= value_bytes(old)
        self.values[name] = value
        self.live_bytes += size

    def _check_output(self, node: onnx.NodeProto, name: str, value: Value) -> None:
        """Refuse an op whose result has NaN or infinite values (a division by zero, an
        overflow): the IR would carry them as weights."""
        arrays = (value.A, value.c) if isinstance(value, Sym) else (np.asarray(value),)
        for array in arrays:
            if array.dtype.kind in "fc" and not np.all(np.isfinite(array)):
                raise self.fail(
                    f"op '{node.op_type}' produces non-finite values (NaN or inf) in {name!r}"
                )

    def _check_finite(self, node: onnx.NodeProto, inputs: list[str]) -> None:
        """Refuse NaN or infinite constant operands (weights, biases); only Clip's bounds
        may be infinite (a missing bound)."""
        for position, name in enumerate(inputs):
            if not name or (node.op_type == "Clip" and position > 0):
                continue
            value = self.values.get(name)
            if value is None or isinstance(value, Sym):
                continue
            array = np.asarray(value)
            if array.dtype.kind not in "fc":
                continue
            bad = int(array.size - np.count_nonzero(np.isfinite(array)))
            if bad:
                raise self.fail(
                    f"operand {name!r} of op '{node.op_type}' has {bad} non-finite "
                    "value(s) (NaN or inf)"
                )
