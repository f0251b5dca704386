"""A progress bar over the points of a run, on stderr, with running verdict counts."""

from __future__ import annotations

import sys

from robustprop.lazy import load
from robustprop.verify.run.result import PointResult

__all__ = ["ProgressBar"]


class ProgressBar:
    """tqdm over points; ``update`` is a run's progress callback.

    A run reports points in bursts (a batch of attacked points at once, then one point per
    solver answer), so the bar redraws on every point (``mininterval=0``): with tqdm's default
    (at most every 0.1 s) it would show the first point of a burst and not the rest, and a
    security-only run would sit at "1/N" until its end. The postfix counts verdicts, or, for
    points without one (no satisfaction metric), the points where PGD found a violation.
    """

    def __init__(self, total: int, *, disabled: bool = False, label: str = "verify") -> None:
        tqdm = load("tqdm").tqdm
        self._bar = tqdm(
            total=total,
            unit="pt",
            file=sys.stderr,
            disable=disabled,
            desc=label,
            leave=False,
            mininterval=0,
            miniters=1,
            smoothing=0,
        )
        self._counts = {"holds": 0, "violated": 0, "unknown": 0}
        self._attacked = {"pgd_violated": 0}

    def update(self, point: PointResult) -> None:
        if point.verdict is not None:
            self._counts[point.verdict.status.value] += 1
            postfix = self._counts
        elif point.attack_violated is not None:
            self._attacked["pgd_violated"] += int(point.attack_violated)
            postfix = self._attacked
        else:
            postfix = self._counts
        self._bar.set_postfix(postfix, refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        self._bar.close()
