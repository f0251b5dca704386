"""Soundness audit: Marabou vs Z3 vs the staged ``verify run`` vs sampling and PGD.

A seeded generator writes many random small ReLU networks as real ONNX files (2–4 inputs, or
``--inputs LO,HI``; 1–2 hidden layers of 3–8 ReLUs, 2–4 outputs, a final ``Clip(−100, 100)``;
some are scaled so that the clamp is reached) and random points in ``[0, 1]^n``. For every
network and every property (sr, lr, cr, scr) it picks parameters near the sampled worst case,
so that verdicts split between holds and violated, and then decides each (network, point,
property) query four ways:

- **marabou** and **z3**: :class:`robustprop.verify.engine.point_query.PointDecider` in a worker
process per
  backend (:class:`robustprop.verify.run.pool.WorkerPool`: hard time limits, a crash costs one
  query);
- **pipeline**: the ``verify run`` CLI with its default staged strategy (center, PGD, bounds,
  branch and bound for CR and SR, exact backend) and JSON output, alternately ``--backend
  auto`` and ``--backend marabou``; its reasons name the stage ("bab" for branch and bound);
- **empirical**: dense uniform sampling of the region, its box corners and a strong PGD, the
  worst candidate replayed through onnxruntime (``Replayer.replay``, float32 and float64).

- **bab-refused**: branch and bound by ReLU splitting alone (every input dimension split as
  ReLUs would be on a wide input), given a ``confirm`` that refuses every candidate — as if
  each replay failed. It can only answer holds or unknown, and must never answer holds where
  a violation exists: a search that ends early on a candidate it cannot confirm must not lose
  sub-domains (a resumed search once did, and proved the rest).

A *disagreement* is: two exact answers that differ (holds vs violated, "unknown" never
disagrees), a replay-confirmed empirical violation where anything says holds, a ``violated``
whose witness is outside the region or satisfies the property in float64, or a pipeline run
that ends in an error. Each offending query is saved as ``net.onnx`` + ``point.npz`` +
``case.json`` under ``tests/verify/regressions/<id>/``; ``tests/verify/test_regressions.py``
replays every saved case with :func:`check_case`.

    nice .venv/bin/python benchmarks/audit.py --networks 90 --points 6 --seed 0 --timeout 20

With ``--hostile K`` (default 1) the first K points of every network also get the hostile
VNN-LIB specs of ``benchmarks/audit_specs.py`` (huge, tiny and subnormal constants, point and
empty boxes, repeated atoms), each decided by ``verify vnnlib`` with Marabou, the MILP and Z3
(plain) and ``auto`` (staged); their disagreements count like the others.

Prints one line per network, then the counts. Exit code 1 if any disagreement, else 0.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import shutil
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from robustprop.properties import Domain, PGDConfig, Property, References, attack, make_property
from robustprop.properties.cr import CR
from robustprop.properties.scr import SCR
from robustprop.properties.spec import Negation
from robustprop.verify.engine.bab import BabConfig, bab_decide, supported
from robustprop.verify.engine.crown import Crown
from robustprop.verify.engine.network import Network, load_network
from robustprop.verify.engine.point_query import Query
from robustprop.verify.engine.replay import Replayer
from robustprop.verify.engine.torch_net import to_torch
from robustprop.verify.engine.verdict import Verdict
from robustprop.verify.run.model import ModelBytes
from robustprop.verify.run.pool import WorkerPool, WorkerSpec

ROOT = Path(__file__).resolve().parents[1]
REGRESSIONS = ROOT / "tests" / "verify" / "regressions"
PROPERTIES = ("sr", "lr", "cr", "scr")
EXACT = ("marabou", "z3")
TAU = 1e-6
DOMAIN = Domain(0.0, 1.0)
SAMPLES = 4000

FloatArray = npt.NDArray[np.float64]


# ---------------------------------------------------------------------------- generation


def random_layers(
    rng: np.random.Generator, inputs: tuple[int, int] = (2, 5)
) -> list[tuple[FloatArray, FloatArray]]:
    """Weights ``(W (out, in), b)`` of a random MLP with ``inputs[0] ≤ n < inputs[1]``
    inputs; one in four is scaled past the clamp."""
    n = int(rng.integers(*inputs))
    hidden = [int(rng.integers(3, 9)) for _ in range(int(rng.integers(1, 3)))]
    m = int(rng.integers(2, 5))
    sizes = [n, *hidden, m]
    scale = float(rng.choice([1.0, 1.0, 3.0, 60.0]))
    layers = []
    for k, (a, b) in enumerate(itertools.pairwise(sizes)):
        W = rng.normal(0.0, 1.5 / np.sqrt(a), size=(b, a))
        bias = rng.normal(0.0, 0.3, size=b)
        if k == len(sizes) - 2:
            W, bias = W * scale, bias * scale
        layers.append((W.astype(np.float32).astype(np.float64), bias.astype(np.float32)))
    return [(W, np.asarray(b, dtype=np.float64)) for W, b in layers]


def write_onnx(layers: Sequence[tuple[FloatArray, FloatArray]], path: Path, dataset: str) -> None:
    """``MatMul + Add (+ Relu)`` per layer, then ``Clip(−100, 100)``, opset 17, metadata."""
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    h = "input"
    for k, (W, b) in enumerate(layers):
        inits += [
            numpy_helper.from_array(W.T.astype(np.float32), f"W{k}"),
            numpy_helper.from_array(b.astype(np.float32), f"b{k}"),
        ]
        nodes += [
            helper.make_node("MatMul", [h, f"W{k}"], [f"m{k}"], name=f"matmul_{k}"),
            helper.make_node("Add", [f"m{k}", f"b{k}"], [f"a{k}"], name=f"add_{k}"),
        ]
        h = f"a{k}"
        if k + 1 < len(layers):
            nodes.append(helper.make_node("Relu", [h], [f"r{k}"], name=f"relu_{k}"))
            h = f"r{k}"
    inits += [
        numpy_helper.from_array(np.array(-100.0, dtype=np.float32), "lo"),
        numpy_helper.from_array(np.array(100.0, dtype=np.float32), "hi"),
    ]
    nodes.append(helper.make_node("Clip", [h, "lo", "hi"], ["output"], name="clip"))
    n, m = layers[0][0].shape[1], layers[-1][0].shape[0]
    graph = helper.make_graph(
        nodes,
        "audit",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", n])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", m])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, {"dataset": dataset, "domain": "[0.0, 1.0]"})
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())


def write_points(path: Path, x: npt.NDArray[np.float32], y: npt.NDArray[np.int64]) -> None:
    np.savez(path, x=x, y=y)


def choose_params(
    name: str,
    network: Network,
    x: FloatArray,
    y_center: FloatArray,
    reference: str,
    labels: npt.NDArray[np.int64],
    rng: np.random.Generator,
) -> dict[str, float | str]:
    """Parameters near the sampled worst case over the points, so verdicts split."""
    eps = float(rng.choice([0.02, 0.05, 0.1, 0.2]))
    params: dict[str, float | str] = {"eps": eps, "reference": reference}
    if name == "cr":
        return params
    worst = []
    for i in range(len(x)):
        lo, hi = np.maximum(x[i] - eps, 0.0), np.minimum(x[i] + eps, 1.0)
        xs = lo + (hi - lo) * rng.random((400, x.shape[1]))
        ys = network.evaluate(xs)
        dev = np.max(np.abs(ys - y_center[i]), axis=1)
        if name == "sr":
            worst.append(float(dev.max()))
        elif name == "lr":
            dist = np.max(np.abs(xs - x[i]), axis=1)
            worst.append(float(np.max(dev / np.maximum(dist, 1e-9))))
        else:
            c = int(np.argmax(y_center[i])) if reference == "output" else int(labels[i])
            z = ys - ys.max(axis=1, keepdims=True)
            p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
            worst.append(float(p[:, c].min()))
    median = float(np.median(worst))
    factor = float(rng.uniform(0.8, 1.25))
    if name == "sr":
        params["delta"] = round(max(median * factor, 1e-3), 6)
    elif name == "lr":
        params["lipschitz"] = round(max(median * factor, 1e-3), 6)
    else:
        params["eta"] = round(float(np.clip(median * rng.uniform(0.9, 1.03), 0.51, 0.995)), 6)
    return params


# ---------------------------------------------------------------------------- checks


@dataclass
class Outcome:
    """Everything found on one query, and what disagrees."""

    verdicts: dict[str, str] = field(default_factory=dict)  # decider -> holds/violated/unknown
    reasons: dict[str, str] = field(default_factory=dict)
    empirical: str = ""  # "" or how a confirmed violation was found
    disagreements: list[str] = field(default_factory=list)


def references(
    prop: Property, replayer: Replayer, x: FloatArray, labels: npt.NDArray[np.int64]
) -> tuple[FloatArray, References]:
    """``f(x̂)`` (onnxruntime, float64) and the property's references, as ``verify run``."""
    y_center = replayer.evaluate64(x)
    return y_center, prop.references(torch.from_numpy(y_center), torch.from_numpy(labels))


