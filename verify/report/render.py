"""`verify report`: read run documents, compare networks per property, write the report.

Input: the JSON documents of ``verify run --json`` (DESIGN.md §7), or sweep documents
``{"tool": "robustprop", "kind": "sweep", "runs": [run, ...]}``, several files at once.
Every file is read and checked before anything is written; a malformed file is an
:class:`InputError` naming the file and the field.

Output: one section per property (name and parameters except ε), one table row per
(network, ε) so networks sit side by side, a figure per section (metric vs ε when the
section has several ε, else bars per network), and per-run notes (points refuted by the
verifier but missed by PGD, unknowns, invariant breaches). The Markdown or HTML text comes
from :mod:`robustprop.verify.report.markdown`, the figures from
:mod:`robustprop.verify.report.plots`. The report and its
``<stem>_files/`` folder are built in a temporary folder and renamed into place.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from robustprop.properties.errors import InputError

log = logging.getLogger(__name__)

__all__ = [
    "VERDICTS",
    "Figure",
    "PointRecord",
    "RunRecord",
    "Section",
    "load_runs",
    "parse_document",
    "section_title",
    "sections",
    "write_report",
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
    """One run document, checked; ``origin`` says where it came from (file, ``runs[i]``)."""

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
            f"{r.label} [{r.file.name}{r.origin.removeprefix(str(r.file))}]"
            if seen[(r.label, r.eps)] > 1
            else r.label
            for r in self.runs
        ]


@dataclass(frozen=True)
class Figure:
    """A written figure: its path relative to the report, and what it shows."""

    relpath: str
    caption: str


# ---------------------------------------------------------------------------- reading


class _Doc:
    """A JSON object with the file and the path inside it, for one-line error messages."""

    def __init__(self, data: object, file: str, where: str) -> None:
        if not isinstance(data, dict):
            raise InputError(f"{file}: {where or 'document'}: expected a JSON object")
        self.data: dict[str, Any] = data
        self.file = file
        self.where = where

    def _at(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def _fail(self, key: str, problem: str) -> InputError:
        return InputError(f"{self.file}: {self._at(key)}: {problem}")

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def raw(self, key: str) -> Any:
        if key not in self.data:
            raise self._fail(key, "missing")
        return self.data[key]

    def obj(self, key: str) -> _Doc:
        return _Doc(self.raw(key), self.file, self._at(key))

    def text(self, key: str, default: str | None = None) -> str:
        if default is not None and self.data.get(key) is None:
            return default
        value = self.raw(key)
        if not isinstance(value, str):
            raise self._fail(key, f"expected a string, got {value!r}")
        return value

    def integer(self, key: str) -> int:
        value = self.raw(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._fail(key, f"expected an integer, got {value!r}")
        return value

    def number(self, key: str) -> float:
        value = self.raw(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._fail(key, f"expected a number, got {value!r}")
        return float(value)

    def opt_integer(self, key: str) -> int | None:
        return self.integer(key) if self.has(key) else None

    def opt_number(self, key: str) -> float | None:
        return self.number(key) if self.has(key) else None

    def fraction(self, key: str) -> float | None:
        if not self.has(key):
            return None
        value = self.number(key)
        if not 0.0 <= value <= 1.0:
            raise self._fail(key, f"expected a fraction in [0, 1], got {value!r}")
        return value

    def items(self, key: str) -> list[Any]:
        value = self.raw(key)
        if not isinstance(value, list):
            raise self._fail(key, f"expected a list, got {type(value).__name__}")
        return value


def _floats(doc: _Doc, key: str) -> tuple[float, ...]:
    values = doc.items(key)
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        raise InputError(f"{doc.file}: {doc._at(key)}: expected a list of numbers")
    return tuple(float(v) for v in values)


def _point(doc: _Doc) -> PointRecord:
    verdict = doc.text("verdict") if doc.has("verdict") else None
    if verdict is not None and verdict not in VERDICTS:
        raise InputError(
            f"{doc.file}: {doc.where}.verdict: unknown verdict {verdict!r} "
            f"(expected {', '.join(VERDICTS)})"
        )
    witness_x = witness_y = None
    if doc.has("witness"):
        w = doc.obj("witness")
        witness_x, witness_y = _floats(w, "x"), _floats(w, "y")
    attack_violated = attack_loss = None
    if doc.has("attack"):
        a = doc.obj("attack")
        value = a.raw("violated")
        if not isinstance(value, bool):
            raise InputError(f"{doc.file}: {a.where}.violated: expected true or false")
        attack_violated, attack_loss = value, a.opt_number("loss")
    sampling = doc.obj("sampling").fraction("fraction") if doc.has("sampling") else None
    return PointRecord(
        index=doc.integer("index"),
        label=doc.opt_integer("label"),
        verdict=verdict,
        stage=doc.text("stage", default="") or None,
        backend=doc.text("backend", default="") or None,
        time_s=doc.opt_number("time_s") or 0.0,
        reason=doc.text("reason", default=""),
        witness_x=witness_x,
        witness_y=witness_y,
        attack_violated=attack_violated,
        attack_loss=attack_loss,
        sampling_fraction=sampling,
    )


def _run(doc: _Doc, file: Path) -> RunRecord:
    net = doc.obj("network")
    prop = doc.obj("property")
    params: dict[str, float | str] = {}
    for k, v in prop.obj("params").data.items():
        if isinstance(v, bool) or not isinstance(v, int | float | str):
            raise InputError(f"{doc.file}: {prop.where}.params.{k}: expected a number or string")
        params[str(k)] = v
    data = doc.obj("data")
    summary = doc.obj("summary")
    metrics = tuple(str(m) for m in doc.items("metrics"))
    points = tuple(
        _point(_Doc(p, doc.file, f"{doc._at('points')}[{i}]"))
        for i, p in enumerate(doc.items("points"))
    )
    n = summary.integer("points")
    if n != len(points):
        raise InputError(
            f"{doc.file}: {summary.where}.points says {n}, but 'points' lists {len(points)}"
        )
    satisfaction = None
    holds = violated = unknown = None
    if summary.has("satisfaction"):
        lo, hi = _pair(summary, "satisfaction")
        satisfaction = (lo, hi)
        holds, violated, unknown = (summary.integer(k) for k in VERDICTS)
        counted = {v: sum(1 for p in points if p.verdict == v) for v in VERDICTS}
        if (holds, violated, unknown) != tuple(counted[v] for v in VERDICTS):
            raise InputError(
                f"{doc.file}: {summary.where}: holds/violated/unknown "
                f"{holds}/{violated}/{unknown} do not match the points "
                f"({counted['holds']}/{counted['violated']}/{counted['unknown']})"
            )
    refuted: tuple[int, ...] | None = None
    if summary.has("refuted_but_missed_by_attack"):
        raw = summary.items("refuted_but_missed_by_attack")
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in raw):
            raise InputError(
                f"{doc.file}: {summary.where}.refuted_but_missed_by_attack: "
                "expected a list of point indices"
            )
        refuted = tuple(raw)
    breaches = tuple(str(b) for b in summary.items("invariant_breaches"))
    stages: dict[str, int] = {}
    if summary.has("decided_by_stage"):
        by_stage = summary.obj("decided_by_stage")
        stages = {str(k): by_stage.integer(k) for k in by_stage.data}
    return RunRecord(
        origin=doc.file + (f" {doc.where}" if doc.where else ""),
        file=file,
        network=net.text("path"),
        sha256=net.text("sha256", default=""),
        prop=prop.text("name"),
        params=params,
        data_source=data.text("source", default="?"),
        split=data.text("split", default="?"),
        backend=doc.text("backend", default="?"),
        metrics=metrics,
        points=points,
        n_points=n,
        holds=holds,
        violated=violated,
        unknown=unknown,
        satisfaction=satisfaction,
        security=summary.fraction("security"),
        accuracy=summary.fraction("accuracy"),
        refuted_missed=refuted,
        breaches=breaches,
        decided_by_stage=stages,
        time_s=summary.opt_number("time_s"),
        tau=summary.opt_number("tau"),
        timeout_s=summary.opt_number("timeout_s"),
        samples=summary.opt_integer("samples"),
    )


def _pair(doc: _Doc, key: str) -> tuple[float, float]:
    values = _floats(doc, key)
    if len(values) != 2 or not 0.0 <= values[0] <= values[1] <= 1.0:
        raise InputError(
            f"{doc.file}: {doc._at(key)}: expected [lo, hi] with 0 <= lo <= hi <= 1, "
            f"got {list(values)}"
        )
    return values[0], values[1]


def parse_document(document: object, file: Path) -> list[RunRecord]:
    """The runs of one run or sweep document; ``file`` names it in error messages."""
    doc = _Doc(document, str(file), "")
    tool = doc.data.get("tool")
    if tool != "robustprop":
        raise InputError(f"{file}: not a robustprop run document (tool: {tool!r})")
    kind = doc.data.get("kind", "run")
    if kind == "run":
        return [_run(doc, file)]
    if kind == "sweep":
        runs = doc.items("runs")
        if not runs:
            raise InputError(f"{file}: runs: the sweep has no runs")
        return [_run(_Doc(r, str(file), f"runs[{i}]"), file) for i, r in enumerate(runs)]
    raise InputError(f"{file}: unknown kind {kind!r} (expected a run or a sweep document)")


def _read(path: Path) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, expected a JSON file") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text, expected a JSON file") from None
    except OSError as err:
        raise InputError(f"{path}: cannot read: {err.strerror or err}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(
            f"{path}: not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})"
        ) from None


def load_runs(paths: Sequence[Path], label_by: LabelBy = "network") -> list[RunRecord]:
    """Every run in ``paths``, checked, each with a display ``label`` for its network.

    ``label_by="network"``: the shortest tail of the network path that tells the networks
    apart (``runs/m.onnx`` vs ``smoke/m.onnx``), plus a sha256 prefix when one path held
    different networks. ``"file"``: the input file's stem (``baseline.json`` → baseline).
    """
    if not paths:
        raise InputError("no input files: name at least one run JSON file")
    runs: list[RunRecord] = []
    for path in paths:
        runs.extend(parse_document(_read(path), path))
    return _labelled(runs, label_by)


def _labelled(runs: list[RunRecord], label_by: LabelBy) -> list[RunRecord]:
    from dataclasses import replace

    keys = list(dict.fromkeys(r.network_key for r in runs))
    labels = dict(zip(keys, _network_labels(keys), strict=True))
    if label_by == "file":
        per_file: dict[Path, set[tuple[str, str]]] = {}
        for r in runs:
            per_file.setdefault(r.file, set()).add(r.network_key)
        stems = _unique_tails(list(dict.fromkeys(r.file.as_posix() for r in runs)))
        return [
            replace(
                r,
                label=stems[r.file.as_posix()].removesuffix(".json")
                + (f": {labels[r.network_key]}" if len(per_file[r.file]) > 1 else ""),
            )
            for r in runs
        ]
    return [replace(r, label=labels[r.network_key]) for r in runs]


def _unique_tails(paths: list[str]) -> dict[str, str]:
    """For each distinct path, its shortest tail of components that no other path shares."""
    parts = {p: PurePosixPath(p).parts for p in paths}
    out: dict[str, str] = {}
    for p, mine in parts.items():
        for k in range(1, len(mine) + 1):
            tail = mine[-k:]
            if all(q == p or parts[q][-k:] != tail for q in parts):
                break
        out[p] = "/".join(tail)
    return out


def _network_labels(keys: list[tuple[str, str]]) -> list[str]:
    tails = _unique_tails(list(dict.fromkeys(path for path, _ in keys)))
    shas: dict[str, set[str]] = {}
    for path, sha in keys:
        shas.setdefault(path, set()).add(sha)
    return [tails[path] + (f" @{sha[:8]}" if len(shas[path]) > 1 else "") for path, sha in keys]


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


# ---------------------------------------------------------------------------- writing


def report_format(path: Path) -> Literal["markdown", "html"]:
    suffix = path.suffix.lower()
    if suffix in (".md", ".markdown"):
        return "markdown"
    if suffix in (".html", ".htm"):
        return "html"
    raise InputError(f"{path}: the report must end in .md or .html, got {suffix or 'no suffix'!r}")


def check_output_path(flag: str, path: Path) -> None:
    """Refuse an output path that cannot become a file: a folder, or one below a file."""
    if path.is_dir():
        raise InputError(f"{flag} {path}: is a directory, expected a file name")
    folder = next((p for p in path.parents if p.exists()), None)
    if folder is not None and not folder.is_dir():
        raise InputError(f"{flag} {path}: {folder} is a file, not a folder")


def write_report(
    out: Path,
    runs: Sequence[RunRecord],
    inputs: Sequence[Path],
    version: str,
) -> list[Figure]:
    """Write the report at ``out`` (Markdown or HTML by suffix) and its PNG figures.

    Figures go to ``<stem>_files/`` beside ``out`` (replacing an earlier one). Everything is
    built in a temporary folder next to ``out`` and renamed into place, so a failure leaves
    no partial report.
    """
    from robustprop.verify.report import markdown as report_md
    from robustprop.verify.report import plots

    fmt = report_format(out)
    check_output_path("-o", out)
    files_name = f"{out.stem}_files"
    final_files = out.parent / files_name
    if final_files.exists() and not final_files.is_dir():
        raise InputError(f"{final_files}: exists and is not a folder; the figures go there")
    groups = sections(runs)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    except OSError as err:
        raise InputError(f"-o {out}: cannot write ({err.strerror or err})") from err
    try:
        staging = tmp / files_name
        staging.mkdir()
        figures = [
            plots.section_figure(s, i + 1, staging, files_name) for i, s in enumerate(groups)
        ]
        if fmt == "markdown":
            text = report_md.markdown(groups, figures, inputs, version)
        else:
            text = report_md.html(groups, figures, inputs, version)
        (tmp / out.name).write_text(text, encoding="utf-8")
        previous = tmp / "previous"
        if final_files.exists():
            final_files.rename(previous)
        try:
            staging.rename(final_files)
        except BaseException:
            if previous.exists():
                previous.rename(final_files)
            raise
        os.replace(tmp / out.name, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("wrote %s with %d figures in %s", out, len(figures), final_files)
    return figures
