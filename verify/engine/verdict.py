"""The engine's one vocabulary of outcomes (:class:`Status`) and per-point verdicts: a verdict is
data, not an exception."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["Stage", "Status", "Verdict"]


class Status(StrEnum):
    """Outcome of deciding a property on a region, at every level of the engine.

    For a whole (point, property) pair (:class:`Verdict`) a violation carries a witness re-checked
    with onnxruntime. For one solver query about the property's *negation* (a
    :class:`~robustprop.verify.engine.backends.base.SolverOutcome`, a
    :class:`~robustprop.verify.engine.decide.Decision`, a racer's report), ``HOLDS`` is the
    solver's "unsat" (the negation is empty) and ``VIOLATED`` its "sat": the solver's point is
    only a *candidate* until it is replayed through onnxruntime, which
    :func:`~robustprop.verify.engine.decide.decide` does for every point.
    """

    HOLDS = "holds"  # proved for every x in the region (the negation is unsat)
    VIOLATED = "violated"  # a point breaks the property (the negation is sat)
    UNKNOWN = "unknown"  # timeout, limit, or an unconfirmed solver answer


class Stage(StrEnum):
    """Which step of the decision produced the verdict."""

    CENTER = "center"  # the data point itself violates the property
    ATTACK = "attack"  # PGD found a confirmed counterexample
    BOUNDS = "bounds"  # bound propagation proved the property
    BAB = "bab"  # branch and bound proved it, or its attack found a confirmed counterexample
    SOLVER = "solver"  # an exact backend decided it
    NONE = "none"  # undecided


@dataclass(frozen=True)
class Verdict:
    """The verdict on one point; ``witness`` is set exactly when ``status`` is violated."""

    status: Status
    stage: Stage
    backend: str
    time_s: float
    reason: str = ""
    witness: npt.NDArray[np.float64] | None = field(default=None, compare=False)
    witness_output: npt.NDArray[np.float64] | None = field(default=None, compare=False)
    queries: int = 0
    refinements: int = 0

    def __post_init__(self) -> None:
        if (self.status is Status.VIOLATED) != (self.witness is not None):
            raise ValueError("a violated verdict carries a witness and only it does")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "verdict": self.status.value,
            "stage": self.stage.value,
            "backend": self.backend,
            "time_s": round(self.time_s, 6),
            "queries": self.queries,
        }
        if self.reason:
            out["reason"] = self.reason
        if self.refinements:
            out["refinements"] = self.refinements
        if self.witness is not None:
            out["witness"] = {
                "x": [float(v) for v in self.witness.reshape(-1)],
                "y": [float(v) for v in np.asarray(self.witness_output).reshape(-1)],
            }
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Verdict:
        witness = data.get("witness")
        return cls(
            status=Status(data["verdict"]),
            stage=Stage(data["stage"]),
            backend=str(data["backend"]),
            time_s=float(data["time_s"]),
            reason=str(data.get("reason", "")),
            witness=None if witness is None else np.asarray(witness["x"], dtype=np.float64),
            witness_output=None if witness is None else np.asarray(witness["y"], np.float64),
            queries=int(data.get("queries", 0)),
            refinements=int(data.get("refinements", 0)),
        )