def negations(
    prop: Property, replayer: Replayer, x: FloatArray, labels: npt.NDArray[np.int64]
) -> list[Negation]:
    """The negation per point, built exactly as ``verify run`` builds it."""
    y_center, refs = references(prop, replayer, x, labels)
    return [
        prop.negation(x[i], y_center[i], int(refs.classes[i]), DOMAIN, TAU) for i in range(len(x))
    ]


def exact(
    net_path: Path, backend: str, negs: Sequence[Negation], timeout_s: float
) -> dict[int, Verdict]:
    """Verdicts of one exact backend (:class:`PointDecider` in a worker process).

    The pool enforces the time limit: Marabou does not always stop at its own timeout, and a
    hung or crashed query becomes an ``unknown`` with the reason instead of stalling the audit.
    """
    queries = [Query(i, negation) for i, negation in enumerate(negs)]
    with WorkerPool(WorkerSpec(ModelBytes.read(net_path), backend), jobs=1, grace_s=5.0) as pool:
        return dict((q.index, v) for q, v in pool.map(queries, timeout_s))


def bab_refused(network: Network, negs: Sequence[Negation], timeout_s: float) -> dict[int, str]:
    """ReLU splitting with every candidate refused (module doc: bab-refused): ``holds`` or
    ``unknown`` per linear negation (SCR and LR are not branch and bound's)."""
    crown = Crown(network)
    relu_only = BabConfig(max_input_dims=0)
    out: dict[int, str] = {}
    for i, negation in enumerate(negs):
        if not supported(negation):
            continue
        deadline = time.monotonic() + timeout_s
        found = bab_decide(crown, negation, lambda x: None, deadline, relu_only)
        out[i] = found.status.value
    return out


