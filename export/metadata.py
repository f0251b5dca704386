"""Training metadata stored in an ONNX file's ``metadata_props`` (string to string).

Keys written by robustprop (values are plain strings; structured values are JSON):

=====================  ============================================================
``dataset``            dataset name (``fashion-mnist``, ``gtsrb48``, a path, ...)
``input_shape``        per-sample shape before flattening, JSON list, e.g. ``[1, 28, 28]``
``domain``             input box, JSON ``[lo, hi]`` (default ``[0.0, 1.0]``)
``arch``               architecture token (``mlp``, ``mlp-deep``)
``n_inputs``           ``n``; ``n_classes``: ``m``
``regime``             training regime (``baseline``, ``augment``, ``adversarial``, ``constraint``,
                       ``certified``, ``lipschitz``)
``property``           property token for the constraint regime (``sr``, ``lr``, ``scr``) or the
                       certified regime (``cr``, ``sr``, ``scr``)
``property_params``    JSON object, e.g. ``{"eps": 0.1, "delta": 10.0}``
``regime_params``      certified and lipschitz regimes only: their settings, JSON, e.g.
                       ``{"bound": 10.0, "projection": "rows"}`` (also under ``training``)
``seed``               training seed
``robustprop_version``  the version that exported the file (added on export)
=====================  ============================================================

Other keys are kept as given.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import onnx

from robustprop.properties.errors import InputError

__all__ = ["metadata_from_bytes", "read_metadata", "robustprop_version"]


def robustprop_version() -> str:
    """The installed robustprop version, or ``0+unknown`` from an uninstalled tree."""
    try:
        return version("robustprop")
    except PackageNotFoundError:
        return "0+unknown"


def read_metadata(path: Path) -> dict[str, str]:
    """The ``metadata_props`` of the ONNX file at ``path`` as a dict."""
    if not path.is_file():
        raise InputError(f"{path}: no such ONNX file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    # The protobuf decoder raises DecodeError, RuntimeError or ValueError on damaged bytes
    # depending on its backend; all mean the same thing to the user.
    except Exception as err:
        raise InputError(f"{path}: not a readable ONNX model ({err})") from err
    return {prop.key: prop.value for prop in model.metadata_props}


def metadata_from_bytes(data: bytes, source: str) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX model given as bytes; ``source`` names it in errors."""
    try:
        model = onnx.load_model_from_string(data)
    except Exception as err:  # as in read_metadata: every decoder failure is bad input
        raise InputError(f"{source}: not a readable ONNX model ({err})") from err
    return {prop.key: prop.value for prop in model.metadata_props}
