"""Per-point results of exact verification: a verdict is data, not an exception."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt


class Status(StrEnum):
    """Outcome of deciding one (point, property) pair on its whole region."""

    HOLDS = "holds"  # proved for every x in the region
    VIOLATED = "violated"  # a witness, re-checked with onnxruntime, breaks the property
    UNKNOWN = "unknown"  # timeout, limit, or an unconfirmed solver answer


class Stage(StrEnum):
    """Which step of the decision produced the verdict."""

    CENTER = "center"  # the data point itself violates the property
    ATTACK = "attack"  # PGD found a confirmed counterexample
    BOUNDS = "bounds"  # bound propagation proved the property
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
