"""The backend contract: decide whether a piecewise-linear :class:`Negation` has a point.

A backend answers with a :class:`SolverOutcome` in the engine's one vocabulary
(:class:`~robustprop.verify.engine.verdict.Status`): ``VIOLATED`` with the solver's raw input
point (the solver's "sat"; a candidate, not yet trusted: the caller replays it through
onnxruntime, see :mod:`robustprop.verify.engine.replay`), ``HOLDS`` (the solver's "unsat": the
negation is empty), or ``UNKNOWN`` with a reason. Backends are named by :class:`BackendName`;
the registry that builds them is :mod:`robustprop.verify.engine.backends.registry`. Solver
packages are imported only inside the backends' functions (:func:`import_solver`), so that a
missing package is an InputError naming it, not an ImportError at start-up. Also here: the
query helpers every backend uses (:func:`check_query`, :func:`group_by_box`, :func:`query_box`).
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from enum import StrEnum
from types import ModuleType
from typing import Protocol

import numpy as np

from robustprop.properties.errors import InputError, InternalError
from robustprop.properties.spec import Disjunct, FloatArray, Negation
from robustprop.verify.engine.network import Network
from robustprop.verify.engine.verdict import Status

__all__ = [
    "Backend",
    "BackendName",
    "SolverOutcome",
    "ceil_seconds",
    "check_query",
    "group_by_box",
    "import_solver",
    "query_box",
]


class BackendName(StrEnum):
    """Exact backends, keyed by their CLI token."""

    MARABOU = "marabou"
    Z3 = "z3"
    MILP = "milp"
    PORTFOLIO = "portfolio"  # Marabou and MILP racing on the same query


@dataclass(frozen=True, eq=False)
class SolverOutcome:
    """One solver answer about a negation. ``x`` (the raw input point, shape (n,)) is set only
    for ``Status.VIOLATED`` (the solver's "sat"), and is a candidate until replayed."""

    status: Status
    x: FloatArray | None
    reason: str
    time_s: float


class Backend(Protocol):
    """Decides a linear negation over a network within ``timeout_s`` seconds."""

    @property
    def name(self) -> BackendName: ...

    def solve(self, network: Network, negation: Negation, timeout_s: float) -> SolverOutcome: ...


def import_solver(module: str, package: str) -> ModuleType:
    """Import a solver module; a missing package is an InputError naming it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise InputError(f"solver package {package!r} is not installed ({err})") from err


def check_query(network: Network, negation: Negation) -> None:
    """Refuse what the linear backends cannot take: SCR's softmax, mismatched sizes."""
    if negation.softmax is not None:
        raise InternalError(
            "a SoftmaxBelow negation is not piecewise linear: the caller must decide SCR "
            "with its refinement loop, not hand it to an exact backend"
        )
    if negation.n_inputs != network.n:
        raise InputError(
            f"the property has {negation.n_inputs} inputs, network {network.source} has {network.n}"
        )
    for disjunct in negation.disjuncts:
        if disjunct.lower.shape != (network.n,) or disjunct.upper.shape != (network.n,):
            raise InputError(f"an input box of the property does not have {network.n} bounds")
        for atom in disjunct.atoms:
            for j, _ in atom.terms:
                if not 0 <= j < network.m:
                    raise InputError(
                        f"the property refers to output {j}, network {network.source} has "
                        f"{network.m} outputs"
                    )
    if negation.distance is not None and negation.distance.center.shape != (network.n,):
        raise InputError(f"the distance centre does not have {network.n} values")


def group_by_box(negation: Negation) -> list[Negation]:
    """Split a negation into sub-negations whose disjuncts share one input box each.

    Order is preserved (first occurrence of each box); distance and tau are kept.
    """
    groups: dict[bytes, list[Disjunct]] = {}
    for d in negation.disjuncts:
        groups.setdefault(d.lower.tobytes() + d.upper.tobytes(), []).append(d)
    return [
        Negation(
            disjuncts=tuple(ds),
            distance=negation.distance,
            softmax=negation.softmax,
            tau=negation.tau,
            description=negation.description,
        )
        for ds in groups.values()
    ]


def query_box(negation: Negation) -> tuple[FloatArray, FloatArray]:
    """The hull of the disjuncts' boxes, intersected with the distance ball if there is one.

    The result may be empty (some ``lower > upper``) when the ball misses every box.
    """
    lower = np.min([d.lower for d in negation.disjuncts], axis=0)
    upper = np.max([d.upper for d in negation.disjuncts], axis=0)
    if negation.distance is not None:
        lower = np.maximum(lower, negation.distance.center - negation.distance.eps)
        upper = np.minimum(upper, negation.distance.center + negation.distance.eps)
    if not (np.all(np.isfinite(lower)) and np.all(np.isfinite(upper))):
        raise InputError("every input needs finite bounds for an exact query")
    return lower.astype(np.float64), upper.astype(np.float64)


def ceil_seconds(timeout_s: float) -> int:
    """A whole number of seconds, at least 1, for solvers that take integer timeouts."""
    return max(1, math.ceil(timeout_s))