def empirical(
    prop: Property,
    network: Network,
    replayer: Replayer,
    x: FloatArray,
    labels: npt.NDArray[np.int64],
    negs: Sequence[Negation],
    seed: int,
) -> list[str]:
    """Per point: "" or how a replay-confirmed violation was found (pgd, corner, sample).

    Candidates: a strong PGD (targeted per class for CR and SCR), the corners of the region's
    box and uniform samples; per kind the three with the largest margin (float64 IR) are
    replayed through onnxruntime against the negation, so a violation counts only beyond τ.
    """
    _, refs = references(prop, replayer, x, labels)
    generator = torch.Generator().manual_seed(seed)
    found = attack(
        prop,
        to_torch(network),
        torch.from_numpy(x).to(torch.float32),
        References(refs.scores.to(torch.float32), refs.classes),
        DOMAIN,
        PGDConfig.strong(),
        generator,
        targeted=isinstance(prop, CR | SCR),
    )
    rng = np.random.default_rng(seed)
    out = []
    for i in range(len(x)):
        lo, hi = np.maximum(x[i] - prop.eps, 0.0), np.minimum(x[i] + prop.eps, 1.0)
        candidates = {
            "pgd": found.x[i].double().numpy()[None, :],
            "corner": np.array(list(itertools.product(*zip(lo, hi, strict=True)))),
            "sample": lo + (hi - lo) * rng.random((SAMPLES, x.shape[1])),
        }
        how = ""
        for kind, xs in candidates.items():
            k = len(xs)
            margin = prop.margin(
                torch.from_numpy(xs),
                torch.from_numpy(network.evaluate(xs)),
                torch.from_numpy(x[i : i + 1]).expand(k, -1),
                References(refs.scores[i : i + 1].expand(k, -1), refs.classes[i : i + 1].expand(k)),
            )
            for j in torch.argsort(margin, descending=True)[:3].tolist():
                if prop.violated(margin[j]).item() and replayer.replay(xs[j], negs[i]).confirmed:
                    how = kind
                    break
            if how:
                break
        out.append(how)
    return out


