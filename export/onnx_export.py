"""torch → ONNX export under the ONNX contract of DESIGN.md §6.

The file has one input ``input`` of shape ``(batch, n)`` (dynamic batch) and one output
``output`` produced by a ``Clip`` node with bounds ±100 (the network's clamp), uses opset
:data:`ONNX_OPSET`, carries the given metadata in ``metadata_props``, passes
``onnx.checker``, and agrees with the torch model on real inputs under onnxruntime. It is
written atomically: on any failure no file (and no partial file) is left at ``path``.

Parity: ``max |onnxruntime − torch| ≤ PARITY_TOLERANCE · max(1, max |torch output|)``. For
outputs within ±1 that is DESIGN.md's absolute 1e-5; above, the bound grows with the output
scale, because float32 rounding does: torch and onnxruntime sum matrix products in different
orders, and a paper network trained for three epochs on Fashion-MNIST (scores up to ~20)
already differs by ~1.1e-5 (6 ulp). An export bug shows up as differences of the order of the
scores themselves, far above either bound.
"""

from __future__ import annotations

import hashlib
import io
import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
import torch
from onnx import numpy_helper
from torch import nn

from robustprop.export.metadata import robustprop_version
from robustprop.properties.errors import InputError, InternalError
from robustprop.training.cache import atomic_write

__all__ = [
    "CLAMP_BOUND",
    "ONNX_OPSET",
    "PARITY_TOLERANCE",
    "ExportReport",
    "export_onnx",
    "torch_to_onnx",
]

logger = logging.getLogger(__name__)

ONNX_OPSET: Final = 17
CLAMP_BOUND: Final = 100.0
PARITY_TOLERANCE: Final = 1e-5
INPUT_NAME: Final = "input"
OUTPUT_NAME: Final = "output"


@dataclass(frozen=True)
class ExportReport:
    """What :func:`export_onnx` wrote and measured."""

    path: Path
    opset: int
    max_abs_diff: float
    tolerance: float
    n_checked: int
    sha256: str


def torch_to_onnx(model: nn.Module, dummy: torch.Tensor) -> bytes:
    """``model`` as ONNX bytes, traced on ``dummy`` (one batch of inputs; the batch axis is
    dynamic in the result) with the TorchScript exporter. Unexportable models are an
    InputError naming the model's class."""
    buffer = io.BytesIO()
    # On failure the TorchScript exporter dumps its IR graph through its C++ ONNX log, whose
    # default stream is stdout (it enables that log whatever `verbose` says). stdout is for
    # results, so send the log to stderr.
    torch._C._jit_set_onnx_log_output_stream("stderr")
    with warnings.catch_warnings():
        # torch >= 2.9 warns that the TorchScript-based exporter (dynamo=False) is legacy.
        # We use it on purpose: dynamo=True needs onnxscript, which we do not depend on.
        warnings.filterwarnings(
            "ignore", message=r".*legacy TorchScript-based ONNX export", category=DeprecationWarning
        )
        warnings.filterwarnings(
            "ignore", message=r"The feature will be removed", category=DeprecationWarning
        )
        try:
            torch.onnx.export(
                model,
                (dummy,),
                buffer,  # type: ignore[arg-type]  # typed as a path; the legacy exporter takes BytesIO
                dynamo=False,
                opset_version=ONNX_OPSET,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                do_constant_folding=True,
            )
        # The exporter raises anything from UnsupportedOperatorError to RuntimeError or
        # TypeError for models it cannot trace; each means "this model is not exportable".
        except Exception as err:
            summary = " ".join(str(err).split())[:300]
            raise InputError(
                f"model {type(model).__name__} cannot be exported to ONNX: "
                f"{type(err).__name__}: {summary}"
            ) from err
    return buffer.getvalue()


def _constant(graph: onnx.GraphProto, name: str) -> npt.NDArray[np.generic] | None:
    for init in graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init)
    for node in graph.node:
        if node.op_type == "Constant" and name in node.output:
            for attr in node.attribute:
                if attr.name == "value":
                    return numpy_helper.to_array(attr.t)
    return None


def _check_clip(proto: onnx.ModelProto, model_name: str) -> None:
    """The graph output must come from ``Clip(z, -100, 100)``."""
    graph = proto.graph
    producers = [node for node in graph.node if OUTPUT_NAME in node.output]
    ops = ", ".join(node.op_type for node in producers) or "nothing"
    if len(producers) != 1 or producers[0].op_type != "Clip":
        raise InputError(
            f"model {model_name}: its output must be clamped with torch.clamp(z, "
            f"-{CLAMP_BOUND:g}, {CLAMP_BOUND:g}) (exported as ONNX Clip), but it comes from {ops}"
        )
    clip = producers[0]
    bounds: list[float | None] = []
    for operand in list(clip.input[1:3]) + [""] * (3 - len(clip.input)):
        value = _constant(graph, operand) if operand else None
        bounds.append(None if value is None or value.size != 1 else float(value.reshape(())))
    if bounds != [-CLAMP_BOUND, CLAMP_BOUND]:
        raise InputError(
            f"model {model_name}: output Clip has bounds {bounds}, "
            f"expected [-{CLAMP_BOUND:g}, {CLAMP_BOUND:g}]"
        )


