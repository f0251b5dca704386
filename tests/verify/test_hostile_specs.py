"""Hostile specs and queries (issue "Trust under attack", items 1 and 4): numbers a solver gets
wrong, non-finite numbers, caps on what a VNN-LIB file may make the reader build, degenerate
boxes, repeated atoms, tiny constants, and queries built from properties with huge parameters.

Each test says what happened before the fix. The rule they check: never a wrong "unsat" — an
answer is ``sat`` with a replayed witness, ``unsat`` backed by sound bounds or a solver inside
its calibrated range, or ``unknown`` with the reason.
"""

from __future__ import annotations

import logging
import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

import robustprop
from robustprop import LR, SR
from robustprop.properties.base import Property
from robustprop.properties.errors import InputError
from robustprop.properties.spec import Atom, Disjunct, Negation
from robustprop.verify.engine.backends.base import BackendName
from robustprop.verify.engine.backends.marabou import MarabouBackend
from robustprop.verify.engine.decide import decide
from robustprop.verify.engine.network import network_from_bytes
from robustprop.verify.engine.replay import Replayer
from robustprop.verify.engine.screen import RANGES, screen
from robustprop.verify.engine.verdict import Stage, Status
from robustprop.verify.formats import vnnlib
from robustprop.verify.formats.vnnlib import parse_vnnlib, read_vnnlib
from robustprop.verify.formats.vnnlib_write import vnnlib_text
from robustprop.verify.run.vnnlib_check import check_vnnlib
from tests.verify.hostile_onnx import paper_like
from tests.verify.tiny_onnx import mlp_bytes

rng = np.random.default_rng(11)


def _mlp(n: int, hidden: int, m: int = 3) -> bytes:
    w1 = rng.normal(size=(hidden, n)) / np.sqrt(n)
    return mlp_bytes([(w1, rng.normal(size=hidden)), (rng.normal(size=(m, hidden)), np.zeros(m))])


NET4 = _mlp(4, 8)
NET784 = paper_like()  # ``auto`` is the Marabou/MILP portfolio here


def spec(n: int, *asserts: str, m: int = 3, lo: float = 0.0, hi: float = 1.0) -> str:
    lines = [f"(declare-const X_{i} Real)" for i in range(n)]
    lines += [f"(declare-const Y_{j} Real)" for j in range(m)]
    lines += [f"(assert (>= X_{i} {lo!r}))\n(assert (<= X_{i} {hi!r}))" for i in range(n)]
    return "\n".join([*lines, *asserts]) + "\n"


def run(
    tmp_path: Path,
    net: bytes,
    text: str,
    *,
    backend: str = "auto",
    strategy: str = "staged",
    attack: bool = True,
) -> tuple[str, str]:
    (tmp_path / "net.onnx").write_bytes(net)
    (tmp_path / "p.vnnlib").write_text(text)
    result = check_vnnlib(
        tmp_path / "net.onnx", tmp_path / "p.vnnlib", timeout_s=20, isolate=False,
        backend=backend, strategy=strategy, attack=attack,
    )  # fmt: skip
    return result.status, result.reason


# -- the reported bug: a bound far beyond the outputs ------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "backend"),
    [("plain", "marabou"), ("staged", "marabou"), ("staged", "auto"), ("plain", "milp")],
)
def test_huge_upper_bound_on_784_inputs_is_sat(tmp_path: Path, strategy: str, backend: str) -> None:
    """Before: Marabou (plain, staged, and the portfolio's Marabou) answered ``unsat``."""
    status, reason = run(
        tmp_path, NET784, spec(784, "(assert (<= Y_0 1e17))", m=10), backend=backend,
        strategy=strategy, attack=False,
    )  # fmt: skip
    assert status == "sat", reason
    if strategy == "plain":
        assert "bounds imply" in reason
    else:  # branch and bound may find (and replay) the point before the screen sees the query
        assert "bounds imply" in reason or "confirmed by onnxruntime" in reason, reason


