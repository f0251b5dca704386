"""The JSON document of a run (DESIGN.md §7) and the summary numbers it carries.

Beyond the fixed fields, a document says where it is not self-evident: ``store`` (present
when the verdict store supplied, withheld or could not serve verdicts: its path and counts),
``reused`` on each point whose verdict came from the store (``replayed``: a stored witness
re-checked in this run; otherwise the store's word only), ``incomplete`` (why the run stopped
before deciding everything, e.g. SIGTERM), and ``data.from_metadata`` (the data set was the
one named in the model's metadata, not chosen with ``--data``).

A document is a record a run can be repeated from: ``run`` holds the command line (``argv``),
the UTC start and end times (ISO 8601) and the host; ``settings`` every setting that changes a
number (strategy, requested backend, timeouts, τ, attack preset and its PGD parameters, seed,
samples, device, executor, the input domain and normalisation, a dropped final Softmax; the
property's parameters are under ``property``); ``versions`` the versions of robustprop,
Python and the numerical packages (torch, onnxruntime, onnx, numpy, maraboupy, z3-solver,
highspy), read from the installed distributions (``null``: not installed).
"""

from __future__ import annotations

import dataclasses
import json
import platform
import socket
from datetime import UTC, datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import IO, Any, Final

from robustprop.verify.formats.output_file import write_output
from robustprop.verify.run.config import ATTACK_PRESETS, RunConfig
from robustprop.verify.run.points import Points, PointSelection, domain_from_metadata
from robustprop.verify.run.result import RunResult

__all__ = [
    "VERSIONED",
    "run_record",
    "settings",
    "summary",
    "sweep_document",
    "to_json",
    "versions",
    "write_json",
]

#: The distributions whose versions a document records (with Python's).
VERSIONED: Final = (
    "robustprop",
    "torch",
    "onnxruntime",
    "onnx",
    "numpy",
    "maraboupy",
    "z3-solver",
    "highspy",
)


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
        "settings": settings(cfg),
        "run": run_record(cfg, result.time_s),
        "versions": versions(),
    }
    if cfg.model.original_sha256 != cfg.model.sha256:
        document["network"]["file_sha256"] = cfg.model.original_sha256
    if result.incomplete:
        document["incomplete"] = result.incomplete
    if store is not None and store.notable:
        document["store"] = store.to_json()
    document["summary"] = summary(result)
    document["points"] = points
    return document


def settings(config: RunConfig) -> dict[str, Any]:
    """Every setting of ``config`` that changes a number of the run (DESIGN.md §7)."""
    preset = next((k for k, make in ATTACK_PRESETS.items() if make() == config.attack), "custom")
    domain = config.domain
    domain_from = "given"
    if domain is None:
        meta = config.model.metadata()
        domain = domain_from_metadata(meta, config.model.source)
        domain_from = "metadata" if "domain" in meta else "default"
    norm = config.model.normalization
    return {
        "strategy": config.strategy.value,
        "backend": config.backend,
        "timeout_s": config.timeout_s,
        "max_time_s": config.max_time_s,
        "jobs": config.jobs,
        "tau": config.tau,
        "attack": {"preset": preset, **dataclasses.asdict(config.attack)},
        "seed": config.seed,
        "samples": config.samples,
        "device": config.device,
        "executor": config.executor.value,
        "domain": {"lower": domain.lower, "upper": domain.upper, "from": domain_from},
        "input_normalization": None if norm is None else norm.to_json(),
        "dropped_final_op": config.model.dropped or None,
        "store": {"reuse": sorted(s.value for s in config.reuse), "trusted": config.store_trusted},
    }


def run_record(config: RunConfig, time_s: float) -> dict[str, Any]:
    """The command line, when the run started and ended (UTC, ISO 8601), and where."""
    end = datetime.now(UTC)
    return {
        "argv": list(config.argv),
        "started": (end - timedelta(seconds=time_s)).isoformat(timespec="seconds"),
        "finished": end.isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "platform": platform.platform(),
    }


def versions() -> dict[str, str | None]:
    """Python's and each of :data:`VERSIONED`'s installed version (``None``: not installed)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for dist in VERSIONED:
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = None
    return out


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
