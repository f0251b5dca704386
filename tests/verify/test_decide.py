"""decide() and check_vnnlib(): replay-confirmed violations, holds, unknown, margin retry, PGD
search."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from robustprop.properties.spec import Atom, Disjunct, Distance, Negation
from robustprop.verify.engine import decide as decide_module
from robustprop.verify.engine.backends.base import BackendName, SolverOutcome
from robustprop.verify.engine.decide import decide
from robustprop.verify.engine.falsify import FalsifyConfig, falsify
from robustprop.verify.engine.network import network_from_bytes
from robustprop.verify.engine.replay import Replayer
from robustprop.verify.engine.verdict import Stage, Status
from robustprop.verify.run.vnnlib_check import check_vnnlib
from tests.verify.tiny_onnx import mlp_bytes

# y0 = |x0 - x1|, y1 = relu(x0 + x1 - 1)
W1 = np.array([[1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]])
B1 = np.array([0.0, 0.0, -1.0])
W2 = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
DATA = mlp_bytes([(W1, B1), (W2, np.zeros(2))])
NET = network_from_bytes(DATA)
UNIT = (np.zeros(2), np.ones(2))


def y_ge(j: int, c: float) -> Atom:
    return Atom(((j, 1.0),), c)


def negation(*conjunctions: tuple[Atom, ...]) -> Negation:
    return Negation(tuple(Disjunct(UNIT[0], UNIT[1], c) for c in conjunctions))


@pytest.mark.parametrize("backend", list(BackendName))
def test_sat_unsat_through_isolated_workers(backend: BackendName) -> None:
    rep = Replayer(DATA)
    sat = decide(NET, negation((y_ge(0, 0.9),)), rep, backend=backend, timeout_s=10)
    assert sat.status is Status.VIOLATED and sat.replay is not None and sat.replay.confirmed
    assert sat.replay.y32[0] >= 0.9
    unsat = decide(
        NET, negation((y_ge(0, 1.1),), (y_ge(1, 1.1),)), rep, backend=backend, timeout_s=10
    )
    assert unsat.status is Status.HOLDS and unsat.replay is None
    # prop_6-like: two boxes, the second one has the counterexample
    two = Negation(
        (
            Disjunct(np.zeros(2), np.full(2, 0.3), (y_ge(0, 0.8),)),
            Disjunct(np.array([0.9, 0.0]), np.array([1.0, 0.1]), (y_ge(0, 0.8),)),
        )
    )
    both = decide(NET, two, rep, backend=backend, timeout_s=10)
    # the sound bounds refute the first box (y0 <= 0.3 there): only the second needs a solver
    assert both.status is Status.VIOLATED and [q.box for q in both.queries] == [1]


def test_isolation_turns_a_marabou_livelock_into_unknown() -> None:
    # With the centre on the ReLU kinks (x0 = x1) Marabou 2.0 spins in its main loop and ignores
    # its own time limit; the worker is killed and the query counts as unknown.
    kink = Negation(
        (Disjunct(UNIT[0], UNIT[1], (Atom(((0, 1.0),), 0.01, dist_coeff=-2.0),)),),
        distance=Distance(np.full(2, 0.5), 0.3),
    )
    out = decide(NET, kink, Replayer(DATA), backend=BackendName.MARABOU, timeout_s=1.0, grace_s=1.0)
    assert out.status is Status.UNKNOWN
    assert "timed out" in out.reason
    assert out.time_s < 8.0
    # Z3 decides it (unsat: y0 <= 2 d there)
    z3 = decide(NET, kink, Replayer(DATA), backend=BackendName.Z3, timeout_s=10.0)
    assert z3.status is Status.HOLDS


def test_spurious_solver_point_is_retried_with_a_margin(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Negation] = []

    def fake(
        backend: BackendName, network: object, neg: Negation, timeout_s: float
    ) -> SolverOutcome:
        calls.append(neg)
        if len(calls) == 1:  # a boundary point: y0 = 0.9 - 1e-9 < 0.9
            return SolverOutcome(Status.VIOLATED, np.array([0.9 - 1e-9, 0.0]), "fake: sat", 0.0)
        return SolverOutcome(Status.VIOLATED, np.array([1.0, 0.0]), "fake: sat", 0.0)

    monkeypatch.setattr(decide_module, "solve_query", fake)
    out = decide(
        NET, negation((y_ge(0, 0.9),)), Replayer(DATA),
        backend=BackendName.MARABOU, timeout_s=10, isolate=False,
    )  # fmt: skip
    assert out.status is Status.VIOLATED
    assert [q.margin for q in out.queries] == [0.0, decide_module.DEFAULT_MARGINS[0]]
    assert out.queries[0].status is Status.UNKNOWN and "failed replay" in out.queries[0].reason
    assert calls[1].disjuncts[0].atoms[0].rhs > 0.9


def test_spurious_points_only_give_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake(
        backend: BackendName, network: object, neg: Negation, timeout_s: float
    ) -> SolverOutcome:
        return SolverOutcome(Status.VIOLATED, np.array([0.5, 0.5]), "fake: sat", 0.0)  # y0 = 0

    monkeypatch.setattr(decide_module, "solve_query", fake)
    for backend, solvers in ((BackendName.Z3, 1), (BackendName.MARABOU, 2)):
        out = decide(
            NET, negation((y_ge(0, 0.9),)), Replayer(DATA),
            backend=backend, timeout_s=10, isolate=False,
        )  # fmt: skip
        assert out.status is Status.UNKNOWN and "failed replay" in out.reason
        # Marabou's boundary points: the MILP referees the box with the same retries
        assert len(out.queries) == solvers * (1 + len(decide_module.DEFAULT_MARGINS))


def test_falsify_finds_points_and_respects_limits() -> None:
    found = falsify(NET, negation((y_ge(0, 0.95), y_ge(1, 0.0))), FalsifyConfig(time_s=1.0))
    assert found
    y = NET.evaluate(np.array(found))
    assert np.all(y[:, 0] >= 0.95)
    assert falsify(NET, negation((y_ge(0, 1.5),)), FalsifyConfig(time_s=0.2)) == []
    lr = Negation(negation((y_ge(0, 0.5),)).disjuncts, distance=Distance(np.zeros(2), 0.1))
    assert falsify(NET, lr) == []


def write_instance(tmp_path: Path, body: str) -> tuple[Path, Path]:
    net = tmp_path / "net.onnx"
    net.write_bytes(DATA)
    spec = tmp_path / "prop.vnnlib"
    decl = "".join(f"(declare-const {v} Real)\n" for v in ("X_0", "X_1", "Y_0", "Y_1"))
    spec.write_text(decl + "(assert (>= X_0 0)) (assert (<= X_0 1))\n" + body)
    return net, spec


def test_check_vnnlib_with_and_without_the_pgd_search(tmp_path: Path) -> None:
    net, spec = write_instance(
        tmp_path, "(assert (>= X_1 0)) (assert (<= X_1 1)) (assert (>= Y_0 0.9))"
    )
    quick = check_vnnlib(net, spec, timeout_s=10)
    assert quick.status == "sat" and "PGD" in quick.reason
    assert quick.verdict.stage is Stage.ATTACK
    assert quick.y is not None and quick.y[0] >= 0.9
    # without the search, branch and bound's sub-domain check finds it (before any solver)
    no_search = check_vnnlib(net, spec, timeout_s=10, attack=False, backend=BackendName.Z3)
    assert no_search.status == "sat" and no_search.verdict.stage is Stage.BAB
    assert no_search.y is not None and no_search.y[0] >= 0.9
    solver = check_vnnlib(
        net, spec, timeout_s=10, attack=False, backend=BackendName.Z3, strategy="plain"
    )
    assert solver.status == "sat" and solver.verdict.stage is Stage.SOLVER
    assert solver.x is not None and solver.y is not None
    assert solver.y[0] >= 0.9 and 0 <= solver.x[1] <= 1


def test_check_vnnlib_empty_box_is_unsat(tmp_path: Path) -> None:
    net, spec = write_instance(
        tmp_path, "(assert (>= X_1 1)) (assert (<= X_1 0)) (assert (>= Y_0 0))"
    )
    out = check_vnnlib(net, spec, timeout_s=10)
    assert out.status == "unsat" and "empty" in out.reason
