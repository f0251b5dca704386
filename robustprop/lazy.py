"""The one place that names the heavy packages robustprop imports on first use.

``import robustprop`` and the property classes must not pay for torch, onnxruntime or a
solver (seconds of start-up, in every worker process), and a missing optional package must be
an :class:`~robustprop.properties.errors.InputError` naming it, not an ``ImportError`` at
start-up. Code that needs one of :data:`HEAVY` either imports it at module level in a module
that is itself only imported on demand, or goes through :func:`load` / :data:`torch` here;
the import-layer test (tests/test_layers.py) allows a function-level import of exactly these
packages and nothing else.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any, Final

from robustprop.properties.errors import InputError

__all__ = ["HEAVY", "LazyModule", "load", "torch"]

#: Package (top-level import name) -> the distribution a user installs to get it.
HEAVY: Final[dict[str, str]] = {
    "torch": "torch",
    "onnxruntime": "onnxruntime",
    "onnx": "onnx",
    "maraboupy": "maraboupy",
    "z3": "z3-solver",
    "highspy": "highspy",
    "ray": "ray",
    "matplotlib": "matplotlib",
    "tqdm": "tqdm",
}


def load(module: str) -> ModuleType:
    """Import ``module`` (one of :data:`HEAVY` or a submodule of one) now.

    Raises:
        InputError: the package is not installed (naming the distribution to install).
        ValueError: ``module`` is not a heavy package (a programming error).
    """
    top = module.split(".", 1)[0]
    if top not in HEAVY:
        raise ValueError(f"{module!r} is not one of the lazily imported packages {sorted(HEAVY)}")
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise InputError(
            f"package {HEAVY[top]!r} is needed here but cannot be imported ({err}); "
            f"install it with: pip install {HEAVY[top]}"
        ) from err


class LazyModule:
    """A stand-in for a heavy module: imported on the first attribute access."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        if self._module is None:
            self._module = load(self._name)
        return getattr(self._module, attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"


#: ``torch``, imported when first used (for the property classes' torch readings).
torch: Final = LazyModule("torch")
