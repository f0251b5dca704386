"""What a run found: per-point results and the run's :class:`RunResult` (results are data)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from robustprop.verify.engine.network import Network
from robustprop.verify.engine.verdict import Status, Verdict
from robustprop.verify.run.config import RunConfig
from robustprop.verify.run.reuse import StoreReport
from robustprop.verify.run.summary import Summary

__all__ = ["PointResult", "RunResult"]


@dataclass(frozen=True, eq=False)
class PointResult:
    """What the run found at one point; metrics not asked for are ``None``.

    ``reused``: the verdict came from the store (an untrusted cache: see the run's
    ``store``); ``replayed``: it is a stored ``violated`` whose witness was replayed in this
    run (evidence); a reused verdict without it is the store's word only.
    """

    index: int
    label: int
    verdict: Verdict | None
    attack_violated: bool | None
    attack_margin: float | None
    sampling_fraction: float | None
    reused: bool = False
    replayed: bool = False

    def to_record(self) -> dict[str, Any]:
        """A flat row (for ``pandas.DataFrame(result.to_records())`` or a CSV writer)."""
        v = self.verdict
        return {
            "index": self.index,
            "label": self.label,
            "verdict": None if v is None else v.status.value,
            "stage": None if v is None else v.stage.value,
            "backend": None if v is None else v.backend,
            "time_s": None if v is None else v.time_s,
            "reason": None if v is None else v.reason,
            "reused": self.reused,
            "replayed": self.replayed,
            "attack_violated": self.attack_violated,
            "attack_margin": self.attack_margin,
            "sampling_fraction": self.sampling_fraction,
            "witness": None if v is None or v.witness is None else v.witness.tolist(),
        }


@dataclass(frozen=True, eq=False)
class RunResult:
    """One run: its configuration, the network checked, per-point results, the summary.

    ``store``: how the run used its verdict store (None: no store); ``incomplete``: why the
    run stopped before deciding everything (empty: it did not).
    """

    config: RunConfig
    network: Network
    backend: str
    points: tuple[PointResult, ...]
    breaches: tuple[str, ...]
    time_s: float
    reused: int = 0
    store: StoreReport | None = None
    incomplete: str = ""

    @property
    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in Status}
        for p in self.points:
            if p.verdict is not None:
                out[p.verdict.status.value] += 1
        return out

    @cached_property
    def summary(self) -> Summary:
        """The run's metrics (satisfaction interval, security, accuracy, counts)."""
        return Summary.of(
            self.points,
            metrics=self.config.metrics,
            time_s=self.time_s,
            tau=self.config.tau,
            timeout_s=self.config.timeout_s,
            samples=self.config.samples,
            breaches=self.breaches,
            reused=self.reused,
        )

    def to_records(self) -> list[dict[str, Any]]:
        """One flat dict per point (see :meth:`PointResult.to_record`)."""
        return [p.to_record() for p in self.points]

    def __repr__(self) -> str:
        prop = self.config.prop
        where = self.config.model.source
        return f"<RunResult {prop.name.upper()} eps={prop.eps:g} on {where}: {self.summary}>"