def _check_interface(proto: onnx.ModelProto) -> None:
    graph = proto.graph
    opset = max(
        (imp.version for imp in proto.opset_import if imp.domain in ("", "ai.onnx")), default=0
    )
    names = ([i.name for i in graph.input], [o.name for o in graph.output])
    if names != ([INPUT_NAME], [OUTPUT_NAME]) or opset < 13:
        raise InternalError(f"exported graph has inputs/outputs {names} and opset {opset}")
    batch = graph.input[0].type.tensor_type.shape.dim[0]
    if not batch.dim_param:
        raise InternalError(f"exported input has a fixed batch dimension {batch.dim_value}")


def _parity(
    model: nn.Module, proto_bytes: bytes, inputs: npt.NDArray[np.float32], device: torch.device
) -> tuple[float, float]:
    """``(max abs diff, allowed diff)`` between torch and onnxruntime on ``inputs``."""
    with torch.no_grad():
        expected = model(torch.from_numpy(inputs).to(device)).detach().cpu().numpy()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(proto_bytes, options, providers=["CPUExecutionProvider"])
    (actual,) = session.run([OUTPUT_NAME], {INPUT_NAME: inputs})
    if actual.shape != expected.shape:
        raise InternalError(
            f"onnxruntime output shape {actual.shape} differs from torch's {expected.shape}"
        )
    if not np.isfinite(expected).all():
        raise InputError("model outputs non-finite values (NaN/inf) on the check inputs")
    diff = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
    max_diff = float(diff.max()) if np.isfinite(diff).all() else float("inf")
    return max_diff, PARITY_TOLERANCE * max(1.0, float(np.abs(expected).max()))


def _write_atomically(path: Path, data: bytes) -> None:
    """Write the model through :func:`~robustprop.training.cache.atomic_write`: a regular file
    is replaced atomically, a device or FIFO written in place, a link's target replaced."""
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected an output file name")
    if not path.parent.is_dir():
        raise InputError(f"{path}: directory {path.parent} does not exist")

    def write(handle: IO[bytes]) -> None:
        handle.write(data)

    try:
        atomic_write(path, write)
    except OSError as err:
        raise InputError(f"{path}: cannot write ({err.strerror or err})") from err


def _check_inputs(check_inputs: npt.ArrayLike, n_inputs: int) -> npt.NDArray[np.float32]:
    inputs = np.ascontiguousarray(np.asarray(check_inputs, dtype=np.float32))
    if inputs.ndim != 2 or inputs.shape[1] != n_inputs or len(inputs) == 0:
        raise InputError(
            f"parity check inputs must have shape (k >= 1, {n_inputs}), got {inputs.shape}"
        )
    if not np.isfinite(inputs).all():
        raise InputError("parity check inputs contain non-finite values")
    return inputs


def export_onnx(
    model: nn.Module,
    path: Path,
    n_inputs: int,
    metadata: Mapping[str, str],
    check_inputs: npt.ArrayLike,
) -> ExportReport:
    """Export ``model`` (input ``(B, n_inputs)``) to ``path`` and verify the result.

    ``metadata`` goes to ``metadata_props`` (``robustprop_version`` is added unless given).
    ``check_inputs`` ``(k, n_inputs)`` are real data points for the parity check.

    Raises:
        InputError: the model cannot be exported, lacks the ±100 output clamp, outputs
            non-finite values, the inputs or metadata are malformed, or ``path`` is not
            writable.
        InternalError: the exported graph fails ``onnx.checker`` or disagrees with torch by
            more than the parity bound (module docstring; the message gives both numbers).
    """
    if n_inputs < 1:
        raise InputError(f"n_inputs must be >= 1, got {n_inputs}")
    bad = {k: v for k, v in metadata.items() if not isinstance(k, str) or not isinstance(v, str)}
    if bad:
        raise InputError(f"ONNX metadata must map str to str; bad entries: {bad!r}")
    inputs = _check_inputs(check_inputs, n_inputs)
    name = type(model).__name__
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    try:
        dummy = torch.zeros(2, n_inputs, device=device)
        proto = onnx.load_from_string(torch_to_onnx(model, dummy))
        _check_interface(proto)
        _check_clip(proto, name)
        props = {"robustprop_version": robustprop_version(), **metadata}
        del proto.metadata_props[:]
        for key in sorted(props):
            proto.metadata_props.add(key=key, value=props[key])
        try:
            onnx.checker.check_model(proto, full_check=True)
        except onnx.checker.ValidationError as err:
            raise InternalError(f"exported ONNX model fails onnx.checker: {err}") from err
        data = proto.SerializeToString()
        diff, tolerance = _parity(model, data, inputs, device)
    finally:
        model.train(was_training)
    if not diff <= tolerance:
        raise InternalError(
            f"torch and onnxruntime disagree on {len(inputs)} check inputs: "
            f"max abs diff {diff:.3g} > allowed {tolerance:.3g}"
        )
    _write_atomically(path, data)
    opset = max(imp.version for imp in proto.opset_import if imp.domain in ("", "ai.onnx"))
    digest = hashlib.sha256(data).hexdigest()
    report = ExportReport(path, opset, diff, tolerance, len(inputs), digest)
    logger.info("exported %s (opset %d, max abs diff %.3g)", path, opset, diff)
    return report
