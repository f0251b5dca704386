"""The report's data model: checked run records, sections of runs, figures, titles.

A :class:`RunRecord` is one run document of ``verify run --json`` after checking (see
:mod:`robustprop.verify.report.load`); :func:`sections` groups records by property (its
parameters except ε) for :mod:`robustprop.verify.report.markdown` and
:mod:`robustprop.verify.report.plots`, which both sit above this module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from robustprop.verify.formats.text import printable

__all__ = [
    "VERDICTS",
    "Figure",
    "LabelBy",
    "PointRecord",
    "RunRecord",
    "Section",
    "param_text",
    "section_title",
    "sections",
]

VERDICTS = ("holds", "violated", "unknown")
LabelBy = Literal["network", "file"]


@dataclass(frozen=True)
class PointRecord:
    """One entry of a run document's ``points``; metrics not requested are ``None``."""

    index: int
    label: int | None
    verdict: str | None  # holds | violated | unknown; None without the satisfaction metric
    stage: str | None
    backend: str | None
    time_s: float
    reason: str
    witness_x: tuple[float, ...] | None
    witness_y: tuple[float, ...] | None
    attack_violated: bool | None
    attack_loss: float | None
    sampling_fraction: float | None

    def witness_text(self, limit: int = 10) -> str:
        """A one-line summary of the witness: its output, the top class, its size."""
        if self.witness_y is None or self.witness_x is None:
            return "no witness"
        y = self.witness_y
        shown = ", ".join(f"{v:.4g}" for v in y[:limit]) + (", …" if len(y) > limit else "")
        top = max(range(len(y)), key=y.__getitem__) if y else None
        return f"f(x') = [{shown}] (argmax {top}), x' has {len(self.witness_x)} values"


@dataclass(frozen=True)
class RunRecord:
    """One run document, checked; ``origin`` says where it came from (file, ``runs[i]``),
    with control characters escaped; every other text field is as the file has it."""

    origin: str
    file: Path
    network: str
    sha256: str
    prop: str
    params: Mapping[str, float | str]
    data_source: str
    split: str
    backend: str
    metrics: tuple[str, ...]
    points: tuple[PointRecord, ...]
    n_points: int
    holds: int | None
    violated: int | None
    unknown: int | None
    satisfaction: tuple[float, float] | None
    security: float | None
    accuracy: float | None
    refuted_missed: tuple[int, ...] | None  # None: not measured (needs security+satisfaction)
    breaches: tuple[str, ...]
    decided_by_stage: Mapping[str, int]
    time_s: float | None
    tau: float | None = None
    timeout_s: float | None = None
    samples: int | None = None
    label: str = field(default="", compare=False)  # display name of the network, set later

    @property
    def eps(self) -> float | None:
        value = self.params.get("eps")
        return float(value) if isinstance(value, int | float) else None

    @property
    def property_key(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        """The property and its parameters except ε: runs with the same key share a section."""
        rest = tuple(
            sorted(
                (k, f"{v:g}" if isinstance(v, float) else str(v))
                for k, v in self.params.items()
                if k != "eps"
            )
        )
        return self.prop, rest

    @property
    def network_key(self) -> tuple[str, str]:
        return self.network, self.sha256

    @property
    def security_gap(self) -> float | None:
        """Security − satisfaction upper bound: how far the attack overstates the certified."""
        if self.security is None or self.satisfaction is None:
            return None
        return self.security - self.satisfaction[1]

    @property
    def accuracy_gap(self) -> float | None:
        """Accuracy − security: how far uniform sampling overstates what PGD finds."""
        if self.accuracy is None or self.security is None:
            return None
        return self.accuracy - self.security


@dataclass(frozen=True)
class Section:
    """All runs of one property (same parameters except ε), rows in network then ε order."""

    prop: str
    params: tuple[tuple[str, str], ...]
    runs: tuple[RunRecord, ...]
    networks: tuple[str, ...]  # labels, in the order of first appearance over all inputs

    @property
    def eps_values(self) -> tuple[float, ...]:
        return tuple(sorted({r.eps for r in self.runs if r.eps is not None}))

    @property
    def is_sweep(self) -> bool:
        return len(self.eps_values) > 1

    def row_labels(self) -> list[str]:
        """Network labels of the rows, with the input file added where (network, ε) repeats."""
        seen: dict[tuple[str, float | None], int] = {}
        for r in self.runs:
            seen[(r.label, r.eps)] = seen.get((r.label, r.eps), 0) + 1
        return [
            f"{r.label} [{r.file.name}{r.origin.removeprefix(printable(r.file))}]"
            if seen[(r.label, r.eps)] > 1
            else r.label
            for r in self.runs
        ]


@dataclass(frozen=True)
class Figure:
    """A written figure: its path relative to the report, and what it shows."""

    relpath: str
    caption: str


# ---------------------------------------------------------------------------- grouping


def sections(runs: Sequence[RunRecord]) -> list[Section]:
    """Runs grouped by property (parameters except ε), in the order the inputs name them."""
    networks = list(dict.fromkeys(r.label for r in runs))
    grouped: dict[tuple[str, tuple[tuple[str, str], ...]], list[RunRecord]] = {}
    for r in runs:
        grouped.setdefault(r.property_key, []).append(r)
    out: list[Section] = []
    for (prop, params), members in grouped.items():
        order = sorted(
            members, key=lambda r: (networks.index(r.label), r.eps if r.eps is not None else 0.0)
        )
        labels = tuple(n for n in networks if any(r.label == n for r in members))
        out.append(Section(prop, params, tuple(order), labels))
    return out


_NAMES = {
    "sr": "standard robustness",
    "lr": "Lipschitz robustness",
    "cr": "classification robustness",
    "scr": "strong classification robustness",
}
_SYMBOLS = {"eps": "ε", "delta": "δ", "lipschitz": "L", "eta": "η"}


def param_text(name: str, value: str) -> str:
    return f"{_SYMBOLS.get(name, name)} = {value}"


def section_title(section: Section) -> str:
    """E.g. ``LR (Lipschitz robustness), L = 10, reference = output``."""
    name = section.prop.upper()
    if section.prop in _NAMES:
        name += f" ({_NAMES[section.prop]})"
    return ", ".join([name, *(param_text(k, v) for k, v in section.params)])
