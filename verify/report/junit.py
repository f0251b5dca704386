"""JUnit XML from run documents, so CI systems list every (point, property) as a test.

Layout: ``<testsuites>`` holds one ``<testsuite>`` per run document (named by property,
parameters and network), with one ``<testcase>`` per point, named ``point 17 (LR eps=0.1)``,
classname the network path, time the point's ``time_s``.

Outcomes:

- ``holds`` passes.
- ``violated`` is a ``<failure>`` whose message summarises the witness (stage, backend,
  the network's output at the counterexample); the body carries the witness values.
- ``unknown`` (timeout or limit) is ``<skipped>`` with the reason. An unknown point was
  neither proved nor refuted: GitHub Actions reporters, GitLab and Jenkins show skipped
  cases as a separate, visible count, while ``<error>`` would paint a solver timeout like a
  crash of the tool and make reporters fail a build that the satisfaction gate passed.
  Whether unknowns fail the build is the gate's decision (``--min-satisfaction`` on the
  lower bound, ``--require holds``), carried by the exit code.
- Without the satisfaction metric a point fails when PGD found a counterexample, and is
  skipped otherwise (not verified).
- An invariant breach (a bug, DESIGN.md §3) is an extra ``<testcase name="invariants">``
  with one ``<error>``: this is the case ``<error>`` exists for.

- A verdict reused from the verdict store (an untrusted cache) says so on its case: a
  ``<property name="reused">`` and a ``<system-out>`` line naming the store and whether its
  witness was replayed in this run; the suite's properties carry the store's counts, and
  ``incomplete`` when the run was stopped (SIGTERM, SIGINT) before deciding every point.

The counts in the attributes (``tests``, ``failures``, ``errors``, ``skipped``) are computed
from the cases written, on each suite and on ``<testsuites>``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from robustprop.verify.formats.output_file import write_output
from robustprop.verify.formats.text import printable
from robustprop.verify.report.load import parse_document
from robustprop.verify.report.model import PointRecord, RunRecord

__all__ = ["RunNotes", "junit_tree", "write_junit", "write_junit_runs"]

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")  # not allowed in XML 1.0


@dataclass(frozen=True)
class RunNotes:
    """What a run document says beyond its records: per point position, where a reused
    verdict came from; the store's counts; why the run is incomplete."""

    reused: Mapping[int, str] = field(default_factory=dict)
    store: str = ""
    incomplete: str = ""


def _notes(run: Mapping[str, Any]) -> RunNotes:
    """The notes of one run document (already checked by :func:`parse_document`)."""
    reused: dict[int, str] = {}
    for i, point in enumerate(run.get("points") or []):
        mark = point.get("reused") if isinstance(point, Mapping) else None
        if isinstance(mark, Mapping):
            how = (
                "its witness replayed in this run"
                if mark.get("replayed")
                else "not re-checked in this run"
            )
            reused[i] = f"verdict reused from the store {mark.get('store')} ({how})"
    store = run.get("store")
    text = ""
    if isinstance(store, Mapping):
        text = (
            f"{store.get('path')}: {store.get('reused', 0)} reused "
            f"({store.get('replayed', 0)} witness(es) replayed, {store.get('unchecked', 0)} "
            f"unchecked, {store.get('trusted', 0)} trusted), "
            f"{store.get('redecided', 0)} re-decided"
        )
        if store.get("unavailable"):
            text += f"; unavailable: {store.get('unavailable')}"
    return RunNotes(reused, text, str(run.get("incomplete") or ""))


def _clean(text: str) -> str:
    """``text`` as XML 1.0 allows it: each line through :func:`printable` (control characters,
    undecodable bytes and lone surrogates escaped), line breaks kept."""
    return _CONTROL.sub("?", "\n".join(printable(line) for line in text.split("\n")))


def _short_params(r: RunRecord) -> str:
    return r.prop.upper() + ("" if r.eps is None else f" eps={r.eps:g}")


def _suite_name(r: RunRecord) -> str:
    params = ", ".join(
        f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in r.params.items()
    )
    return f"{r.prop.upper()} ({params}) on {r.network}"


def _values(values: tuple[float, ...] | None, limit: int = 32) -> str:
    if values is None:
        return "[]"
    shown = ", ".join(f"{v:.6g}" for v in values[:limit])
    more = len(values) - limit
    return f"[{shown}" + (f", … {more} more" if more > 0 else "") + "]"


def _case(suite: ET.Element, r: RunRecord, p: PointRecord, reused: str = "") -> str:
    """Append the point's test case; returns its outcome (passed/failure/skipped)."""
    case = ET.SubElement(
        suite,
        "testcase",
        name=f"point {p.index} ({_short_params(r)})",
        classname=_clean(r.network),
        time=f"{p.time_s:.6f}",
    )
    outcome = _outcome(case, p)
    if reused:
        props = ET.Element("properties")
        ET.SubElement(props, "property", name="reused", value=_clean(reused))
        case.insert(0, props)
        ET.SubElement(case, "system-out").text = _clean(reused + "\n")
    return outcome


