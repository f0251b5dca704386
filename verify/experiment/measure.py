"""Measuring the grid: security and accuracy curves over ε (E1–E4), certified satisfaction.

Every measurement is one :func:`robustprop.verify.run.runner.run` of one property at one ε on one
network:

- **curves** (the paper's figures): constraint security (the paper's PGD, :meth:`PGDConfig.paper`)
  and constraint accuracy (uniform sampling) for the SR, LR and SCR attacks at each ε;
- **certified** (the paper's future work): satisfaction decided exactly by the staged verifier
  (center, PGD, bounds, Marabou/MILP portfolio), next to security and accuracy on the same
  points, with the per-stage counts.

Results are cached per network in ``<net>.eval.json``, keyed by the network file's digest and
every setting of the measurement, so a rerun measures only what is missing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any, Final

from robustprop.api import check, load
from robustprop.properties import make_property
from robustprop.verify.formats.output_file import write_output
from robustprop.verify.run.config import ATTACK_PRESETS

log = logging.getLogger(__name__)

#: The attacks of the paper's figures, with its parameters (δ = 10, L = 10, η = 0.52).
ATTACKS: Final = ("sr", "lr", "scr")


@dataclass(frozen=True)
class Measure:
    """One measurement: which property at which ε, on which points, how."""

    prop: str
    eps: float
    points: int
    metrics: tuple[str, ...]
    attack: str  # a key of ATTACK_PRESETS: "paper" (the figures) or "strong" (the verifier's)
    samples: int
    timeout_s: float = 0.0  # only used with satisfaction

    def key(self, digest: str) -> str:
        return json.dumps({"net": digest, **asdict(self)}, sort_keys=True)


@dataclass(frozen=True)
class Row:
    """A measurement's result on one network (a row of curves.csv / certified.csv)."""

    dataset: str
    regime: str
    prop: str
    eps: float
    points: int
    security: float | None
    accuracy: float | None
    holds: int | None
    violated: int | None
    unknown: int | None
    stages: dict[str, int]
    time_s: float

    @property
    def satisfaction(self) -> tuple[float, float] | None:
        if self.holds is None or self.unknown is None:
            return None
        return self.holds / self.points, (self.holds + self.unknown) / self.points


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def measure(
    net: Path,
    dataset: str,
    regime: str,
    m: Measure,
    *,
    data: str | None = None,
    data_dir: Path | None = None,
    store: Path | None = None,
    cache: dict[str, Any] | None = None,
) -> tuple[Row, bool]:
    """Run (or reuse from ``cache``) measurement ``m``; returns the row and whether reused.

    The points are the first ``m.points`` test rows of ``data`` (a dataset name or ``.npz``;
    default: ``dataset``); rows are labelled with ``dataset``.
    """
    key = m.key(digest(net))
    if cache is not None and key in cache:
        cached = _cached_row(cache[key])
        if cached is not None:
            return cached, True
        log.warning("%s: a malformed cached row for %s; measuring again", cache_path(net), key)
    start = time.monotonic()
    result = check(
        load(net),
        make_property(m.prop, eps=m.eps),
        data=data or dataset,
        points=m.points,
        data_dir=data_dir,
        metrics=m.metrics,
        timeout=m.timeout_s or 60.0,
        attack_config=ATTACK_PRESETS[m.attack](),
        samples=m.samples,
        store=store,
    )
    elapsed = time.monotonic() - start
    s = result.summary
    row = Row(
        dataset=dataset,
        regime=regime,
        prop=m.prop,
        eps=m.eps,
        points=s.points,
        security=s.security,
        accuracy=s.accuracy,
        holds=s.holds,
        violated=s.violated,
        unknown=s.unknown,
        stages=dict(s.decided_by_stage),
        time_s=round(elapsed, 3),
    )
    if cache is not None:
        cache[key] = asdict(row)
    return row, False


def _cached_row(value: Any) -> Row | None:
    """A cached row, or None when the value is not one (an edited or foreign eval.json)."""
    if not isinstance(value, dict):
        return None
    try:
        return Row(**value)
    except TypeError:
        return None


def cache_path(net: Path) -> Path:
    return net.with_name(net.stem + ".eval.json")


def read_cache(net: Path) -> dict[str, Any]:
    """The network's cached measurements (empty when missing or unreadable)."""
    path = cache_path(net)
    if not path.is_file():
        return {}
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError):
        log.warning("%s: unreadable cache, measuring again", path)
        return {}
    return loaded if isinstance(loaded, dict) else {}


def write_cache(net: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to the cache file atomically (a killed run leaves the old or the new one).

    Entries on disk that ``data`` lacks (written by another run on the same work dir since
    ``data`` was read) are kept and added to ``data``: two runs measuring the same network
    do not erase each other's measurements (barring a write in the instant between the
    read and the rename)."""
    for key, value in read_cache(net).items():
        data.setdefault(key, value)
    text = json.dumps(data, sort_keys=True).encode()

    def write(handle: IO[bytes]) -> None:
        handle.write(text)

    write_output(cache_path(net), "measurement cache", write)


def measure_all(
    net: Path,
    dataset: str,
    regime: str,
    measures: list[Measure],
    *,
    data: str | None = None,
    data_dir: Path | None = None,
    store: Path | None = None,
    say: Callable[[str], None] = lambda _: None,
) -> list[Row]:
    """Every measurement of ``measures`` on one network; each new one is cached as soon as
    it is done, so an interrupted run loses at most the measurement in progress."""
    rows: list[Row] = []
    cache = read_cache(net)
    for m in measures:
        row, reused = measure(
            net, dataset, regime, m, data=data, data_dir=data_dir, store=store, cache=cache
        )
        if not reused:
            write_cache(net, cache)
        rows.append(row)
        say(_describe(row, reused))
    return rows


def _describe(row: Row, reused: bool) -> str:
    parts = [f"{row.dataset} {row.regime} {row.prop} eps={row.eps:g}:"]
    if row.holds is not None:
        parts.append(f"holds/violated/unknown {row.holds}/{row.violated}/{row.unknown}")
    if row.security is not None:
        parts.append(f"security {row.security:.3f}")
    if row.accuracy is not None:
        parts.append(f"accuracy {row.accuracy:.3f}")
    parts.append("(cached)" if reused else f"({row.time_s:.1f} s)")
    return " ".join(parts)
