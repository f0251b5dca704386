"""What the LR counterexamples look like, and whether the paper's attack finds them.

Lipschitz robustness (``‖f(x) − f(x̂)‖∞ ≤ L·‖x − x̂‖∞`` for every ``x`` in the ε-ball) is
violated at nearly every point by every regime here, while the paper reports some LR
robustness for its LR-trained Fashion-MNIST network. For one network and ε this module
measures, at the verifier's witnesses (each replayed through onnxruntime before it counts):

- the output distance ``‖f(x′) − f(x̂)‖∞`` next to the bound ``L·‖x′ − x̂‖∞`` it breaks,
- the input distance ``‖x′ − x̂‖∞`` and the local slope (their ratio), as min / median / max,
- and at how many of the same points the paper's PGD (:meth:`PGDConfig.paper`: 50 sign steps
  of 0.01 from a uniform start) finds a violation by itself.

The verdicts come from the verdict store when an earlier certified measurement left them
there (a stored ``violated`` is replayed before it is reused), so this costs little after
the certified table. Results are cached with the other measurements of the network
(:mod:`robustprop.verify.experiment.measure`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np

from robustprop.api import check, load
from robustprop.properties import PGDConfig, make_property
from robustprop.verify.engine.replay import Replayer
from robustprop.verify.engine.verdict import Status
from robustprop.verify.experiment.measure import digest
from robustprop.verify.run.points import PointSelection, load_points

__all__ = ["LipschitzFinding", "Spread", "lipschitz_finding", "spread"]

#: Bumped when what is measured changes, so older cache entries are not reused.
_VERSION = 1


@dataclass(frozen=True)
class Spread:
    """Minimum, median and maximum of some measured values."""

    low: float
    mid: float
    high: float

    def text(self, fmt: str = ".3g") -> str:
        return f"{self.low:{fmt}} / {self.mid:{fmt}} / {self.high:{fmt}}"


def spread(values: Sequence[float]) -> Spread | None:
    if not values:
        return None
    return Spread(float(min(values)), float(median(values)), float(max(values)))


@dataclass(frozen=True)
class LipschitzFinding:
    """LR at one ε on one network: verdict counts, what the witnesses show, the paper's PGD."""

    dataset: str
    regime: str
    eps: float
    lipschitz: float
    points: int
    holds: int
    violated: int
    unknown: int
    output_gap: Spread | None  # ‖f(x′) − f(x̂)‖∞ at the witnesses
    bound: Spread | None  # L·‖x′ − x̂‖∞ at the witnesses
    distance: Spread | None  # ‖x′ − x̂‖∞ at the witnesses
    slope: Spread | None  # ‖f(x′) − f(x̂)‖∞ / ‖x′ − x̂‖∞
    paper_pgd: int  # points where the paper's PGD finds a violation
    paper_pgd_of_violated: int  # … among the points the verifier refuted
    time_s: float

    @staticmethod
    def from_json(data: dict[str, Any]) -> LipschitzFinding:
        fields = dict(data)
        for name in ("output_gap", "bound", "distance", "slope"):
            value = fields.get(name)
            fields[name] = None if value is None else Spread(**value)
        return LipschitzFinding(**fields)


def _key(net: Path, eps: float, points: int, timeout_s: float) -> str:
    return json.dumps(
        {
            "net": digest(net),
            "analysis": "lr-witnesses",
            "version": _VERSION,
            "eps": eps,
            "points": points,
            "timeout_s": timeout_s,
        },
        sort_keys=True,
    )


def lipschitz_finding(
    net: Path,
    dataset: str,
    regime: str,
    eps: float,
    *,
    points: int,
    data: str,
    timeout_s: float,
    store: Path | None = None,
    cache: dict[str, Any] | None = None,
) -> tuple[LipschitzFinding, bool]:
    """Measure (or reuse from ``cache``) the finding; returns it and whether it was reused.

    ``data``: a dataset name or ``.npz`` whose first ``points`` test rows are the centers.
    """
    key = _key(net, eps, points, timeout_s)
    if cache is not None and key in cache:
        return LipschitzFinding.from_json(cache[key]), True
    start = time.monotonic()
    prop = make_property("lr", eps=eps)
    model = load(net)
    sat = check(
        model,
        prop,
        data=data,
        points=points,
        metrics=("satisfaction",),
        timeout=timeout_s,
        attack_config=PGDConfig.strong(),
        store=store,
    )
    paper = check(
        model,
        prop,
        data=data,
        points=points,
        metrics=("security",),
        attack_config=PGDConfig.paper(),
    )
    replayer = Replayer(net)
    lipschitz = float(getattr(prop, "lipschitz", 10.0))
    chosen = load_points(PointSelection(data, "test", points), sat.network.n)
    row = {int(index): i for i, index in enumerate(chosen.indices)}
    gaps: list[float] = []
    distances: list[float] = []
    slopes: list[float] = []
    refuted: set[int] = set()
    for p in sat.points:
        v = p.verdict
        if v is None or v.status is not Status.VIOLATED or v.witness is None:
            continue
        refuted.add(p.index)
        x = np.asarray(v.witness, dtype=np.float64).reshape(-1)
        center = chosen.x[row[p.index]].reshape(-1)
        out = replayer.evaluate64(np.stack([center, x]))
        gap = float(np.max(np.abs(out[1] - out[0])))
        dist = float(np.max(np.abs(x - center)))
        gaps.append(gap)
        distances.append(dist)
        if dist > 0:
            slopes.append(gap / dist)
    found = {p.index for p in paper.points if p.attack_violated}
    counts = sat.counts
    finding = LipschitzFinding(
        dataset=dataset,
        regime=regime,
        eps=eps,
        lipschitz=lipschitz,
        points=len(sat.points),
        holds=counts.get("holds", 0),
        violated=counts.get("violated", 0),
        unknown=counts.get("unknown", 0),
        output_gap=spread(gaps),
        bound=spread([lipschitz * d for d in distances]),
        distance=spread(distances),
        slope=spread(slopes),
        paper_pgd=len(found),
        paper_pgd_of_violated=len(found & refuted),
        time_s=round(time.monotonic() - start, 3),
    )
    if cache is not None:
        cache[key] = asdict(finding)
    return finding, False
