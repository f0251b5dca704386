"""robustprop: neural-network robustness as a mathematical property.

Train a network for a robustness definition, export it to ONNX, and know — exactly — whether
it satisfies that definition, next to how it fares against attacks and random noise::

    import robustprop
    from robustprop import LR

    result = robustprop.check("model.onnx", LR(eps=0.01), x, y)
    result.summary.satisfaction      # certified interval [holds/N, (N - violated)/N]

The top level offers the Python API (:func:`load`, :func:`check`, :func:`decide`,
:func:`check_vnnlib`, :func:`attack`) and the four property classes. Importing it is cheap:
torch, onnxruntime and the solvers load when a function first needs them.

Subpackages (the repository's top-level folders): :mod:`robustprop.properties` (the
properties, defined once), :mod:`robustprop.training`, :mod:`robustprop.export` and
:mod:`robustprop.verify` (its layers: engine, formats, runs, report, experiment, cli).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from robustprop.properties import CR, LR, SCR, SR, Domain, PGDConfig, make_property
from robustprop.properties.errors import InputError, RobustpropError

if TYPE_CHECKING:
    from robustprop.api import AttackResult, Result, attack, check, check_vnnlib, decide, load

__all__ = [
    "CR",
    "LR",
    "SCR",
    "SR",
    "AttackResult",
    "Domain",
    "InputError",
    "PGDConfig",
    "Result",
    "RobustpropError",
    "attack",
    "check",
    "check_vnnlib",
    "decide",
    "load",
    "make_property",
]

#: Names served from :mod:`robustprop.api`, imported on first use (it loads the verifier).
_API = frozenset({"AttackResult", "Result", "attack", "check", "check_vnnlib", "decide", "load"})


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module("robustprop.api"), name)
    raise AttributeError(f"module 'robustprop' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _API)
