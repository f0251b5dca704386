"""CI gates on a run's :class:`~robustprop.verify.run.summary.Summary`: which failed, and why."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from robustprop.properties.errors import InputError
from robustprop.verify.engine.verdict import Status
from robustprop.verify.run.summary import Summary

__all__ = ["GateBound", "Gates"]


class GateBound(StrEnum):
    """Which end of the satisfaction interval ``min_satisfaction`` checks."""

    LOWER = "lower"  # certified: only proved points count
    UPPER = "upper"  # optimistic: unknowns count as satisfied


@dataclass(frozen=True)
class Gates:
    """Thresholds a run must meet; ``None`` disables a gate."""

    min_satisfaction: float | None = None
    gate_on: GateBound = GateBound.LOWER
    min_security: float | None = None
    require_holds: bool = False

    def __post_init__(self) -> None:
        for name in ("min_satisfaction", "min_security"):
            bound = getattr(self, name)
            if bound is not None and not 0 <= bound <= 1:
                flag = "--" + name.replace("_", "-")
                raise InputError(f"{flag} must lie in [0, 1], got {bound}")

    @property
    def active(self) -> bool:
        """Whether any gate is set."""
        return (
            self.min_satisfaction is not None or self.min_security is not None or self.require_holds
        )

    def rests_on(self) -> frozenset[Status]:
        """The verdicts that can make a gate pass: ``holds`` for ``--min-satisfaction`` and
        ``--require holds``, ``unknown`` too when the upper bound is gated. A stored verdict
        of these kinds is evidence of nothing, so a gated run decides it afresh unless the
        store is trusted (``--trust-store``); security comes from this run's PGD only."""
        out: set[Status] = set()
        if self.min_satisfaction is not None or self.require_holds:
            out.add(Status.HOLDS)
        if self.min_satisfaction is not None and self.gate_on is GateBound.UPPER:
            out.add(Status.UNKNOWN)
        return frozenset(out)

    def failures(self, summary: Summary, eps: float) -> list[str]:
        """One line per failed gate (empty: every gate passes)."""
        failed = []
        where = f"(eps={eps:g})"
        satisfaction = summary.satisfaction
        if self.min_satisfaction is not None and satisfaction is not None:
            bound = satisfaction[0 if self.gate_on is GateBound.LOWER else 1]
            if bound < self.min_satisfaction:
                failed.append(
                    f"satisfaction {self.gate_on.value} bound {bound:.3f} < --min-satisfaction "
                    f"{self.min_satisfaction:g} {where}"
                )
        if (
            self.min_security is not None
            and summary.security is not None
            and summary.security < self.min_security
        ):
            failed.append(
                f"security {summary.security:.3f} < --min-security {self.min_security:g} {where}"
            )
        if self.require_holds and summary.holds is not None and summary.holds < summary.points:
            failed.append(
                f"--require holds: {summary.points - summary.holds} point(s) not proved {where}"
            )
        return failed
