"""The network IR: ONNX models read into piecewise-linear networks, and checked against onnxruntime.

:mod:`~.ir` holds the IR itself (:class:`Network` of :class:`Affine`, :class:`Relu` and
:class:`Clip` layers, with float64 evaluation and interval bounds); :mod:`~.reader` reads an ONNX
graph into it (:func:`load_network`, :func:`network_from_bytes`), with the op handlers in the
``ops_*`` modules and the reader's symbolic tensors in :mod:`~.symbolic`;
:mod:`~.onnxruntime_check` evaluates the model with onnxruntime (:class:`OnnxRunner`) and checks
the IR against it (:func:`check_against_onnxruntime`); :mod:`~.normalize` puts an input
normalisation in front of a model and :mod:`~.softmax` handles a classifier's final
Softmax. Importing this package pays for numpy only:
onnx and onnxruntime are imported when a model is read or run.
"""

from robustprop.verify.engine.network.ir import Affine, Clip, Layer, Network, Relu
from robustprop.verify.engine.network.normalize import (
    InputNormalization,
    parse_stats,
    with_input_normalization,
)
from robustprop.verify.engine.network.onnxruntime_check import (
    OnnxRunner,
    check_against_onnxruntime,
)
from robustprop.verify.engine.network.reader import (
    SUPPORTED_OPS,
    load_network,
    network_from_bytes,
)
from robustprop.verify.engine.network.softmax import drop_final_softmax, softmax_hint

__all__ = [
    "SUPPORTED_OPS",
    "Affine",
    "Clip",
    "InputNormalization",
    "Layer",
    "Network",
    "OnnxRunner",
    "Relu",
    "check_against_onnxruntime",
    "drop_final_softmax",
    "load_network",
    "network_from_bytes",
    "parse_stats",
    "softmax_hint",
    "with_input_normalization",
]
