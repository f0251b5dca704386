"""The JSON document of a run (DESIGN.md §7) and the summary numbers it carries.

Beyond the fixed fields, a document says where it is not self-evident: ``store`` (present
when the verdict store supplied, withheld or could not serve verdicts: its path and counts),
``reused`` on each point whose verdict came from the store (``replayed``: a stored witness
re-checked in this run; otherwise the store's word only), ``incomplete`` (why the run stopped
before deciding everything, e.g. SIGTERM), and ``data.from_metadata`` (the data set was the
one named in the model's metadata, not chosen with ``--data``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

from robustprop.verify.formats.output_file import write_output
from robustprop.verify.run.points import Points, PointSelection
from robustprop.verify.run.result import RunResult

__all__ = ["summary", "sweep_document", "to_json", "write_json"]


def summary(result: RunResult) -> dict[str, Any]:
    """The ``summary`` object of the document: :meth:`Summary.to_json` of the run's summary."""
    return result.summary.to_json()


def to_json(result: RunResult, version: str) -> dict[str, Any]:
    cfg = result.config
    store = result.store
    points: list[dict[str, Any]] = []
    for p in result.points:
        entry: dict[str, Any] = {"index": p.index, "label": p.label}
        if p.verdict is not None:
            entry.update(p.verdict.to_json())
        if p.reused:
            where = str(store.path) if store is not None else None
            entry["reused"] = {"store": where, "replayed": p.replayed}
        if p.attack_violated is not None:
            entry["attack"] = {"violated": p.attack_violated, "loss": p.attack_margin}
        if p.sampling_fraction is not None:
            entry["sampling"] = {"fraction": p.sampling_fraction}
        points.append(entry)
    document: dict[str, Any] = {
        "tool": "robustprop",
        "version": version,
        "network": {"path": cfg.model.source, "sha256": result.network.sha256},
        "property": {"name": cfg.prop.name, "params": cfg.prop.params()},
        "data": _data(cfg.points, len(result.points)),
        "backend": result.backend,
        "metrics": list(cfg.metrics),
    }
    if result.incomplete:
        document["incomplete"] = result.incomplete
    if store is not None and store.notable:
        document["store"] = store.to_json()
    document["summary"] = summary(result)
    document["points"] = points
    return document


def _data(points: PointSelection | Points, count: int) -> dict[str, Any]:
    """Where the points came from: a dataset selection, or arrays given to the Python API."""
    if isinstance(points, PointSelection):
        out = {"source": points.data, "split": points.split, "points": count, "seed": points.seed}
        if points.from_metadata:
            out["from_metadata"] = True
        return out
    return {"source": points.source, "split": None, "points": count, "seed": None}


def sweep_document(documents: list[dict[str, Any]], version: str) -> dict[str, Any]:
    """Several runs of one property at different ε, in one file (``incomplete`` when one of
    them is)."""
    out: dict[str, Any] = {"tool": "robustprop", "version": version, "kind": "sweep"}
    stopped = [d["incomplete"] for d in documents if d.get("incomplete")]
    if stopped:
        out["incomplete"] = stopped[0]
    out["runs"] = documents
    return out


def write_json(path: Path, document: dict[str, Any]) -> None:
    """Write atomically: a killed run never leaves a half-written report.

    An unwritable ``path`` (a folder, a parent that is a file, a full disk) is an InputError
    naming it, and leaves nothing behind.
    """
    data = (json.dumps(document, indent=1) + "\n").encode()

    def write(handle: IO[bytes]) -> None:
        handle.write(data)

    write_output(path, "--json", write)
