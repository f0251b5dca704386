"""onnxruntime's view of a model: evaluation in the model's own precision, and the check of the
IR against it.

onnxruntime is imported when an :class:`OnnxRunner` is created, so that worker processes which
only evaluate or encode a :class:`~robustprop.verify.engine.network.ir.Network` do not pay for it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from robustprop.properties.errors import InputError, InternalError
from robustprop.verify.engine.network.ir import FloatArray, Network

__all__ = ["OnnxRunner", "check_against_onnxruntime"]


class OnnxRunner:
    """An onnxruntime session for one model, evaluating flattened inputs one point at a time."""

    def __init__(self, model_bytes: bytes, source: str, *, quiet: bool = False) -> None:
        """``quiet``: onnxruntime logs nothing, not even errors (a failure still raises)."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 4 if quiet else 3
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

    Tolerance: ``rtol * max(1, max |y|)`` per point. Raises InternalError naming the model, or
    InputError when onnxruntime's outputs are not finite (the model overflows its float type:
    no witness could be replayed).
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
    if not np.all(np.isfinite(y_ort)):
        i, j = np.unravel_index(int(np.argmin(np.isfinite(y_ort))), y_ort.shape)
        raise InputError(
            f"{net.source}: onnxruntime computes {float(y_ort[i, j])} for output {j} at check "
            f"point {i} (the model overflows its float type on the box; it cannot be replayed)"
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
