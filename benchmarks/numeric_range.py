"""Calibrate each exact backend's numerical range: the magnitudes of the numbers in a query
(atom constants and coefficients, input box, weights, neuron bounds) it decides correctly.

Every backend (Marabou, the HiGHS MILP, Z3) is asked queries whose answer is known exactly, at
magnitudes ``M = 10^k`` from 10 to 1e300 and from 1e-1 down to the subnormal 5e-324, each query
in its own worker process (:func:`robustprop.verify.engine.isolation.run_isolated`, so a crash
or a hang costs one query). The networks are small ReLU networks without biases, so they are
positively homogeneous: ``f(M x) = M f(x)``, and scaling the box, the first layer's weights or
an atom by ``M`` keeps the answer that Z3 gives (exactly, in rationals) at ``M = 1``.

Families (each a *sat* and an *unsat* query; ``t_sat``/``t_unsat`` lie 1e-3 (relative) below
and above the exact maximum of ``y_0`` over ``[-1, 1]^2``; where rounding (``M·t``, the scaled
weights, subnormal numbers) moves a query across, its answer is the one Z3 Optimize computes
exactly for the query as posed):

- ``rhs_pos``: ``y_0 ≤ M`` (sat) and ``y_0 ≥ M`` (unsat): a bound far above the outputs;
- ``rhs_neg``: ``y_0 ≥ −M`` (sat) and ``y_0 ≤ −M`` (unsat);
- ``beside``: ``y_0 ≤ M`` next to ``y_0 ≥ t_sat`` (sat) or ``y_0 ≥ t_unsat`` (unsat);
- ``coeff``: ``M·y_0 ≥ M·t`` (an atom scaled by ``M``);
- ``box``: the box ``[−M, M]^2`` and ``y_0 ≥ M·t``;
- ``weights``: the first layer's weights times ``M`` and ``y_0 ≥ M·t``;
- ``rhs_zero`` (tiny magnitudes only): ``y ≥ M`` (unsat) and ``y ≥ −M`` (sat) for
  ``y = −relu(x)``, whose maximum is exactly 0;
- ``slack`` (tiny magnitudes only): ``y_0 ≥ max − M`` (sat) and ``y_0 ≥ max + M`` (unsat)
  at unit scale: the smallest margin (absolute) a backend resolves. The float64 constant may
  round onto the maximum; the truth is then decided by comparing it exactly.

Each backend is measured twice: ``raw`` (the query handed to the solver as it is; for Marabou
without the backend's :data:`~robustprop.verify.engine.backends.marabou.RELAXATION`) and
``screened``: what ``verify`` does, :func:`robustprop.verify.engine.decide.decide` on a float64
ONNX copy of the network (the screening of :mod:`robustprop.verify.engine.screen`, Marabou's
relaxation, retries, every point replayed with onnxruntime). The screened rows must show no
``WRONG``.

A cell reads ``ok`` (right answer), ``WRONG`` (unsat where a point exists: the answer a
verifier must never give), ``spur`` (a sat point that is not one: replay rejects it), ``unk``
(unknown, timeout) or ``err`` (an error or crash). The summary gives, per backend, the largest
magnitude up to which every query was ``ok`` or ``unk`` and never ``WRONG``/``err``, which
:data:`robustprop.verify.engine.screen.RANGES` uses with a safety factor.

    nice .venv/bin/python benchmarks/numeric_range.py [--backends marabou,milp,z3]
        [--modes raw,screened] [--timeout 10] [-o benchmarks/results/numeric_range.txt]

Exit code 1 if a screened query was answered wrong.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from robustprop.lazy import load
from robustprop.properties.spec import Atom, Disjunct, FloatArray, Negation
from robustprop.verify.engine.backends.base import BackendName, SolverOutcome
from robustprop.verify.engine.backends.marabou import MarabouBackend
from robustprop.verify.engine.decide import decide, solve_query
from robustprop.verify.engine.isolation import Failure, run_isolated
from robustprop.verify.engine.network import Affine, Network, Relu
from robustprop.verify.engine.replay import Replayer
from robustprop.verify.engine.verdict import Status

BIG = [10.0**k for k in (*range(1, 21), 25, 30, 40, 60, 100, 150, 200, 250, 300)]
TINY = [10.0**-k for k in (*range(1, 21), 25, 30, 40, 60, 100, 150, 200, 250, 300)] + [
    1e-310,
    5e-324,
]
FAMILIES = ("rhs_pos", "rhs_neg", "beside", "coeff", "box", "weights", "rhs_zero", "slack")
GAP = 1e-3


def _net(layers: list[Affine | Relu], n: int, m: int, name: str) -> Network:
    return Network(tuple(layers), n, m, (1, n), (1, m), sha256="", source=name)


def base_layers(scale: float = 1.0) -> list[Affine | Relu]:
    """A 2-6-6-2 ReLU network without biases (seeded), first layer times ``scale``."""
    rng = np.random.default_rng(7)
    w1 = rng.normal(size=(6, 2)).astype(np.float32).astype(np.float64)
    w2 = rng.normal(size=(6, 6)).astype(np.float32).astype(np.float64)
    w3 = rng.normal(size=(2, 6)).astype(np.float32).astype(np.float64)
    return [
        Affine(w1 * scale, np.zeros(6)),
        Relu(),
        Affine(w2, np.zeros(6)),
        Relu(),
        Affine(w3, np.zeros(2)),
    ]


def exact_max(network: Network, bound: float = 1.0) -> Fraction:
    """The exact maximum of ``y_0`` over ``[-bound, bound]^n`` (Z3 Optimize in rationals)."""
    z3 = load("z3")
    opt = z3.Optimize()
    h = [z3.Real(f"x{i}") for i in range(network.n)]
    b = z3.RealVal(Fraction(bound))
    for v in h:
        opt.add(v >= -b, v <= b)
    for layer in network.layers:
        if isinstance(layer, Affine):
            h = [
                z3.Sum([z3.RealVal(Fraction(float(w))) * v for w, v in zip(row, h, strict=True)])
                for row in layer.W
            ]
        else:
            h = [z3.If(v >= 0, v, 0) for v in h]
    goal = opt.maximize(h[0])
    assert opt.check() == z3.sat
    value = goal.value()
    if z3.is_int_value(value):
        return Fraction(value.as_long())
    return Fraction(value.numerator_as_long(), value.denominator_as_long())


@dataclass(frozen=True)
class Case:
    family: str
    magnitude: float
    sat: bool
    network: Network
    negation: Negation


def _neg(n: int, bound: float, atoms: tuple[Atom, ...]) -> Negation:
    box = np.full(n, bound)
    return Negation((Disjunct(-box, box, atoms),), description="calibration")


def cases(magnitude: float, t_sat: float, t_unsat: float, top: Fraction) -> list[Case]:
    """The queries of every family at one magnitude (see the module doc)."""
    net = _net(base_layers(), 2, 2, "base")
    big = magnitude >= 1.0
    out: list[Case] = []

    def add(family: str, sat: bool, network: Network, negation: Negation) -> None:
        out.append(Case(family, magnitude, sat, network, negation))

    def y0(rhs: float, sign: float = 1.0, coeff: float = 1.0) -> Atom:
        return Atom(((0, sign * coeff),), sign * rhs)

    if big:
        add("rhs_pos", True, net, _neg(2, 1.0, (y0(magnitude, -1.0),)))
        add("rhs_pos", False, net, _neg(2, 1.0, (y0(magnitude),)))
        add("rhs_neg", True, net, _neg(2, 1.0, (y0(-magnitude),)))
        add("rhs_neg", False, net, _neg(2, 1.0, (y0(-magnitude, -1.0),)))
        add("beside", True, net, _neg(2, 1.0, (y0(magnitude, -1.0), y0(t_sat))))
        add("beside", False, net, _neg(2, 1.0, (y0(magnitude, -1.0), y0(t_unsat))))
    else:
        zero = _net([Affine(np.ones((1, 1)), np.zeros(1)), Relu(), Affine(-np.ones((1, 1)),
                                                                            np.zeros(1))], 1, 1,
                    "zero")  # fmt: skip
        add("rhs_zero", True, zero, _neg(1, 1.0, (y0(-magnitude),)))
        add("rhs_zero", False, zero, _neg(1, 1.0, (y0(magnitude),)))
        for rhs in (float(top - Fraction(magnitude)), float(top + Fraction(magnitude))):
            add("slack", Fraction(rhs) <= top, net, _neg(2, 1.0, (y0(rhs),)))
    # The answer is decided exactly (rounding of M·t, of the scaled weights, subnormals).
    scaled = _net(base_layers(magnitude), 2, 2, "scaled")
    top_box, top_scaled = exact_max(net, magnitude), exact_max(scaled)
    for t in (t_sat, t_unsat):
        rhs = magnitude * t
        coeff_sat = Fraction(rhs) <= Fraction(magnitude) * top
        add("coeff", coeff_sat, net, _neg(2, 1.0, (y0(rhs, coeff=magnitude),)))
        add("box", Fraction(rhs) <= top_box, net, _neg(2, magnitude, (y0(rhs),)))
        add("weights", Fraction(rhs) <= top_scaled, scaled, _neg(2, 1.0, (y0(rhs),)))
    return out


def _holds_at(case: Case, x: FloatArray) -> bool:
    """Whether ``x`` is a point of the case's negation (float64, exact comparison)."""
    d = case.negation.disjuncts[0]
    x = np.clip(x, d.lower, d.upper)
    y = case.network.evaluate(x)[0]
    return all(a.value(y) >= -1e-9 * abs(a.rhs) for a in d.atoms)


