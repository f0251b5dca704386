"""The JSON document of a run (DESIGN.md §7) and the summary numbers it carries."""

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
    points: list[dict[str, Any]] = []
    for p in result.points:
        entry: dict[str, Any] = {"index": p.index, "label": p.label}
        if p.verdict is not None:
            entry.update(p.verdict.to_json())
        if p.attack_violated is not None:
            entry["attack"] = {"violated": p.attack_violated, "loss": p.attack_margin}
        if p.sampling_fraction is not None:
            entry["sampling"] = {"fraction": p.sampling_fraction}
        points.append(entry)
    return {
        "tool": "robustprop",
        "version": version,
        "network": {"path": cfg.model.source, "sha256": result.network.sha256},
        "property": {"name": cfg.prop.name, "params": cfg.prop.params()},
        "data": _data(cfg.points, len(result.points)),
        "backend": result.backend,
        "metrics": list(cfg.metrics),
        "summary": summary(result),
        "points": points,
    }


def _data(points: PointSelection | Points, count: int) -> dict[str, Any]:
    """Where the points came from: a dataset selection, or arrays given to the Python API."""
    if isinstance(points, PointSelection):
        return {"source": points.data, "split": points.split, "points": count, "seed": points.seed}
    return {"source": points.source, "split": None, "points": count, "seed": None}


def sweep_document(documents: list[dict[str, Any]], version: str) -> dict[str, Any]:
    """Several runs of one property at different ε, in one file."""
    return {"tool": "robustprop", "version": version, "kind": "sweep", "runs": documents}


def write_json(path: Path, document: dict[str, Any]) -> None:
    """Write atomically: a killed run never leaves a half-written report.

    An unwritable ``path`` (a folder, a parent that is a file, a full disk) is an InputError
    naming it, and leaves nothing behind.
    """
    data = (json.dumps(document, indent=1) + "\n").encode()

    def write(handle: IO[bytes]) -> None:
        handle.write(data)

    write_output(path, "--json", write)
