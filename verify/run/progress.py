"""A progress bar over the points of a run, on stderr, with running verdict counts."""

from __future__ import annotations

import sys

from robustprop.lazy import load
from robustprop.verify.run.result import PointResult

__all__ = ["ProgressBar"]


class ProgressBar:
    """tqdm over points; ``update`` is a run's progress callback."""

    def __init__(self, total: int, *, disabled: bool = False, label: str = "verify") -> None:
        tqdm = load("tqdm").tqdm
        self._bar = tqdm(
            total=total, unit="pt", file=sys.stderr, disable=disabled, desc=label, leave=False
        )
        self._counts = {"holds": 0, "violated": 0, "unknown": 0}

    def update(self, point: PointResult) -> None:
        if point.verdict is not None:
            self._counts[point.verdict.status.value] += 1
        self._bar.set_postfix(self._counts, refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        self._bar.close()