def grade(case: Case, result: SolverOutcome | Failure) -> str:
    """One cell of the table (see the module doc)."""
    if isinstance(result, Failure):
        return "unk" if result.kind == "timeout" else "err"
    if result.status is Status.UNKNOWN:
        return "err" if "error" in result.reason else "unk"
    if result.status is Status.HOLDS:
        return "WRONG" if case.sat else "ok"
    assert result.x is not None
    if not case.sat or not np.all(np.isfinite(result.x)) or not _holds_at(case, result.x):
        return "spur"
    return "ok"


def answer(
    case: Case, backend: BackendName, timeout: float, screened: bool
) -> SolverOutcome | Failure:
    """The backend's answer: raw, or as ``verify`` decides (``decide``: screening, Marabou's
    relaxation, retries, and onnxruntime replay of every point on a float64 ONNX copy)."""
    if not screened:
        args = (backend, case.network, case.negation, timeout, True)
        # fork: the worker function lives in this script, which a fork server cannot import
        return run_isolated(solve_raw, args, timeout, start_method="fork")
    data = onnx_bytes(case.network)
    decision = decide(
        case.network, case.negation, Replayer(data), backend=backend, timeout_s=timeout
    )
    x = None if decision.replay is None else decision.replay.x
    return SolverOutcome(decision.status, x, decision.reason, decision.time_s)