def witness_ok(network: Network, negation: Negation, w: Any) -> str:
    """ "" if the witness lies in a box of the negation and satisfies it in float64 (the IR)."""
    if w is None:
        return "violated without a witness"
    point = np.asarray(w, dtype=np.float64).reshape(-1)
    if not any(
        np.all(point >= d.lower - 1e-12) and np.all(point <= d.upper + 1e-12)
        for d in negation.disjuncts
    ):
        return "witness outside the region"
    if not negation.is_satisfied_by(point, network.evaluate(point)[0]):
        return "witness does not violate the property in float64 (IR)"
    return ""


def run_pipeline(
    net_path: Path,
    data_path: Path,
    name: str,
    params: dict[str, float | str],
    n_points: int,
    backend: str,
    timeout_s: float,
    out: Path,
) -> tuple[list[dict[str, Any]] | None, str]:
    """``verify run`` as a user runs it; the per-point JSON entries, or an error line."""
    from click.testing import CliRunner

    from robustprop.verify.cli.main import cli

    args = [
        "run", "--property", name, "--net", str(net_path), "--data", str(data_path),
        "--points", str(n_points), "--backend", backend, "--timeout", str(timeout_s),
        "--samples", "500", "--no-cache", "--no-progress", "--json", str(out),
    ]  # fmt: skip
    flags = {"eps": "--eps", "delta": "--delta", "lipschitz": "--lipschitz", "eta": "--eta"}
    for key, value in params.items():
        args += ["--reference", str(value)] if key == "reference" else [flags[key], repr(value)]
    result = CliRunner().invoke(cli, args)
    if result.exit_code not in (0, 1) or not out.exists():
        lines = (result.stderr or result.stdout).strip().splitlines()
        return None, f"verify run exit {result.exit_code}: {lines[-1] if lines else ''}"
    doc = json.loads(out.read_text())
    return list(doc["points"]), ""


def compare(
    outcome: Outcome, network: Network, negation: Negation, witnesses: dict[str, Any]
) -> None:
    """Fill ``outcome.disagreements`` (module docstring: what disagrees)."""
    decided = {k: v for k, v in outcome.verdicts.items() if v in ("holds", "violated")}
    for a, b in itertools.combinations(sorted(decided), 2):
        if decided[a] != decided[b]:
            outcome.disagreements.append(f"{a} says {decided[a]}, {b} says {decided[b]}")
    if outcome.empirical:
        for k, v in decided.items():
            if v == "holds":
                outcome.disagreements.append(
                    f"{k} says holds, {outcome.empirical} finds a confirmed violation"
                )
    for k, v in decided.items():
        if v == "violated":
            problem = witness_ok(network, negation, witnesses.get(k))
            if problem:
                outcome.disagreements.append(f"{k}: {problem}")


# ---------------------------------------------------------------------------- one network


@dataclass
class NetworkReport:
    sizes: list[int]  # layer widths, input first
    outcomes: list[tuple[str, int, Outcome]]  # (property, point, outcome)
    seconds: float
    pipeline_errors: list[str]
    specs: list[Any] = field(default_factory=list)  # audit_specs.SpecOutcome per hostile spec


def hostile(
    net_path: Path, replayer: Replayer, x: FloatArray, timeout_s: float, folder: Path, seed: int
) -> list[Any]:
    """The hostile specs of ``benchmarks/audit_specs.py`` around each point of ``x``."""
    import audit_specs  # benchmarks/audit_specs.py, beside this script

    rng = np.random.default_rng(seed)
    out: list[Any] = []
    for i in range(len(x)):
        out += audit_specs.audit_specs(net_path, replayer, x[i], 0.05, timeout_s, folder, rng)
    return out