@pytest.mark.parametrize("backend", ["marabou", "milp", "z3"])
@pytest.mark.parametrize("constant", ["1e16", "1e17", "1e20", "1e300", "1.7976931348623157e308"])
def test_huge_constants_give_the_exact_answer(tmp_path: Path, backend: str, constant: str) -> None:
    """Before: Marabou answered ``unsat`` to ``Y_0 <= C`` from 1e16 up on this 4 -> 8 -> 3 net
    (and ``sat`` to nothing it should not)."""
    for text, expected in (
        (f"(assert (<= Y_0 {constant}))", "sat"),
        (f"(assert (>= Y_0 {constant}))", "unsat"),
        (f"(assert (>= Y_0 (- {constant})))", "sat"),
        (f"(assert (<= Y_0 (- {constant})))", "unsat"),
        # the huge atom beside an ordinary one: the answer is the ordinary atom's
        (f"(assert (<= Y_0 {constant}))\n(assert (>= Y_0 1000))", "unsat"),
    ):
        status, reason = run(
            tmp_path, NET4, spec(4, text), backend=backend, strategy="plain", attack=False
        )
        assert status == expected, (text, reason)


def test_huge_atom_beside_a_satisfiable_one_is_sat(tmp_path: Path) -> None:
    net = network_from_bytes(NET4)
    y = net.evaluate(np.full(4, 0.5))[0]
    text = f"(assert (<= Y_0 1e17))\n(assert (>= Y_1 {float(y[1]) - 1.0!r}))"
    for backend in ("marabou", "milp", "z3"):
        status, reason = run(tmp_path, NET4, spec(4, text), backend=backend, strategy="plain")
        assert status == "sat", (backend, reason)


# -- numbers that are not finite float64 values ------------------------------------------------


@pytest.mark.parametrize(
    ("token", "where"),
    [
        ("1e400", "5:17"),
        ("-1e400", "5:17"),
        ("(- 1e999)", "5:20"),
        ("inf", "5:17"),
        ("+Infinity", "5:17"),
        ("nan", "5:17"),
        ("NaN", "5:17"),
    ],
)
def test_non_finite_numbers_are_refused_with_file_line_and_token(token: str, where: str) -> None:
    """Before: ``1e400`` read as infinity (Z3 then failed with OverflowError); ``inf``/``nan``
    were named as badly spelled variables."""
    text = spec(1, f"(assert (<= Y_0 {token}))", m=1)
    shown = token.strip("()- ").split()[-1] if token.startswith("(") else token
    with pytest.raises(InputError, match=rf"p\.vnnlib:{where}: .*\(at '{re.escape(shown)}'\)"):
        parse_vnnlib(text, 1, 1, source="p.vnnlib")


def test_largest_finite_and_subnormal_numbers_are_kept_exactly() -> None:
    text = spec(1, "(assert (<= Y_0 1.7976931348623157e308))", "(assert (>= Y_0 5e-324))", m=1)
    prop = parse_vnnlib(text, 1, 1)
    assert prop.negation is not None
    atoms = prop.negation.disjuncts[0].atoms
    assert {a.rhs for a in atoms} == {-1.7976931348623157e308, 5e-324}


# -- caps on what a file may make the reader build ---------------------------------------------


def test_deep_nesting_is_refused_naming_the_cap() -> None:
    """Before: a RecursionError (an internal error, exit 3) at a few thousand levels."""
    depth = 5000
    text = spec(1, "(assert " + "(and " * depth + "(>= Y_0 0)" + ")" * depth + ")", m=1)
    with pytest.raises(InputError, match=r"nested deeper than 64 \(MAX_DEPTH\)"):
        parse_vnnlib(text, 1, 1)


@pytest.mark.parametrize(
    ("cap", "value", "text", "pattern"),
    [
        ("MAX_TOKENS", 50, spec(20, m=1), r"more than 50 tokens \(MAX_TOKENS\)"),
        (
            "MAX_DNF_LITERALS",
            100,
            spec(1, "(assert (and " + "(or (>= Y_0 1) (>= Y_0 2)) " * 8 + "))", m=1),
            r"comparisons in normal form \(MAX_DNF_LITERALS\)",
        ),
        (
            "MAX_BOX_VALUES",
            100,
            spec(20, "(assert (or " + "(>= Y_0 1) " * 6 + "))", m=1),
            r"input bounds .*MAX_BOX_VALUES",
        ),
        (
            "MAX_DISJUNCTS",
            10,
            spec(1, "(assert (or " + "(>= Y_0 1) " * 11 + "))", m=1),
            r"more than 10 disjuncts .*MAX_DISJUNCTS",
        ),
    ],
)
def test_caps_are_named(
    monkeypatch: pytest.MonkeyPatch, cap: str, value: int, text: str, pattern: str
) -> None:
    """Before: no such caps (the names did not exist; the structures grew without a limit)."""
    monkeypatch.setattr(vnnlib, cap, value)
    n = int(text.count("declare-const X_"))
    with pytest.raises(InputError, match=pattern):
        parse_vnnlib(text, n, 1)


