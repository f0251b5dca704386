"""Witness replay: a solver's point counts only after it re-runs through onnxruntime.

A point ``x`` is **confirmed** for a :class:`~robustprop.properties.spec.Negation` when, after
projecting it
into one disjunct's input box, ``Negation.is_satisfied_by(x, y)`` holds both for ``y`` computed
by onnxruntime on the model as it is (normally float32) and for ``y`` computed by onnxruntime on
a double-precision copy of the model (initializers, Constant nodes, Casts and value types turned
into float64 with the onnx API). When onnxruntime cannot run the double copy (some kernels exist
for float32 only: ``Conv``, for one), the float64 IR evaluates instead and
:attr:`Replay.float64_source` says so. Trying the copy is silent (onnxruntime's own log is off
for it, and the switch to the IR is logged at INFO level, not shown in the middle of a progress
bar); the note stays on every :class:`Replay`.

The projected point is also rounded to the model's input precision *inside* the box where that
is possible, so that both evaluations see exactly the point that is reported.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from robustprop.properties.errors import InputError
from robustprop.properties.spec import FloatArray, Negation
from robustprop.verify.engine.network import Network, OnnxRunner, network_from_bytes

if TYPE_CHECKING:
    import onnx

__all__ = ["Replay", "Replayer", "replay_witness", "to_double_precision"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class Replay:
    """Outcome of replaying one point.

    ``x``: the replayed point; ``disjunct``: the first disjunct that holds at ``x`` for both
    evaluations (when not confirmed: the one whose box ``x`` was projected into); ``y32``:
    onnxruntime on the model as is; ``y64``: float64 evaluation (``float64_source`` says by what);
    ``confirmed``: both evaluations satisfy the negation at ``x``; ``moved``: max-norm distance
    between the given point and ``x``; ``note``: why a point was not confirmed, or caveats.
    """

    x: FloatArray
    y32: FloatArray
    y64: FloatArray
    confirmed: bool
    disjunct: int
    moved: float
    float64_source: Literal["onnxruntime", "ir"]
    note: str


class Replayer:
    """Holds the onnxruntime sessions for one model so that many points can be replayed."""

    def __init__(self, model: str | Path | bytes, *, source: str | None = None) -> None:
        if isinstance(model, bytes):
            data = model
            self.source = source or "<model>"
        else:
            path = Path(model)
            self.source = source or str(path)
            try:
                data = path.read_bytes()
            except OSError as err:
                raise InputError(f"cannot read ONNX model {path}: {err.strerror or err}") from err
        self._runner = OnnxRunner(data, self.source)
        self.float64_source: Literal["onnxruntime", "ir"] = "onnxruntime"
        self.float64_note = ""
        self._runner64: OnnxRunner | None = None
        self._ir: Network | None = None
        try:
            double = to_double_precision(_load(data, self.source)).SerializeToString()
            self._runner64 = OnnxRunner(double, f"{self.source} (float64 copy)", quiet=True)
        except (InputError, ValueError) as err:
            self.float64_source = "ir"
            self.float64_note = f"float64 replay uses the IR: {_why_not_double(err)}"
            log.info("%s: %s", self.source, self.float64_note)
            self._ir = network_from_bytes(data, source=self.source, check_points=0)

    @property
    def input_dtype(self) -> type[np.floating[Any]]:
        return self._runner.input_dtype

    def evaluate32(self, x: npt.ArrayLike) -> FloatArray:
        """onnxruntime on the model as is. Shape: (B, n) or (n,) -> (B, m)."""
        return self._runner.evaluate(x)

    def evaluate64(self, x: npt.ArrayLike) -> FloatArray:
        """Double-precision evaluation. Shape: (B, n) or (n,) -> (B, m)."""
        if self._runner64 is not None:
            return self._runner64.evaluate(x)
        assert self._ir is not None
        return self._ir.evaluate(np.atleast_2d(np.asarray(x, dtype=np.float64)))

    def replay(self, x: npt.ArrayLike, negation: Negation) -> Replay:
        """Project ``x`` into each distinct disjunct box in turn and re-check it there.

        Returns the first confirmed replay, else the replay in the box nearest to ``x``.
        """
        point = np.asarray(x, dtype=np.float64).reshape(-1)
        if point.size != negation.n_inputs:
            raise InputError(
                f"witness has {point.size} values, the property {negation.n_inputs} inputs"
            )
        seen: set[bytes] = set()
        best: Replay | None = None
        for index, disjunct in enumerate(negation.disjuncts):
            key = disjunct.lower.tobytes() + disjunct.upper.tobytes()
            if key in seen:
                continue
            seen.add(key)
            xp, note = project_into_box(point, disjunct.lower, disjunct.upper, self.input_dtype)
            y32 = self.evaluate32(xp)[0]
            y64 = self.evaluate64(xp)[0]
            ok32 = negation.is_satisfied_by(xp, y32)
            ok64 = negation.is_satisfied_by(xp, y64)
            moved = float(np.max(np.abs(xp - point))) if point.size else 0.0
            notes = [n for n in (note, self.float64_note) if n]
            if not (ok32 and ok64):
                failing = [name for name, ok in (("float32", ok32), ("float64", ok64)) if not ok]
                notes.insert(
                    0, "the outputs do not satisfy the negation in " + " and ".join(failing)
                )
            result = Replay(
                x=xp,
                y32=y32,
                y64=y64,
                confirmed=ok32 and ok64,
                disjunct=_holding_disjunct(negation, xp, y32, y64, default=index),
                moved=moved,
                float64_source=self.float64_source,
                note="; ".join(notes),
            )
            if result.confirmed:
                return result
            if best is None or result.moved < best.moved:
                best = result
        assert best is not None  # a Negation has at least one disjunct
        return best


def _why_not_double(err: Exception) -> str:
    """onnxruntime's refusal of the double copy, without its internals."""
    missing = re.search(r"implementation for (\w+)\(", str(err))
    if missing:
        return f"onnxruntime has no double-precision {missing.group(1)} kernel"
    return f"cannot run a double copy ({err})"


