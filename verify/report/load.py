"""Reading run documents: ``verify run --json`` files (run or sweep) into checked records.

Input: the JSON documents of ``verify run --json`` (DESIGN.md §7), or sweep documents
``{"tool": "robustprop", "kind": "sweep", "runs": [run, ...]}``, several files at once.
Every file is read and checked before anything is written; a malformed file is an
:class:`InputError` naming the file and the field. Each network gets a display label.

A file is read only up to :data:`MAX_DOCUMENT_BYTES` and parsed only when its brackets nest
at most :data:`MAX_JSON_DEPTH` deep (checked on the raw bytes before parsing), so a huge or
deeply nested file is refused instead of exhausting memory or the parser's stack. Names from
a file (keys, the file name) appear in messages with control characters escaped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any, Final

import numpy as np

from robustprop.properties.errors import InputError
from robustprop.verify.formats.text import printable
from robustprop.verify.report.model import VERDICTS, LabelBy, PointRecord, RunRecord

__all__ = ["MAX_DOCUMENT_BYTES", "MAX_JSON_DEPTH", "load_runs", "parse_document"]

#: The largest run document read: 256 MiB (a run of 10,000 points, each with a 784-value
#: witness, is about 150 MB; a typical run of 100 points is under 100 kB).
MAX_DOCUMENT_BYTES: Final = 256 * 1024**2
#: The deepest nesting of JSON arrays and objects accepted: 64 (a sweep document nests 6).
MAX_JSON_DEPTH: Final = 64

# A JSON string (possessive: linear time), and anything that is not a bracket.
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")
_CHUNK = 1 << 20


class _Doc:
    """A JSON object with the file and the path inside it, for one-line error messages."""

    def __init__(self, data: object, file: str, where: str) -> None:
        if not isinstance(data, dict):
            raise InputError(f"{file}: {where or 'document'}: expected a JSON object")
        self.data: dict[str, Any] = data
        self.file = file  # for messages: control characters escaped
        self.where = where

    def _at(self, key: str) -> str:
        return f"{self.where}.{printable(key)}" if self.where else printable(key)

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
            raise InputError(
                f"{doc.file}: {prop.where}.params.{printable(k)}: expected a number or string"
            )
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
    shown = printable(file)
    doc = _Doc(document, shown, "")
    tool = doc.data.get("tool")
    if tool != "robustprop":
        raise InputError(f"{shown}: not a robustprop run document (tool: {tool!r})")
    kind = doc.data.get("kind", "run")
    if kind == "run":
        return [_run(doc, file)]
    if kind == "sweep":
        runs = doc.items("runs")
        if not runs:
            raise InputError(f"{shown}: runs: the sweep has no runs")
        return [_run(_Doc(r, shown, f"runs[{i}]"), file) for i, r in enumerate(runs)]
    raise InputError(f"{shown}: unknown kind {kind!r} (expected a run or a sweep document)")


def _read(path: Path) -> object:
    shown = printable(path)
    try:
        with path.open("rb") as handle:  # a FIFO or /dev/zero too: never more than the cap
            raw = handle.read(MAX_DOCUMENT_BYTES + 1)
    except FileNotFoundError:
        raise InputError(f"{shown}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{shown}: is a directory, expected a JSON file") from None
    except OSError as err:
        raise InputError(f"{shown}: cannot read: {err.strerror or err}") from None
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise InputError(
            f"{shown}: larger than the cap of {MAX_DOCUMENT_BYTES:,} bytes on a run document "
            "(MAX_DOCUMENT_BYTES)"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{shown}: not UTF-8 text, expected a JSON file") from None
    depth = _nesting_depth(raw)
    if depth > MAX_JSON_DEPTH:
        raise InputError(
            f"{shown}: JSON nested more than {MAX_JSON_DEPTH} levels deep (the cap, "
            "MAX_JSON_DEPTH); not a run document"
        )
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(
            f"{shown}: not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})"
        ) from None
    except (ValueError, RecursionError) as err:  # e.g. an integer of 5,000 digits
        raise InputError(f"{shown}: not a readable JSON document ({err})") from None


def _nesting_depth(raw: bytes) -> int:
    """How deep the brackets outside strings nest (stops counting past the cap)."""
    brackets = _NOT_BRACKET.sub(b"", _STRING.sub(b"", raw))
    deepest = level = 0
    for start in range(0, len(brackets), _CHUNK):
        codes = np.frombuffer(brackets[start : start + _CHUNK], dtype=np.uint8)
        opening = (codes == ord("[")) | (codes == ord("{"))
        levels = level + np.cumsum(np.where(opening, 1, -1))
        deepest, level = max(deepest, int(levels.max())), int(levels[-1])
        if deepest > MAX_JSON_DEPTH:
            break
    return deepest


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