def test_file_size_cap_is_checked_before_reading_it_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vnnlib, "MAX_FILE_BYTES", 1000)
    path = tmp_path / "big.vnnlib"
    path.write_text(spec(40, m=1))
    with pytest.raises(InputError, match=r"big\.vnnlib: .*cap of 1000 bytes \(MAX_FILE_BYTES\)"):
        read_vnnlib(path, 40, 1)


def test_long_tokens_are_shortened_in_messages() -> None:
    with pytest.raises(InputError, match=r"\(at 'ZZZZ+\.\.\.'\)$"):
        parse_vnnlib(spec(1, f"(assert (<= Y_0 {'Z' * 10_000}))", m=1), 1, 1)


# -- repeated atoms and disjuncts, degenerate and empty boxes ---------------------------------


def test_repeated_atoms_and_disjuncts_are_kept_once() -> None:
    """Before: every copy was kept (and handed to the solver)."""
    text = spec(
        1,
        "(assert (<= Y_0 1))",
        "(assert (<= Y_0 1))",
        "(assert (or (and (>= Y_1 2) (>= Y_1 2)) (and (>= Y_1 2)) (and (>= Y_2 3))))",
        m=3,
    )
    prop = parse_vnnlib(text, 1, 3)
    assert prop.negation is not None
    assert [len(d.atoms) for d in prop.negation.disjuncts] == [2, 2]


