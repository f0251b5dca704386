"""Feed-forward ONNX networks as a piecewise-linear IR: affine maps, ReLU and Clip.

:func:`load_network` reads any sequential ONNX graph built from the ops in ``_HANDLERS`` (Gemm,
MatMul, Add, Sub, Mul, Div, Neg, Relu, Clip, Conv, BatchNormalization, Flatten, Reshape, Squeeze,
Unsqueeze, Transpose, Identity, Dropout, Constant, and Shape/Gather/Concat/Cast on constants) into a
:class:`Network` (a tuple of :class:`Affine`, :class:`Relu` and :class:`Clip` layers over the
flattened input) and checks the IR against onnxruntime before returning it.

How the graph is read: every tensor that depends on the input is kept *symbolically* as an affine
function ``A·h + c`` of the output ``h`` of the last nonlinearity (at first, of the input). Linear
ops (MatMul, Gemm, Add, Conv, BatchNormalization, reshapes, ...) update ``A`` and ``c``, so
consecutive affine maps are composed on the way; Relu and Clip emit the pending map as one
:class:`Affine` layer followed by the nonlinearity. Tensors that do not depend on the input
(initializers, Constant nodes and what is computed from them) are plain numpy arrays.
Symbolic batch dimensions are read as 1.

onnx and onnxruntime are imported inside the functions that need them, so that worker processes
which only evaluate or encode a :class:`Network` do not pay for them.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from robustprop.properties.errors import InputError, InternalError

if TYPE_CHECKING:
    import onnx

__all__ = [
    "Affine",
    "Clip",
    "Layer",
    "Network",
    "OnnxRunner",
    "load_network",
    "network_from_bytes",
]

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
Array = npt.NDArray[Any]

# Largest dense map (entries) the reader folds Conv / broadcasts into: 400 MB of float64.
_MAX_DENSE = 50_000_000

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


# --------------------------------------------------------------------------------------------
# onnxruntime


class OnnxRunner:
    """An onnxruntime session for one model, evaluating flattened inputs one point at a time."""

    def __init__(self, model_bytes: bytes, source: str) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(
                model_bytes, sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as err:  # onnxruntime raises its own exception classes
            raise InputError(f"onnxruntime cannot load {source}: {err}") from err
        real_inputs = self._session.get_inputs()
        if len(real_inputs) < 1:
            raise InputError(f"onnxruntime sees no input in {source}")
        # Initializers listed as inputs (ACAS Xu, tf2onnx) appear here too; the real input is
        # the first one without an initializer, which onnxruntime lists first.
        self._input = real_inputs[0]
        kinds: dict[str, type[np.floating[Any]]] = {
            "tensor(double)": np.float64,
            "tensor(float16)": np.float16,
        }
        self._dtype = kinds.get(self._input.type, np.float32)
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in self._input.shape]
        self._shape = tuple(shape)
        self.source = source

    @property
    def input_dtype(self) -> type[np.floating[Any]]:
        return self._dtype

    def evaluate(self, x: npt.ArrayLike) -> FloatArray:
        """Outputs for inputs in the model's own precision, returned as float64.

        Shape:
            x: (B, n) or (n,) -> (B, m).
        """
        xs = np.asarray(x, dtype=np.float64)
        if xs.ndim == 1:
            xs = xs[None, :]
        rows = []
        for row in xs:
            feed = row.astype(self._dtype).reshape(self._shape)
            (y,) = self._session.run(None, {self._input.name: feed})[:1]
            rows.append(np.asarray(y, dtype=np.float64).reshape(-1))
        return np.stack(rows)


# --------------------------------------------------------------------------------------------
# loading


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
    net = _GraphReader(model, source, hashlib.sha256(data).hexdigest()).read()
    if check_points > 0:
        if check_box is None:
            lo, hi = np.zeros(net.n), np.ones(net.n)
        else:
            lo = np.broadcast_to(np.asarray(check_box[0], dtype=np.float64), (net.n,))
            hi = np.broadcast_to(np.asarray(check_box[1], dtype=np.float64), (net.n,))
        check_against_onnxruntime(net, data, lo, hi, points=check_points, seed=seed)
    return net


def check_against_onnxruntime(
    net: Network,
    data: bytes,
    lower: FloatArray,
    upper: FloatArray,
    *,
    points: int = 8,
    seed: int = 0,
    rtol: float = 1e-4,
) -> None:
    """Compare the IR with onnxruntime on the box centre and ``points - 1`` random box points.

    Tolerance: ``rtol * max(1, max |y|)`` per point. Raises InternalError naming the model.
    """
    rng = np.random.default_rng(seed)
    lo = np.asarray(lower, dtype=np.float64)
    hi = np.asarray(upper, dtype=np.float64)
    xs = np.vstack([(lo + hi)[None, :] / 2.0, lo + (hi - lo) * rng.random((points - 1, net.n))])
    runner = OnnxRunner(data, net.source)
    y_ort = runner.evaluate(xs)
    if y_ort.shape[1] != net.m:
        raise InternalError(
            f"network IR of {net.source} has {net.m} outputs, onnxruntime gives {y_ort.shape[1]}"
        )
    # The IR is evaluated on the very inputs onnxruntime saw (after its dtype cast).
    y_ir = net.evaluate(xs.astype(runner.input_dtype).astype(np.float64))
    diff = np.abs(y_ir - y_ort)
    tol = rtol * np.maximum(1.0, np.max(np.abs(y_ort), axis=1, keepdims=True))
    if not np.all(diff <= tol):
        i, j = np.unravel_index(int(np.argmax(diff - tol)), diff.shape)
        raise InternalError(
            f"network IR of {net.source} disagrees with onnxruntime: output {j} is "
            f"{y_ir[i, j]!r} vs {y_ort[i, j]!r} at check point {i} (tolerance {tol[i, 0]:.3g})"
        )


# --------------------------------------------------------------------------------------------
# the graph reader


@dataclass(frozen=True, eq=False)
class _Sym:
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


Value = _Sym | Array

_FLOAT_TYPES = {1: np.float32, 10: np.float16, 11: np.float64}


class _GraphReader:
    def __init__(self, model: onnx.ModelProto, source: str, sha256: str) -> None:
        self.model = model
        self.graph = model.graph
        self.source = source
        self.sha256 = sha256
        self.opset = 1
        for imp in model.opset_import:
            if imp.domain in ("", "ai.onnx"):
                self.opset = int(imp.version)
        self.layers: list[Layer] = []
        self.epoch = 0
        self.values: dict[str, Value] = {}
        self.node_label = ""

    # -- errors -----------------------------------------------------------------------------

    def fail(self, message: str) -> InputError:
        return InputError(f"{message} at node {self.node_label} in {self.source}")

    # -- top level --------------------------------------------------------------------------

    def read(self) -> Network:
        from onnx import numpy_helper

        for init in self.graph.initializer:
            try:
                self.values[init.name] = numpy_helper.to_array(init)
            except Exception as err:  # onnx raises several types for bad tensors
                raise InputError(
                    f"{self.source}: cannot read initializer {init.name!r}: {err}"
                ) from err
        real_inputs = [i for i in self.graph.input if i.name not in self.values]
        if len(real_inputs) != 1:
            names = ", ".join(repr(i.name) for i in real_inputs) or "none"
            raise InputError(
                f"{self.source} must have exactly one real (non-initializer) input, has {names}"
            )
        inp = real_inputs[0]
        in_shape = self._value_shape(inp, "input")
        n = math.prod(in_shape)
        if n * n > _MAX_DENSE:
            raise InputError(
                f"{self.source}: input {inp.name!r} has {n} values; at most "
                f"{math.isqrt(_MAX_DENSE)} are supported"
            )
        self.values[inp.name] = _Sym(
            A=np.eye(n).reshape((n, *in_shape)), c=np.zeros(in_shape), epoch=0
        )
        if len(self.graph.output) != 1:
            names = ", ".join(repr(o.name) for o in self.graph.output) or "none"
            raise InputError(f"{self.source} must have exactly one output, has {names}")

        for index, node in enumerate(self.graph.node):
            self.node_label = repr(node.name) if node.name else f"#{index} ({node.op_type})"
            self._node(node)

        out_name = self.graph.output[0].name
        out = self.values.get(out_name)
        if not isinstance(out, _Sym):
            raise InputError(
                f"{self.source}: output {out_name!r} "
                + ("is never computed" if out is None else "does not depend on the input")
            )
        if out.epoch != self.epoch:
            raise InputError(
                f"{self.source}: output {out_name!r} bypasses a nonlinearity "
                "(not a sequential feed-forward network)"
            )
        self._emit_affine(out)
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

    # -- the nonlinearity boundary ------------------------------------------------------------

    def _emit_affine(self, sym: _Sym) -> None:
        k = sym.A.shape[0]
        W = sym.A.reshape(k, -1).T
        b = sym.c.reshape(-1)
        if W.shape[0] == W.shape[1] and np.array_equal(W, np.eye(k)) and not np.any(b):
            return
        self.layers.append(Affine(W=np.ascontiguousarray(W, dtype=np.float64), b=b.copy()))

    def _check_dense(self, rows: int, shape: tuple[int, ...], what: str) -> None:
        entries = rows * math.prod(shape)
        if entries > _MAX_DENSE:
            raise self.fail(
                f"{what} would need a dense {rows} x {math.prod(shape)} matrix "
                f"({entries:.3g} entries, at most {_MAX_DENSE:.3g} supported)"
            )

    def _nonlinear(self, sym: _Sym, layer: Relu | Clip) -> _Sym:
        self._current(sym)
        self._check_dense(math.prod(sym.shape), sym.shape, "the layer after this nonlinearity")
        self._emit_affine(sym)
        self.layers.append(layer)
        self.epoch += 1
        size = math.prod(sym.shape)
        return _Sym(
            A=np.eye(size).reshape((size, *sym.shape)), c=np.zeros(sym.shape), epoch=self.epoch
        )

    def _current(self, *syms: _Sym) -> None:
        for s in syms:
            if s.epoch != self.epoch:
                raise self.fail(
                    "a tensor from before an earlier nonlinearity is used again "
                    "(not a sequential feed-forward network)"
                )

    # -- helpers --------------------------------------------------------------------------------

    def _get(self, name: str) -> Value:
        if name not in self.values:
            raise self.fail(f"input tensor {name!r} is not available")
        return self.values[name]

    def _const(self, name: str, what: str) -> Array:
        v = self._get(name)
        if isinstance(v, _Sym):
            raise self.fail(f"{what} {name!r} must be constant (initializer or Constant node)")
        return v

    def _attrs(self, node: onnx.NodeProto) -> dict[str, Any]:
        from onnx import helper

        return {a.name: helper.get_attribute_value(a) for a in node.attribute}

    @staticmethod
    def _apply(sym: _Sym, fn: Callable[[Array], Array]) -> _Sym:
        """Apply a linear, batch-aware map ``fn`` (leading axis = batch) to a symbolic tensor."""
        A = fn(sym.A)
        c = fn(sym.c[None, ...])[0]
        return _Sym(
            A=np.asarray(A, dtype=np.float64), c=np.asarray(c, dtype=np.float64), epoch=sym.epoch
        )

    @staticmethod
    def _broadcast(sym: _Sym, shape: tuple[int, ...]) -> _Sym:
        k = sym.A.shape[0]
        rank_gap = len(shape) - len(sym.shape)
        A = sym.A.reshape((k,) + (1,) * rank_gap + sym.shape) if rank_gap > 0 else sym.A
        return _Sym(
            A=np.broadcast_to(A, (k, *shape)), c=np.broadcast_to(sym.c, shape), epoch=sym.epoch
        )

    # -- nodes ----------------------------------------------------------------------------------

    def _node(self, node: onnx.NodeProto) -> None:
        if node.domain not in ("", "ai.onnx"):
            raise self.fail(f"unsupported ONNX op '{node.domain}.{node.op_type}'")
        handler = _HANDLERS.get(node.op_type)
        if handler is None:
            raise self.fail(f"unsupported ONNX op '{node.op_type}'")
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
                self.values[name] = value

    def _check_finite(self, node: onnx.NodeProto, inputs: list[str]) -> None:
        """Refuse NaN or infinite constant operands (weights, biases); only Clip's bounds
        may be infinite (a missing bound)."""
        for position, name in enumerate(inputs):
            if not name or (node.op_type == "Clip" and position > 0):
                continue
            value = self.values.get(name)
            if value is None or isinstance(value, _Sym):
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

    def _all_const(self, inputs: Sequence[str]) -> bool:
        return all(not isinstance(self.values.get(i), _Sym) for i in inputs if i)

    # each handler returns the node's output values (in order)

    def op_constant(
        self, node: onnx.NodeProto, inputs: list[str], attrs: dict[str, Any]
    ) -> list[Value]:
        from onnx import numpy_helper

        if "value" in attrs:
            return [numpy_helper.to_array(attrs["value"])]
        for key in ("value_float", "value_int"):
            if key in attrs:
                return [np.asarray(attrs[key])]
        for key in ("value_floats", "value_ints"):
            if key in attrs:
                return [np.asarray(list(attrs[key]))]
        raise self.fail("unsupported Constant attribute " + ",".join(attrs) + " for op 'Constant'")

    def op_identity(
        self, node: onnx.NodeProto, inputs: list[str], attrs: dict[str, Any]
    ) -> list[Value]:
        return [self._get(inputs[0])]

    def op_relu(
        self, node: onnx.NodeProto, inputs: list[str], attrs: dict[str, Any]
    ) -> list[Value]:
        x = self._get(inputs[0])
        if isinstance(x, _Sym):
            return [self._nonlinear(x, Relu())]
        return [np.maximum(x, 0)]

    def op_clip(
        self, node: onnx.NodeProto, inputs: list[str], attrs: dict[str, Any]
    ) -> list[Value]:
        lo, hi = -math.inf, math.inf
        if self.opset < 11:
            lo = float(attrs.get("min", -math.inf))
            hi = float(attrs.get("max", math.inf))
        else:
            if len(inputs) > 1 and inputs[1]:
                lo = float(self._const(inputs[1], "Clip min").reshape(-1)[0])
            if len(inputs) > 2 and inputs[2]:
                hi = float(self._const(inputs[2], "Clip max").reshape(-1)[0])
        if math.isnan(lo) or math.isnan(hi):
            raise self.fail(f"Clip bound is NaN (min {lo}, max {hi})")
        if lo > hi:
            raise self.fail(f"Clip min {lo} exceeds max {hi}")
        x = self._get(inputs[0])
        if not isinstance(x, _Sym):
            return [np.clip(x, lo, hi)]
        if lo == -math.inf and hi == math.inf:
            return [x]
        if lo == 0.0 and hi == math.inf:
            return [self._nonlinear(x, Relu())]
        return [self._nonlinear(x, Clip(lo, hi))]

    def op_dropout(
        self, node: onnx.NodeProto, inputs: list[str], attrs: dict[str, Any]
    ) -> list[Value]:
        return [self._get(inputs[0])]

    def op_shape(
        self, node: onnx.NodeProto, inputs: list[str], attrs: dict[str, Any]
    ) -> list[Value]:
        x = self._get(inputs[0])
        shape = np.asarray(x.shape if isinstance(x, _Sym) else np.shape(x), dtype=np.int64)
        start = int(attrs.get("start", 0))
        end = attrs.get("end")
        return [shape[start : None if end is None else int(end)]]

    def op_cast(
        self, node: onnx.NodeProto, inputs: list[str], attrs: dict[str, Any]
    ) -> list[Value]:
        from onnx import helper

        x = self._get(inputs[0])
        dtype = helper.tensor_dtype_to_np_dtype(int(attrs["to"]))
        if isinstance(x, _Sym):
            if np.dtype(dtype).kind != "f":
                raise self.fail(f"Cast of the network's activations to {dtype} is not supported")
            return [x]
        return [x.astype(dtype)]

    def op_gather(
        self, node: onnx.NodeProto, inputs: list[str], attrs: dict[str, Any]
    ) -> list[Value]:
        data = self._get(inputs[0])
        idx = self._const(inputs[1], "Gather indices").astype(np.int64)
        axis = int(attrs.get("axis", 0))
        if isinstance(data, _Sym):
            ax = axis % len(data.shape)
            return [self._apply(data, lambda t: np.take(t, idx, axis=ax + 1))]
        return [np.take(data, idx, axis=axis)]

    def op_concat(
        self, node: onnx.NodeProto, inputs: list[str], attrs: dict[str, Any]
    ) -> list[Value]:
        if not self._all_const(inputs):
            raise self.fail("Concat of the network's activations is not supported")
        parts = [self._const(i, "Concat input") for i in inputs if i]
        return [np.concatenate(parts, axis=int(attrs.get("axis", 0)))]

    def op_flatten(
        self, node: onnx.NodeProto, inputs: list[str], attrs: dict[str, Any]
    ) -> list[Value]:
        x = self._get(inputs[0])
        shape = x.shape if isinstance(x, _Sym) else np.shape(x)
        axis = int(attrs.get("axis", 1)) % (len(shape) + 1) if shape else 0
        new = (math.prod(shape[:axis]), math.prod(shape[axis:]))
        return [self._reshape(x, new)]

    def _reshape(self, x: Value, new: tuple[int, ...]) -> Value:
        if isinstance(x, _Sym):
            k = x.A.shape[0]
            return _Sym(A=x.A.reshape((k, *new)), c=x.c.reshape(new), epoch=x.epoch)
        return np.reshape(x, new)

    def op_reshape(
        self, node: onnx.NodeProto, inputs: list[str], attrs: dict[str, Any]
    ) -> list[Value]:
        x = self._get(inputs[0])
        if len(inputs) > 1:
            target = [int(v) for v in self._const(inputs[1], "Reshape shape").reshape(-1)]
        else:
            target = [int(v) for v in attrs.get("shape", [])]
        shape = x.shape if isinstance(x, _Sym) else np.shape(x)
        if not int(attrs.get("allowzero", 0)):
            target = [shape[i] if v == 0 and i < len(shape) else v for i, v in enumerate(target)]
        if target.count(-1) > 1:
            raise self.fail(f"Reshape target {target} has more than one -1")
        if -1 in target:
            known = math.prod(v for v in target if v != -1)
            target[target.index(-1)] = math.prod(shape) // known if known else 0
        if math.prod(target) != math.prod(shape):
            raise self.fail(f"Reshape of shape {list(shape)} to {target} changes the size")
        return [self._reshape(x, tuple(target))]

    def _axes(self, inputs: list[str], attrs: dict[str, Any], name: str) -> list[int] | None:
        if len(inputs) > 1 and inputs[1]:
            return [int(a) for a in self._const(inputs[1], f"{name} axes").reshape(-1)]
        if "axes" in attrs:
            return [int(a) for a in attrs["axes"]]
        return None

    def op_squeeze(
        self, node: onnx.NodeProto, inputs: list[str], attrs: dict[str, Any]
    ) -> list[Value]:
        x = self._get(inputs[0])
        shape = x.shape if isinstance(x, _Sym) else np.shape(x)
        axes = self._axes(inputs, attrs, "Squeeze")
        if axes is None:
            axes = [i for i, d in enumerate(shape) if d == 1]
        axes = [a % len(shape) for a in axes]
        if any(shape[a] != 1 for a in axes):
            raise self.fail(f"Squeeze of axes {axes} of shape {list(shape)}")
        new = tuple(d for i, d in enumerate(shape) if i not in axes)
        return [self._reshape(x, new)]

    def op_unsqueeze(
        self, node: onnx.NodeProto, inputs: list[str], attrs: dict[str, Any]
    ) -> list[Value]:
        x = self._get(inputs[0])
        shape = list(x.shape if isinstance(x, _Sym) else np.shape(x))
        axes = self._axes(inputs, attrs, "Unsqueeze")
        if axes is None:
            raise self.fail("Unsqueeze without axes")
        rank = len(shape) + len(axes)
        for a in sorted(ax % rank for ax in axes):
            shape.insert(a, 1)
        return [self._reshape(x, tuple(shape))]

    def op_transpose(
        self, node: onnx.NodeProto, inputs: list[str], attrs: dict[str, Any]
    ) -> list[Value]:
        x = self._get(inputs[0])
        rank = len(x.shape if isinstance(x, _Sym) else np.shape(x))
        perm = [int(p) for p in attrs.get("perm", list(range(rank))[::-1])]
        if isinstance(x, _Sym):
            return [self._apply(x, lambda t: np.transpose(t, [0] + [p + 1 for p in perm]))]
        return [np.transpose(x, perm)]

    def op_neg(self, node: onnx.NodeProto, inputs: list[str], attrs: dict[str, Any]) -> list[Value]:
        x = self._get(inputs[0])
        if isinstance(x, _Sym):
            return [_Sym(A=-x.A, c=-x.c, epoch=x.epoch)]
        return [-x]

    def op_add(self, node: onnx.NodeProto, inputs: list[str], attrs: dict[str, Any]) -> list[Value]:
        return [self._add_sub(inputs, sign=1.0)]

    def op_sub(self, node: onnx.NodeProto, inputs: list[str], attrs: dict[str, Any]) -> list[Value]:
        return [self._add_sub(inputs, sign=-1.0)]

    def _add_sub(self, inputs: list[str], sign: float) -> Value:
        a, b = self._get(inputs[0]), self._get(inputs[1])
        if not isinstance(a, _Sym) and not isinstance(b, _Sym):
            return a + b if sign > 0 else a - b
        shape_a = a.shape if isinstance(a, _Sym) else np.shape(a)
        shape_b = b.shape if isinstance(b, _Sym) else np.shape(b)
        try:
            shape = tuple(np.broadcast_shapes(shape_a, shape_b))
        except ValueError as err:
            raise self.fail(f"shapes {list(shape_a)} and {list(shape_b)} do not broadcast") from err
        sym = a if isinstance(a, _Sym) else b
        assert isinstance(sym, _Sym)
        self._check_dense(sym.A.shape[0], shape, "this broadcast")
        if isinstance(a, _Sym) and isinstance(b, _Sym):
            self._current(a, b)
            sa, sb = self._broadcast(a, shape), self._broadcast(b, shape)
            return _Sym(A=sa.A + sign * sb.A, c=sa.c + sign * sb.c, epoch=a.epoch)
        if isinstance(a, _Sym):
            sa = self._broadcast(a, shape)
            const = np.asarray(b, dtype=np.float64)
            return _Sym(A=sa.A, c=sa.c + sign * const, epoch=a.epoch)
        assert isinstance(b, _Sym)
        sb = self._broadcast(b, shape)
        const = np.asarray(a, dtype=np.float64)
        return _Sym(A=sign * sb.A, c=const + sign * sb.c, epoch=b.epoch)

    def op_mul(self, node: onnx.NodeProto, inputs: list[str], attrs: dict[str, Any]) -> list[Value]:
        return [self._scale(inputs, divide=False)]

    def op_div(self, node: onnx.NodeProto, inputs: list[str], attrs: dict[str, Any]) -> list[Value]:
        return [self._scale(inputs, divide=True)]

    def _scale(self, inputs: list[str], divide: bool) -> Value:
        a, b = self._get(inputs[0]), self._get(inputs[1])
        if not isinstance(a, _Sym) and not isinstance(b, _Sym):
            return a / b if divide else a * b
        if isinstance(b, _Sym):
            if divide or isinstance(a, _Sym):
                raise self.fail(
                    "a product or quotient of two input-dependent tensors (not piecewise linear)"
                )
            a, b = b, a
        assert isinstance(a, _Sym) and not isinstance(b, _Sym)
        factor = np.asarray(b, dtype=np.float64)
        if divide:
            factor = 1.0 / factor
        try:
            shape = tuple(np.broadcast_shapes(a.shape, factor.shape))
        except ValueError as err:
            raise self.fail(
                f"shapes {list(a.shape)} and {list(factor.shape)} do not broadcast"
            ) from err
        sa = self._broadcast(a, shape)
        return _Sym(A=sa.A * factor, c=sa.c * factor, epoch=a.epoch)

    def op_matmul(
        self, node: onnx.NodeProto, inputs: list[str], attrs: dict[str, Any]
    ) -> list[Value]:
        a, b = self._get(inputs[0]), self._get(inputs[1])
        return [self._matmul(a, b)]

    def _matmul(self, a: Value, b: Value) -> Value:
        if not isinstance(a, _Sym) and not isinstance(b, _Sym):
            return np.asarray(np.matmul(a, b))
        if isinstance(a, _Sym) and isinstance(b, _Sym):
            raise self.fail("a product of two input-dependent tensors (not piecewise linear)")
        if isinstance(a, _Sym):
            W = np.asarray(b, dtype=np.float64)
            if W.ndim <= 2 and len(a.shape) >= 1:
                return self._apply(a, lambda t: np.matmul(t, W))
            return self._apply(a, lambda t: np.stack([np.matmul(s, W) for s in t]))
        assert isinstance(b, _Sym)
        W = np.asarray(a, dtype=np.float64)
        if len(b.shape) == 1 and W.ndim <= 2:
            return self._apply(b, lambda t: np.matmul(t, W.T))
        if len(b.shape) >= 2 and W.ndim <= 2:
            return self._apply(b, lambda t: np.matmul(W, t))
        return self._apply(b, lambda t: np.stack([np.matmul(W, s) for s in t]))

    def op_gemm(
        self, node: onnx.NodeProto, inputs: list[str], attrs: dict[str, Any]
    ) -> list[Value]:
        a, b = self._get(inputs[0]), self._get(inputs[1])
        alpha = float(attrs.get("alpha", 1.0))
        beta = float(attrs.get("beta", 1.0))
        a = self._transpose2d(a) if int(attrs.get("transA", 0)) else a
        b = self._transpose2d(b) if int(attrs.get("transB", 0)) else b
        prod = self._matmul(a, b)
        if alpha != 1.0:
            prod = self._times(prod, alpha)
        if len(inputs) > 2 and inputs[2]:
            bias = np.asarray(self._const(inputs[2], "Gemm C"), dtype=np.float64) * beta
            if isinstance(prod, _Sym):
                shape = tuple(np.broadcast_shapes(prod.shape, bias.shape))
                sp = self._broadcast(prod, shape)
                prod = _Sym(A=sp.A, c=sp.c + bias, epoch=sp.epoch)
            else:
                prod = prod + bias
        return [prod]

    @staticmethod
    def _times(x: Value, factor: float) -> Value:
        if isinstance(x, _Sym):
            return _Sym(A=x.A * factor, c=x.c * factor, epoch=x.epoch)
        return x * factor

    def _transpose2d(self, x: Value) -> Value:
        if isinstance(x, _Sym):
            if len(x.shape) != 2:
                raise self.fail(f"Gemm operand of shape {list(x.shape)} (expected 2-D)")
            return self._apply(x, lambda t: np.swapaxes(t, 1, 2))
        return np.asarray(x).T

    def op_batchnorm(
        self, node: onnx.NodeProto, inputs: list[str], attrs: dict[str, Any]
    ) -> list[Value]:
        x = self._get(inputs[0])
        scale, bias, mean, var = (
            np.asarray(self._const(name, "BatchNormalization parameter"), dtype=np.float64)
            for name in inputs[1:5]
        )
        eps = float(attrs.get("epsilon", 1e-5))
        shape = x.shape if isinstance(x, _Sym) else np.shape(x)
        if len(shape) < 2:
            raise self.fail(f"BatchNormalization of shape {list(shape)} (expected N x C x ...)")
        bshape = (shape[1],) + (1,) * (len(shape) - 2)
        factor = (scale / np.sqrt(var + eps)).reshape(bshape)
        shift = (bias - mean * factor.reshape(-1)).reshape(bshape)
        if isinstance(x, _Sym):
            return [_Sym(A=x.A * factor, c=x.c * factor + shift, epoch=x.epoch)]
        return [x * factor + shift]

    def op_conv(
        self, node: onnx.NodeProto, inputs: list[str], attrs: dict[str, Any]
    ) -> list[Value]:
        x = self._get(inputs[0])
        W = np.asarray(self._const(inputs[1], "Conv weight"), dtype=np.float64)
        bias = (
            np.asarray(self._const(inputs[2], "Conv bias"), dtype=np.float64)
            if len(inputs) > 2 and inputs[2]
            else None
        )
        shape = x.shape if isinstance(x, _Sym) else tuple(np.shape(x))
        if len(shape) != W.ndim:
            raise self.fail(f"Conv input of shape {list(shape)} with weight {list(W.shape)}")
        conv = _ConvSpec.from_attrs(attrs, shape, W.shape, self.fail)
        if isinstance(x, _Sym):
            out_shape = (shape[0], W.shape[0], *conv.out_spatial)
            self._check_dense(x.A.shape[0], out_shape, "folding this Conv into an affine map")
        if isinstance(x, _Sym):
            out = self._apply(x, lambda t: conv.apply(t, W))
            if bias is not None:
                out = _Sym(
                    A=out.A,
                    c=out.c + bias.reshape((-1,) + (1,) * (len(shape) - 2)),
                    epoch=out.epoch,
                )
            return [out]
        y = conv.apply(np.asarray(x, dtype=np.float64)[None], W)[0]
        if bias is not None:
            y = y + bias.reshape((-1,) + (1,) * (len(shape) - 2))
        return [y]


_Handler = Callable[[_GraphReader, "onnx.NodeProto", list[str], dict[str, Any]], list[Value]]

_HANDLERS: dict[str, _Handler] = {
    "Constant": _GraphReader.op_constant,
    "Identity": _GraphReader.op_identity,
    "Dropout": _GraphReader.op_dropout,
    "Relu": _GraphReader.op_relu,
    "Clip": _GraphReader.op_clip,
    "Shape": _GraphReader.op_shape,
    "Cast": _GraphReader.op_cast,
    "Gather": _GraphReader.op_gather,
    "Concat": _GraphReader.op_concat,
    "Flatten": _GraphReader.op_flatten,
    "Reshape": _GraphReader.op_reshape,
    "Squeeze": _GraphReader.op_squeeze,
    "Unsqueeze": _GraphReader.op_unsqueeze,
    "Transpose": _GraphReader.op_transpose,
    "Neg": _GraphReader.op_neg,
    "Add": _GraphReader.op_add,
    "Sub": _GraphReader.op_sub,
    "Mul": _GraphReader.op_mul,
    "Div": _GraphReader.op_div,
    "MatMul": _GraphReader.op_matmul,
    "Gemm": _GraphReader.op_gemm,
    "BatchNormalization": _GraphReader.op_batchnorm,
    "Conv": _GraphReader.op_conv,
}


@dataclass(frozen=True)
class _ConvSpec:
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
    ) -> _ConvSpec:
        spatial = x_shape[2:]
        kernel = tuple(int(k) for k in attrs.get("kernel_shape", w_shape[2:]))
        nd = len(spatial)
        if kernel != tuple(w_shape[2:]):
            raise fail(f"Conv kernel_shape {list(kernel)} does not match weight {list(w_shape)}")
        strides = tuple(int(s) for s in attrs.get("strides", [1] * nd))
        dilations = tuple(int(d) for d in attrs.get("dilations", [1] * nd))
        group = int(attrs.get("group", 1))
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
            begin, end = pads[:nd], pads[nd:]
        else:
            raise fail(f"Conv auto_pad {auto_pad!r}")
        out_spatial = tuple(
            (s + b + e - ef) // st + 1
            for s, b, e, ef, st in zip(spatial, begin, end, eff, strides, strict=True)
        )
        if any(o <= 0 for o in out_spatial):
            raise fail(f"Conv output would be empty for input {list(x_shape)}")
        return _ConvSpec(group, strides, dilations, tuple(begin), tuple(end), out_spatial)

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