def _holding_disjunct(
    negation: Negation, x: FloatArray, y32: FloatArray, y64: FloatArray, *, default: int
) -> int:
    for k, d in enumerate(negation.disjuncts):
        single = dataclasses.replace(negation, disjuncts=(d,))
        if single.is_satisfied_by(x, y32) and single.is_satisfied_by(x, y64):
            return k
    return default


def replay_witness(
    model: str | Path | bytes, x: npt.ArrayLike, negation: Negation, *, source: str | None = None
) -> Replay:
    """One-shot :meth:`Replayer.replay` (creates the onnxruntime sessions each call)."""
    return Replayer(model, source=source).replay(x, negation)


def project_into_box(
    x: FloatArray, lower: FloatArray, upper: FloatArray, dtype: type[np.floating[Any]]
) -> tuple[FloatArray, str]:
    """Clip ``x`` into ``[lower, upper]`` and round it to ``dtype`` without leaving the box.

    Returns the point (as float64) and a note when some coordinate has no ``dtype`` value in its
    interval (then that coordinate stays float64 and the model sees it rounded).
    """
    xp = np.clip(x, lower, upper)
    if np.dtype(dtype) == np.float64:
        return xp, ""
    r = xp.astype(dtype)
    up = r.astype(np.float64) < lower
    r[up] = np.nextafter(r[up], np.asarray(np.inf, dtype=dtype))
    down = r.astype(np.float64) > upper
    r[down] = np.nextafter(r[down], np.asarray(-np.inf, dtype=dtype))
    rounded = r.astype(np.float64)
    bad = (rounded < lower) | (rounded > upper)
    if np.any(bad):
        rounded[bad] = xp[bad]
        idx = np.flatnonzero(bad)
        return (
            rounded,
            f"inputs {idx.tolist()} have no {np.dtype(dtype).name} value in their interval",
        )
    return rounded, ""


def _load(data: bytes, source: str) -> onnx.ModelProto:
    import onnx

    try:
        return onnx.load_model_from_string(data)
    except Exception as err:  # protobuf's DecodeError and onnx's own errors
        raise InputError(f"{source} is not a readable ONNX model: {err}") from err


def to_double_precision(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` computing in float64: float initializers, Constant values, Cast targets
    and float value types become double. Raises ValueError for graphs it cannot convert."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    small_floats = (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16)

    def widen(tensor: onnx.TensorProto) -> onnx.TensorProto:
        if tensor.data_type not in small_floats:
            return tensor
        arr = numpy_helper.to_array(tensor).astype(np.float64)
        return numpy_helper.from_array(arr, tensor.name)

    for i, init in enumerate(graph.initializer):
        graph.initializer[i].CopyFrom(widen(init))
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH or attr.type == onnx.AttributeProto.GRAPHS:
                raise ValueError(f"node {node.name or node.op_type!r} has a subgraph")
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    attr.t.CopyFrom(widen(attr.t))
                elif attr.name in ("value_float", "value_floats"):
                    values = [attr.f] if attr.name == "value_float" else list(attr.floats)
                    arr = np.asarray(values, dtype=np.float64)
                    if attr.name == "value_float":
                        arr = arr.reshape(())
                    tensor = numpy_helper.from_array(arr)
                    node.ClearField("attribute")
                    node.attribute.append(helper.make_attribute("value", tensor))
                    break
        elif node.op_type == "Cast":
            for attr in node.attribute:
                if attr.name == "to" and attr.i in small_floats:
                    attr.i = TensorProto.DOUBLE
    for info in [*graph.input, *graph.output, *graph.value_info]:
        ttype = info.type.tensor_type
        if ttype.elem_type in small_floats:
            ttype.elem_type = TensorProto.DOUBLE
    return out