def test_empty_boxes_are_dropped_and_reported(caplog: pytest.LogCaptureFixture) -> None:
    """Before: dropped with an INFO line only; the negation did not say so."""
    text = spec(
        2,
        "(assert (or (and (>= X_0 0.75) (<= X_0 0.25) (>= Y_0 1)) (and (>= Y_0 2))))",
        m=1,
    )
    with caplog.at_level(logging.WARNING):
        prop = parse_vnnlib(text, 2, 1, source="p.vnnlib")
    assert prop.dropped == 1 and prop.negation is not None
    assert "1 of 2 disjuncts dropped: empty input box" in prop.negation.description
    assert any("empty" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


@pytest.mark.parametrize("backend", ["marabou", "milp", "z3"])
def test_point_boxes_are_decided_exactly(tmp_path: Path, backend: str) -> None:
    """``lower == upper`` for every input: the bounds decide; no solver sees a fixed box."""
    x = 0.375
    y = network_from_bytes(NET4).evaluate(np.full(4, x))[0]
    for atom, expected in (
        (f"(<= Y_0 {float(y[0]) + 0.01!r})", "sat"),
        (f"(>= Y_0 {float(y[0]) + 0.01!r})", "unsat"),
        (f"(>= Y_0 {float(y[0]) - 0.01!r})", "sat"),
    ):
        status, reason = run(
            tmp_path, NET4, spec(4, f"(assert {atom})", lo=x, hi=x), backend=backend,
            strategy="plain",
        )  # fmt: skip
        assert status == expected, (atom, reason)


# -- tiny and subnormal constants --------------------------------------------------------------

# y0 = -relu(x0): its maximum over [0, 1] is exactly 0
NEG_RELU = mlp_bytes([(np.ones((1, 1)), np.zeros(1)), (-np.ones((1, 1)), np.zeros(1))])


@pytest.mark.parametrize("backend", ["marabou", "milp", "z3"])
@pytest.mark.parametrize(
    ("atom", "expected", "thin"),
    [
        ("(>= Y_0 5e-324)", "unsat", True),
        ("(>= Y_0 1e-300)", "unsat", True),
        ("(>= Y_0 -5e-324)", "sat", True),  # only x0 = 0 satisfies it
        ("(<= Y_0 -1e-310)", "sat", False),
        ("(<= Y_0 -2)", "unsat", False),
    ],
)
def test_tiny_and_subnormal_constants(
    tmp_path: Path, backend: str, atom: str, expected: str, thin: bool
) -> None:
    status, reason = run(
        tmp_path, NEG_RELU, spec(1, f"(assert {atom})", m=1), backend=backend, strategy="plain"
    )
    # Never the opposite answer. A tolerance-based solver cannot separate 0 from 5e-324 (its
    # points fail replay: unknown); Z3, exact, decides every case.
    assert status in (expected, "unknown"), reason
    if backend == "z3" or not thin:
        assert status == expected, reason


# -- Marabou's own tolerance -------------------------------------------------------------------


def _calibration_net() -> tuple[bytes, float]:
    """benchmarks/numeric_range.py's 2-6-6-2 network and the exact max of y_0 on [-1, 1]^2."""
    r = np.random.default_rng(7)
    w1, w2, w3 = (r.normal(size=s).astype(np.float32) for s in ((6, 2), (6, 6), (2, 6)))
    data = mlp_bytes([(w1, np.zeros(6)), (w2, np.zeros(6)), (w3, np.zeros(2))])
    return data, 1.7589654703403432  # exact maximum (Z3 Optimize), rounded


def test_marabou_never_certifies_a_violation_by_a_few_tolerances() -> None:
    """Before: Marabou answered ``unsat`` to ``y_0 >= max - 3e-6`` (a violation by 3e-6, three
    times the default tau) and the verdict was ``holds``."""
    data, top = _calibration_net()
    net = network_from_bytes(data, check_box=(-1.0, 1.0))
    box = (np.full(2, -1.0), np.ones(2))
    query = Negation((Disjunct(*box, (Atom(((0, 1.0),), top - 3e-6),)),))
    raw = MarabouBackend(relaxation=0.0).solve(net, query, 10)
    assert raw.status is Status.HOLDS  # the solver alone is wrong here: why the relaxation
    decision = decide(
        net, query, Replayer(data), backend=BackendName.MARABOU, timeout_s=20, isolate=False
    )
    assert decision.status is not Status.HOLDS, decision.reason


# -- queries with numbers beyond a backend's range ---------------------------------------------


def _big_weight_net(scale: float) -> bytes:
    return mlp_bytes([(np.array([[scale, -scale]]), np.zeros(1)), (np.ones((1, 1)), np.zeros(1))])


def test_weights_beyond_the_calibrated_range_are_unknown_not_unsat() -> None:
    """Before: Marabou answered ``unsat`` on weights of 1e8 and more (the calibration's
    ``weights`` family); now the query is ``unknown`` with the reason, and Z3 (exact) decides."""
    data = _big_weight_net(1e9)
    net = network_from_bytes(data)
    query = Negation((Disjunct(np.zeros(2), np.ones(2), (Atom(((0, 1.0),), 0.5e9),)),))
    replayer = Replayer(data)
    for backend in (BackendName.MARABOU, BackendName.MILP, BackendName.PORTFOLIO):
        decision = decide(net, query, replayer, backend=backend, timeout_s=10, isolate=False)
        assert decision.status is Status.UNKNOWN, (backend, decision.reason)
        assert "beyond the" in decision.reason and "numeric_range" in decision.reason
    exact = decide(net, query, replayer, backend=BackendName.Z3, timeout_s=10, isolate=False)
    assert exact.status is Status.VIOLATED


def test_portfolio_falls_back_to_the_racer_whose_range_holds() -> None:
    limits = RANGES[BackendName.MILP]
    data = _big_weight_net(limits.max_weight * 10)  # beyond the MILP, within Marabou
    net = network_from_bytes(data)
    query = Negation((Disjunct(np.zeros(2), np.ones(2), (Atom(((0, 1.0),), 1.0),)),))
    screened = screen(net, query, BackendName.PORTFOLIO)
    assert screened.backend is BackendName.MARABOU and not screened.out_of_range


def test_non_finite_bounds_never_reach_z3() -> None:
    """Before: Z3 failed with ``OverflowError: cannot convert Infinity to integer ratio`` (an
    internal error) when the interval bounds overflowed."""
    data = _big_weight_net(1e30)
    net = network_from_bytes(data, check_points=0)
    big = np.full(2, 1e300)
    query = Negation((Disjunct(-big, big, (Atom(((0, 1.0),), 1.0), Atom(((0, -1.0),), -2.0))),))
    decision = decide(
        net, query, Replayer(data), backend=BackendName.Z3, timeout_s=10, isolate=False
    )
    assert decision.status is not Status.HOLDS
    if decision.status is Status.UNKNOWN:
        assert "non-finite" in decision.reason


def test_screen_counts_refuted_implied_and_candidates() -> None:
    net = network_from_bytes(NET4)
    lo, hi = np.zeros(4), np.ones(4)
    query = Negation(
        (
            Disjunct(lo, hi, (Atom(((0, 1.0),), 1e17),)),  # refuted
            Disjunct(lo, hi, (Atom(((0, -1.0),), -1e17), Atom(((1, 1.0),), -1e17))),  # implied
            Disjunct(lo, hi, (Atom(((0, 1.0), (1, -1.0)), 0.0),)),  # left to a solver
        )
    )
    s = screen(net, query, BackendName.MARABOU)
    assert (s.refuted, s.implied, len(s.candidates)) == (1, 2, 1)
    assert s.negation is not None and [len(d.atoms) for d in s.negation.disjuncts] == [0, 1]


def test_normalised_atoms_are_exact_and_never_stronger() -> None:
    net = network_from_bytes(NET4)
    lo, hi = np.zeros(4), np.ones(4)
    y_lo, y_hi = net.interval_bounds(lo, hi)[-1]
    rhs = float(y_lo[0] + y_hi[0]) / 2 * 1e12
    atom = Atom(((0, 1e12), (1, 1e-30)), rhs)  # a huge coefficient and a negligible one
    s = screen(net, Negation((Disjunct(lo, hi, (atom,)),)), BackendName.MARABOU)
    assert s.negation is not None
    (new,) = s.negation.disjuncts[0].atoms
    (j, c), *rest = new.terms
    assert j == 0 and 1.0 <= c < 2.0 and not rest
    scale = Fraction(c) / Fraction(1e12)
    assert Fraction(new.rhs) <= Fraction(rhs) * scale  # relaxed by the negligible term only


# -- queries built from properties -------------------------------------------------------------


@pytest.mark.parametrize(
    "prop",
    [SR(eps=0.1, delta=1e300), LR(eps=0.1, lipschitz=1e300), LR(eps=0.1, lipschitz=1e20)],
    ids=str,
)
def test_properties_with_huge_parameters_hold_under_plain_marabou(prop: Property) -> None:
    """Before: the plain strategy sent ``y_j >= r_j + 1e300`` (SR) or a coefficient of 1e300
    (LR's ``L``) to Marabou; now the bounds decide SR and Marabou sees normalised atoms."""
    model = robustprop.load(NET4)
    result = robustprop.check(
        model, prop, np.full((1, 4), 0.5), metrics=("satisfaction",), timeout=20,
        backend="marabou", strategy="plain",
    )  # fmt: skip
    verdict = result.points[0].verdict
    assert verdict is not None and verdict.status is Status.HOLDS, verdict
    if isinstance(prop, SR):
        assert verdict.stage is Stage.BOUNDS and "bounds refute" in verdict.reason


def test_writer_refuses_what_the_reader_would_refuse() -> None:
    """Before: ``inf`` was written into the file (which no reader accepts)."""
    lo, hi = np.zeros(2), np.ones(2)
    with pytest.raises(InputError, match=r"cannot write inf in an atom on Y_0"):
        vnnlib_text(Negation((Disjunct(lo, hi, (Atom(((0, 1.0),), np.inf),)),)))
    with pytest.raises(InputError, match=r"cannot write nan in the bounds of X_1"):
        vnnlib_text(Negation((Disjunct(lo, np.array([1.0, np.nan]), ()),)))
    text = vnnlib_text(Negation((Disjunct(lo, hi, (Atom(((0, 1.0),), 5e-324),)),)))
    assert parse_vnnlib(text, 2, 1).negation is not None  # subnormal: written and read back
