"""The metrics of one run as a typed value: what the printer, the gates, the JSON document,
the Python API and the experiment all read.

Satisfaction is an interval ``[holds/N, (N − violated)/N]`` whenever unknowns exist; stage
counts are over *decided* points (an unknown was decided by no stage).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from robustprop.verify.engine.verdict import Status, Verdict

__all__ = ["METRICS", "PointMetrics", "Summary"]

#: The three metrics of the paper, in the order they are reported.
METRICS: tuple[str, ...] = ("satisfaction", "security", "accuracy")


class PointMetrics(Protocol):
    """What a summary needs of one point (a run's per-point result has these fields)."""

    @property
    def index(self) -> int: ...
    @property
    def verdict(self) -> Verdict | None: ...
    @property
    def attack_violated(self) -> bool | None: ...
    @property
    def sampling_fraction(self) -> float | None: ...


@dataclass(frozen=True)
class Summary:
    """Counts and metrics of one run; a metric that was not asked for is ``None``."""

    points: int
    time_s: float
    metrics: tuple[str, ...]
    holds: int | None = None
    violated: int | None = None
    unknown: int | None = None
    decided_by_stage: Mapping[str, int] = field(default_factory=dict)
    tau: float | None = None
    timeout_s: float | None = None
    security: float | None = None
    refuted_but_missed_by_attack: tuple[int, ...] = ()
    accuracy: float | None = None
    samples: int | None = None
    invariant_breaches: tuple[str, ...] = ()
    reused: int = 0

    @classmethod
    def of(
        cls,
        points: Sequence[PointMetrics],
        *,
        metrics: Sequence[str],
        time_s: float,
        tau: float,
        timeout_s: float,
        samples: int,
        breaches: Sequence[str] = (),
        reused: int = 0,
    ) -> Summary:
        """The summary of per-point results (any objects with :class:`PointMetrics`' fields)."""
        n = len(points)
        values: dict[str, Any] = {}
        if "satisfaction" in metrics:
            count = {s: 0 for s in Status}
            stages: dict[str, int] = {}
            for p in points:
                if p.verdict is None:
                    continue
                count[p.verdict.status] += 1
                if p.verdict.status is not Status.UNKNOWN:
                    stage = p.verdict.stage.value
                    stages[stage] = stages.get(stage, 0) + 1
            values.update(
                holds=count[Status.HOLDS],
                violated=count[Status.VIOLATED],
                unknown=count[Status.UNKNOWN],
                decided_by_stage=stages,
                tau=tau,
                timeout_s=timeout_s,
            )
        if "security" in metrics:
            values["security"] = sum(1 for p in points if p.attack_violated is False) / n
            if "satisfaction" in metrics:
                values["refuted_but_missed_by_attack"] = tuple(
                    p.index
                    for p in points
                    if p.verdict is not None
                    and p.verdict.status is Status.VIOLATED
                    and not p.attack_violated
                )
        if "accuracy" in metrics:
            fractions = [p.sampling_fraction for p in points if p.sampling_fraction is not None]
            values["accuracy"] = sum(fractions) / len(fractions) if fractions else None
            values["samples"] = samples
        return cls(
            points=n,
            time_s=time_s,
            metrics=tuple(metrics),
            invariant_breaches=tuple(breaches),
            reused=reused,
            **values,
        )

    @property
    def satisfaction(self) -> tuple[float, float] | None:
        """The certified interval ``[holds/N, (N − violated)/N]`` (None: not measured)."""
        if self.holds is None or self.violated is None or not self.points:
            return None
        return self.holds / self.points, (self.points - self.violated) / self.points

    @property
    def decided(self) -> int | None:
        """Points with a ``holds`` or ``violated`` verdict."""
        if self.holds is None or self.violated is None:
            return None
        return self.holds + self.violated

    def to_json(self) -> dict[str, Any]:
        """The ``summary`` object of the run document (DESIGN.md §7), keys in their order."""
        out: dict[str, Any] = {"points": self.points, "time_s": round(self.time_s, 3)}
        satisfaction = self.satisfaction
        if satisfaction is not None:
            out["holds"] = self.holds
            out["violated"] = self.violated
            out["unknown"] = self.unknown
            out["satisfaction"] = list(satisfaction)
            out["decided_by_stage"] = dict(self.decided_by_stage)
            out["tau"] = self.tau
            out["timeout_s"] = self.timeout_s
        if self.security is not None:
            out["security"] = self.security
            if satisfaction is not None:
                out["security_minus_satisfaction_upper"] = self.security - satisfaction[1]
                out["refuted_but_missed_by_attack"] = list(self.refuted_but_missed_by_attack)
        if "accuracy" in self.metrics:
            out["accuracy"] = self.accuracy
            out["samples"] = self.samples
        out["invariant_breaches"] = list(self.invariant_breaches)
        return out

    def __str__(self) -> str:
        parts = [f"{self.points} points"]
        if self.satisfaction is not None:
            lo, hi = self.satisfaction
            parts.append(
                f"holds/violated/unknown {self.holds}/{self.violated}/{self.unknown}, "
                f"satisfaction {lo:.3f}" + ("" if lo == hi else f"..{hi:.3f}")
            )
        if self.security is not None:
            parts.append(f"security {self.security:.3f}")
        if self.accuracy is not None:
            parts.append(f"accuracy {self.accuracy:.3f}")
        return ", ".join(parts)
