"""Marabou and Z3 on hand-built networks with answers known by hand; both must agree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from robustprop.properties.errors import InputError, InternalError
from robustprop.properties.spec import Atom, Disjunct, Distance, Negation, SoftmaxBelow
from robustprop.verify.engine.backends import base
from robustprop.verify.engine.backends.base import BackendName, group_by_box
from robustprop.verify.engine.backends.marabou import RELAXATION
from robustprop.verify.engine.backends.registry import get_backend
from robustprop.verify.engine.decide import solve_query
from robustprop.verify.engine.isolation import Failure, run_isolated
from robustprop.verify.engine.network import Network, load_network
from robustprop.verify.engine.verdict import Status
from robustprop.verify.formats.vnnlib import read_vnnlib
from tests.verify.tiny_onnx import mlp_network

BENCH = Path(__file__).resolve().parents[3] / "shared" / "benchmarks"

# h = relu([x0 - x1, x1 - x0, x0 + x1 - 1]);  y0 = h0 + h1 = |x0 - x1|,  y1 = h2
W1 = np.array([[1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]])
B1 = np.array([0.0, 0.0, -1.0])
W2 = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
B2 = np.zeros(2)
NET = mlp_network([(W1, B1), (W2, B2)])
CLIPPED = mlp_network([(W1, B1), (W2, B2)], clip=(0.2, 0.7))  # y clamped to [0.2, 0.7]

UNIT = (np.zeros(2), np.ones(2))
CENTER = np.array([0.5, 0.3])


def y_ge(j: int, c: float) -> Atom:
    return Atom(((j, 1.0),), c)


def y_le(j: int, c: float) -> Atom:
    return Atom(((j, -1.0),), -c)


def neg(
    *conjunctions: tuple[Atom, ...], box: tuple[np.ndarray, np.ndarray] = UNIT, **kw: object
) -> Negation:
    return Negation(tuple(Disjunct(box[0], box[1], c) for c in conjunctions), **kw)  # type: ignore[arg-type]


CASES: list[tuple[str, Network, Negation, Status]] = [
    ("y0>=0.9", NET, neg((y_ge(0, 0.9),)), Status.VIOLATED),
    ("y0>=1.1", NET, neg((y_ge(0, 1.1),)), Status.HOLDS),
    ("y0,y1>=0.4", NET, neg((y_ge(0, 0.4), y_ge(1, 0.4))), Status.VIOLATED),
    ("y0,y1>=0.6", NET, neg((y_ge(0, 0.6), y_ge(1, 0.6))), Status.HOLDS),
    ("y1-y0>=0.2", NET, neg((Atom(((1, 1.0), (0, -1.0)), 0.2),)), Status.VIOLATED),
    ("y1-y0>=1.1", NET, neg((Atom(((1, 1.0), (0, -1.0)), 1.1),)), Status.HOLDS),
    ("or-sat", NET, neg((y_ge(0, 1.1),), (y_ge(1, 0.9),)), Status.VIOLATED),
    ("or-unsat", NET, neg((y_ge(0, 1.1),), (y_ge(1, 1.1),)), Status.HOLDS),
    (
        "small-box",
        NET,
        neg((y_ge(0, 0.3),), box=(np.array([0.4, 0.4]), np.array([0.5, 0.5]))),
        Status.HOLDS,
    ),
    ("clip>=0.69", CLIPPED, neg((y_ge(0, 0.69),)), Status.VIOLATED),
    ("clip>=0.71", CLIPPED, neg((y_ge(0, 0.71),)), Status.HOLDS),
    ("clip<=0.19", CLIPPED, neg((y_le(1, 0.19),)), Status.HOLDS),
    ("clip<=0.21", CLIPPED, neg((y_le(1, 0.21),)), Status.VIOLATED),
    # LR-style distance: y0 = |x0 - x1| <= 0.2 + 2 d around the centre (0.5, 0.3). (A centre on
    # the ReLU kinks, e.g. (0.5, 0.5), makes Marabou 2.0 spin past its own time limit: see
    # test_isolation_turns_a_marabou_livelock_into_unknown.)
    (
        "dist-sat",
        NET,
        neg((Atom(((0, 1.0),), 0.19, dist_coeff=-2.0),), distance=Distance(CENTER, 0.1)),
        Status.VIOLATED,
    ),
    (
        "dist-unsat",
        NET,
        neg((Atom(((0, 1.0),), 0.21, dist_coeff=-2.0),), distance=Distance(CENTER, 0.1)),
        Status.HOLDS,
    ),
    # two boxes, only the second one has points with y0 >= 0.8
    (
        "two-boxes",
        NET,
        Negation(
            (
                Disjunct(np.zeros(2), np.full(2, 0.3), (y_ge(0, 0.8),)),
                Disjunct(np.array([0.9, 0.0]), np.array([1.0, 0.1]), (y_ge(0, 0.8),)),
            )
        ),
        Status.VIOLATED,
    ),
]


def _check_point(network: Network, negation: Negation, x: np.ndarray, relaxed: float = 0.0) -> None:
    """The raw solver point satisfies the negation up to solver tolerance (and the atoms up to
    ``relaxed``: Marabou answers a query weakened by its RELAXATION)."""
    y = network.evaluate(x)[0]
    tol = 1e-6
    ok = False
    d = 0.0
    if negation.distance is not None:
        d = float(np.max(np.abs(x - negation.distance.center)))
        assert d <= negation.distance.eps + tol
    for disjunct in negation.disjuncts:
        inside = np.all(x >= disjunct.lower - tol) and np.all(x <= disjunct.upper + tol)
        if inside and all(a.value(y, d) >= -tol - relaxed for a in disjunct.atoms):
            ok = True
    assert ok, (x, y)


@pytest.mark.parametrize(
    ("name", "network", "negation", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_marabou_and_z3_agree_with_known_answers(
    name: str, network: Network, negation: Negation, expected: Status
) -> None:
    for backend in BackendName:
        # In a fresh process, as in production: Marabou 2.0 occasionally spins past its own
        # time limit after earlier solves in the same process.
        outcome = run_isolated(solve_query, (backend, network, negation, 10.0), 10.0)
        assert not isinstance(outcome, Failure), (backend, outcome)
        assert outcome.status is expected, (backend, outcome.reason)
        if expected is Status.VIOLATED:
            assert outcome.x is not None
            relaxed = RELAXATION if backend in (BackendName.MARABOU, BackendName.PORTFOLIO) else 0
            _check_point(network, negation, outcome.x, relaxed)
        else:
            assert outcome.x is None


def test_group_by_box_keeps_order_and_shared_boxes() -> None:
    a, b = UNIT, (np.zeros(2), np.full(2, 0.5))
    n = Negation(
        (
            Disjunct(a[0], a[1], (y_ge(0, 1),)),
            Disjunct(b[0], b[1], (y_ge(1, 1),)),
            Disjunct(a[0], a[1], (y_ge(1, 2),)),
        ),
        tau=1e-6,
    )
    groups = group_by_box(n)
    assert [len(g.disjuncts) for g in groups] == [2, 1]
    assert groups[0].disjuncts[1].atoms == (y_ge(1, 2),)
    assert all(g.tau == 1e-6 for g in groups)


def test_softmax_negation_is_refused() -> None:
    n = Negation((Disjunct(UNIT[0], UNIT[1], ()),), softmax=SoftmaxBelow(0, 0.6))
    for backend in BackendName:
        with pytest.raises(InternalError, match="SoftmaxBelow"):
            get_backend(backend).solve(NET, n, 1.0)


def test_size_mismatch_and_unknown_backend() -> None:
    with pytest.raises(InputError, match="refers to output 5"):
        get_backend("z3").solve(NET, neg((y_ge(5, 0.0),)), 1.0)
    with pytest.raises(InputError, match="unknown backend 'cplex'"):
        get_backend("cplex")


def test_missing_solver_package_is_input_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(name: str) -> object:
        raise ImportError(f"No module named {name!r}")

    monkeypatch.setattr(base.importlib, "import_module", fail)
    with pytest.raises(InputError, match="solver package 'maraboupy' is not installed"):
        get_backend("marabou").solve(NET, neg((y_ge(0, 0.5),)), 1.0)
    with pytest.raises(InputError, match="solver package 'z3-solver' is not installed"):
        get_backend("z3").solve(NET, neg((y_ge(0, 0.5),)), 1.0)


@pytest.mark.skipif(not BENCH.is_dir(), reason="../shared/benchmarks is absent")
def test_z3_gives_up_at_its_time_limit() -> None:
    net = load_network(BENCH / "marabou/fc1/onnx/fc1.onnx", check_points=0)
    prop = read_vnnlib(BENCH / "marabou/fc1/vnnlib_derived/fc1_y1_ge_70.vnnlib", net.n, net.m)
    assert prop.negation is not None
    outcome = get_backend("z3").solve(net, prop.negation, timeout_s=0.5)
    assert outcome.status is Status.UNKNOWN and outcome.time_s < 5.0