def onnx_bytes(network: Network) -> bytes:
    """The network as a float64 ONNX model (MatMul, Add, Relu), for onnxruntime replay."""
    onnx = load("onnx")
    helper, numpy_helper = onnx.helper, onnx.numpy_helper
    nodes, inits, h = [], [], "x"
    for k, layer in enumerate(network.layers):
        if isinstance(layer, Affine):
            inits += [
                numpy_helper.from_array(np.ascontiguousarray(layer.W.T), f"W{k}"),
                numpy_helper.from_array(layer.b, f"b{k}"),
            ]
            nodes += [
                helper.make_node("MatMul", [h, f"W{k}"], [f"m{k}"]),
                helper.make_node("Add", [f"m{k}", f"b{k}"], [f"a{k}"]),
            ]
            h = f"a{k}"
        else:
            nodes.append(helper.make_node("Relu", [h], [f"r{k}"]))
            h = f"r{k}"
    nodes.append(helper.make_node("Identity", [h], ["y"]))
    double = onnx.TensorProto.DOUBLE
    graph = helper.make_graph(
        nodes,
        "calibration",
        [helper.make_tensor_value_info("x", double, [1, network.n])],
        [helper.make_tensor_value_info("y", double, [1, network.m])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    return bytes(model.SerializeToString())


def solve_raw(
    backend: BackendName, network: Network, negation: Negation, timeout: float, raw: bool
) -> SolverOutcome:
    """One backend call; ``raw``: Marabou without its relaxation (in a worker process)."""
    if raw and backend is BackendName.MARABOU:
        return MarabouBackend(relaxation=0.0).solve(network, negation, timeout)
    return solve_query(backend, network, negation, timeout)


def run(
    backends: list[BackendName], modes: list[str], timeout: float, emit: Callable[[str], None]
) -> int:
    """Print the tables; returns the number of wrong answers after screening."""
    net = _net(base_layers(), 2, 2, "base")
    top = exact_max(net)
    t_sat = float(top - abs(top) * Fraction(GAP))
    t_unsat = float(top + abs(top) * Fraction(GAP))
    emit(f"max y_0 over [-1,1]^2 = {float(top):.9g} (exact, Z3)")
    emit(f"t_sat {t_sat!r}, t_unsat {t_unsat!r}")
    wrong_screened = 0
    for backend, mode in [(b, m) for b in backends for m in modes]:
        emit("")
        emit(f"== {backend.value}, {mode} (timeout {timeout:g} s per query)")
        emit(f"{'magnitude':>10} " + " ".join(f"{f:>13}" for f in FAMILIES))
        grades: dict[float, list[str]] = {}
        firsts: dict[str, float] = {}
        t0 = time.monotonic()
        for magnitude in [*BIG, *TINY]:
            row: dict[str, list[str]] = {f: [] for f in FAMILIES}
            for case in cases(magnitude, t_sat, t_unsat, top):
                cell = grade(case, answer(case, backend, timeout, mode == "screened"))
                wrong_screened += mode == "screened" and cell in ("WRONG", "err")
                row[case.family].append(cell)
                if cell in ("WRONG", "err") and case.family not in firsts:
                    firsts[case.family] = magnitude
            grades[magnitude] = [g for cells in row.values() for g in cells]
            cells = ["/".join(row[f]) if row[f] else "-" for f in FAMILIES]
            emit(f"{magnitude:>10.0e} " + " ".join(f"{c:>13}" for c in cells))
        emit(f"({time.monotonic() - t0:.0f} s; cells: sat-query/unsat-query)")
        emit(summary(backend, grades))
        emit(
            "first WRONG/err per family (big magnitudes, then tiny): "
            + (", ".join(f"{f} {v:.0e}" for f, v in firsts.items()) or "none")
        )
    return wrong_screened


def summary(backend: BackendName, grades: dict[float, list[str]]) -> str:
    """The largest big and the smallest tiny magnitude up to which nothing was wrong."""

    def reach(values: list[float]) -> tuple[float | None, float | None]:
        good = None
        for v in values:
            if any(g in ("WRONG", "err") for g in grades[v]):
                return good, v
            good = v
        return good, None

    def show(v: float | None) -> str:
        return "none" if v is None else f"{v:.0e}"

    big_ok, big_bad = reach(BIG)
    tiny_ok, tiny_bad = reach(TINY)
    wrong = sum(g == "WRONG" for gs in grades.values() for g in gs)
    return (
        f"{backend.value}: correct for magnitudes up to {show(big_ok)} (first failure "
        f"{show(big_bad)}) and down to {show(tiny_ok)} (first failure {show(tiny_bad)}); "
        f"{wrong} wrong unsat in all"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="marabou,milp,z3")
    parser.add_argument("--modes", default="raw,screened")
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("-o", "--output", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)  # decide() logs every point that fails replay
    backends = [BackendName(b) for b in args.backends.split(",")]
    lines: list[str] = []

    def emit(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    wrong = run(backends, args.modes.split(","), args.timeout, emit)
    emit("")
    emit(f"screened: {wrong} wrong answer(s)")
    if args.output is not None:
        args.output.write_text("\n".join(lines) + "\n")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
