"""The JSON document of a run (DESIGN.md §7) and the summary numbers it carries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

from robustprop.verify.engine.verdict import Status
from robustprop.verify.formats.output_file import write_output
from robustprop.verify.runs.runner import RunResult


def summary(result: RunResult) -> dict[str, Any]:
    """Counts and metrics; satisfaction is an interval whenever unknowns exist."""
    n = len(result.points)
    counts = result.counts
    out: dict[str, Any] = {"points": n, "time_s": round(result.time_s, 3)}
    metrics = result.config.metrics
    if "satisfaction" in metrics:
        out["holds"] = counts[Status.HOLDS.value]
        out["violated"] = counts[Status.VIOLATED.value]
        out["unknown"] = counts[Status.UNKNOWN.value]
        out["satisfaction"] = [
            counts[Status.HOLDS.value] / n,
            (n - counts[Status.VIOLATED.value]) / n,
        ]
        stages: dict[str, int] = {}
        for p in result.points:
            if p.verdict is not None and p.verdict.status is not Status.UNKNOWN:
                stages[p.verdict.stage.value] = stages.get(p.verdict.stage.value, 0) + 1
        out["decided_by_stage"] = stages
        out["tau"] = result.config.tau
        out["timeout_s"] = result.config.timeout_s
    if "security" in metrics:
        secure = sum(1 for p in result.points if p.attack_violated is False)
        out["security"] = secure / n
        if "satisfaction" in metrics:
            out["security_minus_satisfaction_upper"] = out["security"] - out["satisfaction"][1]
            out["refuted_but_missed_by_attack"] = [
                p.index
                for p in result.points
                if p.verdict is not None
                and p.verdict.status is Status.VIOLATED
                and not p.attack_violated
            ]
    if "accuracy" in metrics:
        fractions = [p.sampling_fraction for p in result.points if p.sampling_fraction is not None]
        out["accuracy"] = sum(fractions) / len(fractions) if fractions else None
        out["samples"] = result.config.samples
    out["invariant_breaches"] = list(result.breaches)
    return out


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
        "network": {"path": str(cfg.model_path), "sha256": result.network.sha256},
        "property": {"name": cfg.prop.name, "params": cfg.prop.params()},
        "data": {
            "source": cfg.selection.data,
            "split": cfg.selection.split,
            "points": len(result.points),
            "seed": cfg.selection.seed,
        },
        "backend": result.backend,
        "metrics": list(cfg.metrics),
        "summary": summary(result),
        "points": points,
    }


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