def audit_network(
    index: int,
    seed: int,
    n_points: int,
    timeout_s: float,
    work: Path,
    n_hostile: int = 0,
    inputs: tuple[int, int] = (2, 5),
) -> NetworkReport:
    start = time.monotonic()
    rng = np.random.default_rng([seed, index])
    layers = random_layers(rng, inputs)
    folder = work / f"net{index:04d}"
    folder.mkdir()
    net_path, data_path = folder / "net.onnx", folder / "points.npz"
    m = layers[-1][0].shape[0]
    x32 = rng.random((n_points, layers[0][0].shape[1])).astype(np.float32)
    labels = rng.integers(0, m, size=n_points).astype(np.int64)
    labels[0] = m - 1  # every class index is < m, and m - 1 fixes n_classes for the reader
    write_points(data_path, x32, labels)
    write_onnx(layers, net_path, str(data_path))
    network = load_network(net_path)
    replayer = Replayer(net_path)
    x = x32.astype(np.float64)
    y_center = replayer.evaluate64(x)
    pipeline_backend = "auto" if index % 2 == 0 else "marabou"
    outcomes: list[tuple[str, int, Outcome]] = []
    errors: list[str] = []
    chosen: dict[str, tuple[dict[str, float | str], Property, list[Negation]]] = {}
    for name in PROPERTIES:
        reference = "label" if rng.random() < 0.25 else "output"
        params = choose_params(name, network, x, y_center, reference, labels, rng)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            prop = make_property(name, **params)
        chosen[name] = (params, prop, negations(prop, replayer, x, labels))
    # One worker per backend for the whole network: all properties' queries in one pool.
    every = [neg for _, _, negs in chosen.values() for neg in negs]
    decided = {b: exact(net_path, b, every, timeout_s) for b in EXACT}
    refused = bab_refused(network, every, min(timeout_s, 5.0))
    for k, name in enumerate(PROPERTIES):
        params, prop, negs = chosen[name]
        results = {b: {i: decided[b][k * n_points + i] for i in range(n_points)} for b in EXACT}
        points, error = run_pipeline(
            net_path, data_path, name, params, n_points, pipeline_backend, timeout_s,
            folder / f"{name}.json",
        )  # fmt: skip
        if error:
            errors.append(f"{name} {params}: {error}")
        found = empirical(prop, network, replayer, x, labels, negs, seed + index)
        for i in range(n_points):
            outcome = Outcome(empirical=found[i])
            witnesses: dict[str, Any] = {}
            for b in EXACT:
                v = results[b][i]
                outcome.verdicts[b] = v.status.value
                outcome.reasons[b] = v.reason
                witnesses[b] = v.witness
            if k * n_points + i in refused:
                outcome.verdicts["bab-refused"] = refused[k * n_points + i]
            if points is not None:
                entry = points[i]
                outcome.verdicts["pipeline"] = entry.get("verdict", "unknown")
                outcome.reasons["pipeline"] = f"{entry.get('stage', '')} {entry.get('reason', '')}"
                if entry.get("witness") is not None:
                    witnesses["pipeline"] = entry["witness"]["x"]
                if (
                    entry.get("attack", {}).get("violated")
                    and outcome.verdicts["pipeline"] == "holds"
                ):
                    outcome.disagreements.append("pipeline: holds with a confirmed PGD violation")
            else:
                outcome.disagreements.append(f"pipeline failed: {error}")
            compare(outcome, network, negs[i], witnesses)
            if outcome.disagreements:
                save_case(
                    f"s{seed}-n{index}-{name}-p{i}", net_path, x32[i], labels[i], name, params,
                    pipeline_backend, outcome,
                )  # fmt: skip
            outcomes.append((name, i, outcome))
    sizes = [network.n, *(W.shape[0] for W, _ in layers)]
    specs = hostile(net_path, replayer, x[:n_hostile], timeout_s, folder, seed + index)
    return NetworkReport(sizes, outcomes, time.monotonic() - start, errors, specs)