def _outcome(case: ET.Element, p: PointRecord) -> str:
    """The case's failure or skipped element; returns the outcome."""
    label = "" if p.label is None else f", label {p.label}"
    if p.verdict == "violated":
        msg = (
            f"violated at point {p.index}{label}, found by {p.stage or '?'} ({p.backend or '?'}): "
        )
        failure = ET.SubElement(
            case, "failure", type="violated", message=_clean(msg + p.witness_text())
        )
        failure.text = _clean(
            f"{msg}{p.witness_text()}\nwitness x' = {_values(p.witness_x)}\n"
            f"f(x') = {_values(p.witness_y)}\n"
        )
        return "failure"
    if p.verdict == "unknown":
        reason = p.reason or "undecided"
        ET.SubElement(
            case, "skipped", message=_clean(f"unknown at point {p.index}{label}: {reason}")
        )
        return "skipped"
    if p.verdict == "holds":
        return "passed"
    if p.attack_violated:
        loss = "" if p.attack_loss is None else f" (loss {p.attack_loss:.4g})"
        ET.SubElement(
            case,
            "failure",
            type="attack",
            message=f"PGD found a counterexample{loss}{label}; not verified exactly",
        )
        return "failure"
    detail = "PGD found no counterexample" if p.attack_violated is False else "no attack run"
    ET.SubElement(case, "skipped", message=f"not verified (satisfaction not requested); {detail}")
    return "skipped"


def _suite(parent: ET.Element, r: RunRecord, notes: RunNotes) -> dict[str, int]:
    suite = ET.SubElement(parent, "testsuite", name=_clean(_suite_name(r)))
    props = ET.SubElement(suite, "properties")
    facts: dict[str, str] = {
        "network": r.network,
        "network.sha256": r.sha256,
        "property": r.prop,
        "data": f"{r.data_source} ({r.split})",
        "backend": r.backend,
    }
    if r.satisfaction is not None:
        facts["satisfaction"] = f"[{r.satisfaction[0]:.6g}, {r.satisfaction[1]:.6g}]"
    if r.security is not None:
        facts["security"] = f"{r.security:.6g}"
    if r.accuracy is not None:
        facts["accuracy"] = f"{r.accuracy:.6g}"
    if notes.store:
        facts["store"] = notes.store
    if notes.incomplete:
        facts["incomplete"] = notes.incomplete
    for key, text in facts.items():
        ET.SubElement(props, "property", name=key, value=_clean(text))
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for i, p in enumerate(r.points):
        outcome = _case(suite, r, p, notes.reused.get(i, ""))
        counts["tests"] += 1
        if outcome != "passed":
            counts["failures" if outcome == "failure" else "skipped"] += 1
    if r.breaches:
        case = ET.SubElement(suite, "testcase", name="invariants", classname=_clean(r.network))
        case.set("time", "0")
        error = ET.SubElement(
            case,
            "error",
            type="invariant",
            message=_clean(f"{len(r.breaches)} invariant breach(es), a bug: {r.breaches[0]}"),
        )
        error.text = _clean("\n".join(r.breaches) + "\n")
        counts["tests"] += 1
        counts["errors"] += 1
    total_time = r.time_s if r.time_s is not None else sum(p.time_s for p in r.points)
    for key, value in counts.items():
        suite.set(key, str(value))
    suite.set("time", f"{total_time:.6f}")
    return {**counts, "time_ms": round(total_time * 1000)}


def junit_tree(
    runs: Sequence[RunRecord], notes: Sequence[RunNotes] | None = None
) -> ET.ElementTree[ET.Element]:
    """The JUnit document of ``runs`` (already checked records), with ``notes`` per run."""
    root = ET.Element("testsuites", name="robustprop")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0, "time_ms": 0}
    for i, r in enumerate(runs):
        note = notes[i] if notes is not None and i < len(notes) else RunNotes()
        for key, value in _suite(root, r, note).items():
            totals[key] += value
    for key in ("tests", "failures", "errors", "skipped"):
        root.set(key, str(totals[key]))
    root.set("time", f"{totals['time_ms'] / 1000:.3f}")
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit_runs(
    path: Path, runs: Sequence[RunRecord], notes: Sequence[RunNotes] | None = None
) -> None:
    """Write ``runs`` as JUnit XML at ``path``, atomically (temporary file, then rename).

    An unwritable ``path`` is an InputError naming it (``--junit``); nothing is left behind.
    """
    tree = junit_tree(runs, notes)

    def write(handle: IO[bytes]) -> None:
        tree.write(handle, encoding="utf-8", xml_declaration=True)
        handle.write(b"\n")

    write_output(path, "--junit", write)


def write_junit(path: Path, documents: Sequence[Mapping[str, Any]]) -> None:
    """Write JUnit XML for run documents (``report_json.to_json``) or sweep documents.

    The run command calls it with the documents of its run (one per ε of a sweep).
    Raises :class:`InputError` for a document that is not a run or sweep document.
    """
    runs: list[RunRecord] = []
    notes: list[RunNotes] = []
    for i, doc in enumerate(documents):
        runs.extend(parse_document(doc, Path(f"<document {i}>")))
        members = doc.get("runs") if doc.get("kind") == "sweep" else [doc]
        notes.extend(_notes(m) for m in members or [] if isinstance(m, Mapping))
    write_junit_runs(path, runs, notes if len(notes) == len(runs) else None)