def save_case(
    case_id: str,
    net_path: Path,
    x: npt.NDArray[np.float32],
    label: np.int64,
    name: str,
    params: dict[str, float | str],
    pipeline_backend: str,
    outcome: Outcome,
    root: Path = REGRESSIONS,
) -> Path:
    """Save one query as ``root/case_id/`` (net.onnx, point.npz, case.json); its folder."""
    folder = root / case_id
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(net_path, folder / "net.onnx")
    np.savez(folder / "point.npz", x=x[None, :], y=np.array([label], dtype=np.int64))
    # The ONNX metadata names the audit's temporary data file; the case has its own.
    model = onnx.load(str(folder / "net.onnx"))
    for prop in model.metadata_props:
        if prop.key == "dataset":
            prop.value = "point.npz"
    (folder / "net.onnx").write_bytes(model.SerializeToString())
    case = {
        "property": name,
        "params": params,
        "tau": TAU,
        "pipeline_backend": pipeline_backend,
        "verdicts": outcome.verdicts,
        "reasons": outcome.reasons,
        "empirical": outcome.empirical,
        "disagreements": outcome.disagreements,
    }
    (folder / "case.json").write_text(json.dumps(case, indent=1) + "\n")
    return folder


def check_case(folder: Path, timeout_s: float = 30.0) -> list[str]:
    """Decide a saved case again, every way; the disagreements that remain (none: fixed)."""
    case = json.loads((folder / "case.json").read_text())
    net_path = folder / "net.onnx"
    with np.load(folder / "point.npz") as data:
        x32, labels = data["x"], data["y"].astype(np.int64)
    network = load_network(net_path)
    replayer = Replayer(net_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        prop = make_property(case["property"], **case["params"])
    x = x32.astype(np.float64)
    negs = negations(prop, replayer, x, labels)
    outcome = Outcome(empirical=empirical(prop, network, replayer, x, labels, negs, 0)[0])
    witnesses: dict[str, Any] = {}
    for b in EXACT:
        v = exact(net_path, b, negs, timeout_s)[0]
        outcome.verdicts[b], witnesses[b] = v.status.value, v.witness
    with tempfile.TemporaryDirectory() as tmp:
        points, error = run_pipeline(
            net_path, folder / "point.npz", case["property"], case["params"], 1,
            case["pipeline_backend"], timeout_s, Path(tmp) / "run.json",
        )  # fmt: skip
    if points is None:
        outcome.disagreements.append(f"pipeline failed: {error}")
    else:
        outcome.verdicts["pipeline"] = points[0].get("verdict", "unknown")
        if points[0].get("witness") is not None:
            witnesses["pipeline"] = points[0]["witness"]["x"]
    compare(outcome, network, negs[0], witnesses)
    return outcome.disagreements


# ---------------------------------------------------------------------------- main


def print_hostile(specs: list[Any]) -> None:
    """The hostile specs' answers: per family, and per decider (sat/unsat/unknown)."""
    import audit_specs

    c = audit_specs.tally(specs)
    print(f"hostile specs: {c['specs']}, agree: {c['agree']}, disagree: {c['disagree']}")
    families = sorted({s.family for s in specs})
    for decider in (f"{b}/{s}" for b, s in audit_specs.DECIDERS):
        cells = ", ".join(
            f"{f} {c[f'{f} {decider} sat']}/{c[f'{f} {decider} unsat']}/"
            f"{c[f'{f} {decider} unknown']}"
            for f in families
        )
        print(f"  {decider:14s} {cells} (sat/unsat/unknown)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--networks", type=int, default=90)
    parser.add_argument("--start", type=int, default=0, help="Index of the first network.")
    parser.add_argument("--points", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=20.0, help="Seconds per exact query.")
    parser.add_argument("--hostile", type=int, default=1, help="Points with hostile specs.")
    parser.add_argument(
        "--inputs",
        default="2,5",
        help="Input widths LO,HI (LO <= n < HI); above 10 inputs branch and bound splits "
        "ReLUs instead of inputs (e.g. 12,20).",
    )
    args = parser.parse_args(argv)
    low, high = (int(v) for v in args.inputs.split(","))
    inputs = (low, high)
    logging.basicConfig(level=logging.ERROR)
    torch.set_num_threads(1)
    counts: Counter[str] = Counter()
    per_prop: dict[str, Counter[str]] = {p: Counter() for p in PROPERTIES}
    disagreements: list[str] = []
    specs: list[Any] = []
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="robustprop-audit-") as tmp:
        for index in range(args.start, args.start + args.networks):
            report = audit_network(
                index, args.seed, args.points, args.timeout, Path(tmp), args.hostile, inputs
            )
            specs += report.specs
            for spec in report.specs:
                disagreements += [f"seed {args.seed} net {index}: {t}" for t in spec.disagreements]
            line = Counter[str]()
            for name, i, outcome in report.outcomes:
                counts["queries"] += 1
                per_prop[name]["queries"] += 1
                v = outcome.verdicts
                agreed = not outcome.disagreements
                counts["agree" if agreed else "disagree"] += 1
                for decider, verdict in v.items():
                    counts[f"{decider} {verdict}"] += 1
                    per_prop[name][f"{decider} {verdict}"] += 1
                if outcome.empirical:
                    counts["empirical violation"] += 1
                    per_prop[name]["empirical violation"] += 1
                exact_decided = [v[b] for b in EXACT if v.get(b) in ("holds", "violated")]
                if len(exact_decided) == 2:
                    counts["marabou and z3 both decided"] += 1
                    counts["marabou and z3 agree"] += exact_decided[0] == exact_decided[1]
                if all(v.get(d) == "unknown" for d in (*EXACT, "pipeline")):
                    counts["unknown everywhere"] += 1
                line[v.get("pipeline", "error")] += 1
                stage = outcome.reasons.get("pipeline", "").split(" ", 1)[0] or "none"
                counts[f"stage {stage}"] += 1
                for text in outcome.disagreements:
                    disagreements.append(f"seed {args.seed} net {index} {name} point {i}: {text}")
            for error in report.pipeline_errors:
                disagreements.append(f"seed {args.seed} net {index}: {error}")
            shape = "-".join(str(s) for s in report.sizes)
            print(
                f"net {index:3d} [{shape}] {report.seconds:6.1f} s  pipeline "
                + ", ".join(f"{k} {line[k]}" for k in sorted(line)),
                flush=True,
            )
    print()
    print(
        f"audit: seed {args.seed}, {args.networks} networks x {args.points} points x 4 properties"
    )
    print(f"queries: {counts['queries']} in {time.monotonic() - began:.0f} s")
    print(f"agree: {counts['agree']}, disagree: {counts['disagree']}")
    stages = sorted((k[6:], n) for k, n in counts.items() if k.startswith("stage "))
    print("pipeline decided by stage: " + ", ".join(f"{k} {n}" for k, n in stages))
    both = counts["marabou and z3 both decided"]
    print(f"marabou and z3 both decided {both}, agree on {counts['marabou and z3 agree']}")
    for decider in (*EXACT, "pipeline"):
        print(
            f"{decider:8s} holds {counts[f'{decider} holds']:5d}  violated "
            f"{counts[f'{decider} violated']:5d}  unknown {counts[f'{decider} unknown']:5d}"
        )
    print(
        f"bab-refused (every candidate refused) holds {counts['bab-refused holds']}, unknown "
        f"{counts['bab-refused unknown']}: never holds where a violation is known"
    )
    print(f"empirical (sampling/PGD) confirmed violations: {counts['empirical violation']}")
    print(f"unknown for all three deciders: {counts['unknown everywhere']}")
    for name in PROPERTIES:
        c = per_prop[name]
        print(
            f"  {name:3s} queries {c['queries']:4d}: "
            + ", ".join(
                f"{d} {c[f'{d} holds']}/{c[f'{d} violated']}/{c[f'{d} unknown']}"
                for d in (*EXACT, "pipeline")
            )
            + f" (holds/violated/unknown); empirical violations {c['empirical violation']}"
        )
    if specs:
        print_hostile(specs)
    print(f"disagreements: {len(disagreements)}")
    for text in disagreements:
        print(f"  {text}")
    if disagreements:
        print(f"saved under {REGRESSIONS}")
    return 1 if disagreements else 0


if __name__ == "__main__":
    sys.exit(main())
