"""The VNN-LIB reader: shapes of the competition files, DNF with per-disjunct boxes, errors."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from robustprop.properties.errors import InputError
from robustprop.properties.spec import Atom
from robustprop.verify.formats.vnnlib import parse_vnnlib, read_vnnlib

BENCH = Path(__file__).resolve().parents[3] / "shared" / "benchmarks"
needs_bench = pytest.mark.skipif(not BENCH.is_dir(), reason="../shared/benchmarks is absent")

DECL = "".join(f"(declare-const {v} Real)\n" for v in ("X_0", "X_1", "Y_0", "Y_1"))


def parse(body: str, n: int = 2, m: int = 2) -> object:
    return parse_vnnlib(DECL + body, n, m, source="p.vnnlib")


def test_box_and_output_atoms() -> None:
    prop = parse_vnnlib(
        DECL
        + """; a comment (with parentheses
(assert (>= X_0 -1))  ; trailing comment
(assert (<= X_0 1e0))
(assert (<= -0.5 X_1))
(assert (>= .5 X_1))
(assert (<= Y_0 Y_1))
(assert (>= Y_1 3.99))
(assert (<= 2 Y_0))
""",
        2,
        2,
    )
    assert prop.negation is not None
    (d,) = prop.negation.disjuncts
    np.testing.assert_array_equal(d.lower, [-1.0, -0.5])
    np.testing.assert_array_equal(d.upper, [1.0, 0.5])
    assert d.atoms == (
        Atom(((1, 1.0), (0, -1.0)), 0.0),  # Y_1 - Y_0 >= 0
        Atom(((1, 1.0),), 3.99),
        Atom(((0, 1.0),), 2.0),
    )


def test_input_bounds_inside_a_disjunction_restrict_only_that_disjunct() -> None:
    # test_tiny / test_small: the input bounds sit inside the output disjunction
    text = """(declare-const X_0 Real)
(declare-const Y_0 Real)
(assert (or
    (and (>= X_0 -1) (<= X_0 1) (>= Y_0 100))
))"""
    prop = parse_vnnlib(text, 1, 1)
    assert prop.negation is not None
    (d,) = prop.negation.disjuncts
    assert (d.lower[0], d.upper[0]) == (-1.0, 1.0)
    assert d.atoms == (Atom(((0, 1.0),), 100.0),)


def test_two_input_boxes_times_output_disjunction() -> None:
    prop = parse(
        """(assert (or (and (>= X_0 0) (<= X_0 1)) (and (>= X_0 2) (<= X_0 3))))
(assert (>= X_1 0))
(assert (<= X_1 1))
(assert (or (and (<= Y_0 Y_1)) (and (>= Y_0 5) (<= Y_1 1))))
"""
    )
    assert prop.negation is not None
    ds = prop.negation.disjuncts
    assert len(ds) == 4
    assert [(d.lower[0], d.upper[0]) for d in ds] == [(0, 1), (0, 1), (2, 3), (2, 3)]
    assert all((d.lower[1], d.upper[1]) == (0, 1) for d in ds)
    assert [len(d.atoms) for d in ds] == [1, 2, 1, 2]


def test_empty_boxes_are_dropped_and_all_empty_is_none() -> None:
    prop = parse(
        """(assert (>= X_1 0)) (assert (<= X_1 1))
(assert (or (and (>= X_0 2) (<= X_0 1)) (and (>= X_0 0) (<= X_0 1))))"""
    )
    assert prop.negation is not None and len(prop.negation.disjuncts) == 1 and prop.dropped == 1
    empty = parse("(assert (>= X_0 2)) (assert (<= X_0 1)) (assert (>= X_1 0)) (assert (<= X_1 1))")
    assert empty.negation is None


@pytest.mark.parametrize(
    ("body", "pattern"),
    [
        ("(assert (>= X_0 0)", r"p\.vnnlib:5:1: unclosed '\(' at end of file"),
        ("(assert (>= X_0 0)))", r"p\.vnnlib:5:20: unbalanced '\)'"),
        (
            "(assert (>= X_7 0))",
            r"p\.vnnlib:5:13: index out of range: the network has 2 inputs \(at 'X_7'\)",
        ),
        ("\n  (assert (>= Z_0 0))", r"p\.vnnlib:6:15: variables must be named"),
        ("(assert (>= X_0 X_1))", r"5:10: only output-output comparisons"),
        ("(assert (= X_0 1))", r"5:10: unsupported operator"),
        ("(assert (>= X_0 1 2))", r"5:10: a comparison takes exactly two arguments"),
        ("(check-sat)", r"5:2: unsupported command"),
        ("(declare-const X_0 Int)", r"5:20: only sort 'Real'"),
        ("(declare-const X_0 Real)", r"5:16: variable declared twice"),
        ("(assert (>= X_0 0))", r"X_0 has no upper bound"),
        (
            "(assert (>= X_0 0)) (assert (<= X_0 1))"
            " (assert (or (and (>= X_1 0) (<= X_1 1)) (and (>= X_1 0))))",
            r"X_1 has no upper bound in disjunct 2 of 2",
        ),
    ],
)
def test_errors_name_line_column_and_token(body: str, pattern: str) -> None:
    with pytest.raises(InputError, match=pattern):
        parse(body)


def test_undeclared_and_missing_declarations() -> None:
    text = "(declare-const X_0 Real)\n(assert (>= X_0 0))\n(assert (<= Y_0 1))"
    with pytest.raises(InputError, match=r"3:13: undeclared variable \(at 'Y_0'\)"):
        parse_vnnlib(text, 1, 1)
    with pytest.raises(InputError, match="network input X_1 is not declared"):
        parse_vnnlib("(declare-const X_0 Real)(assert (>= X_0 0))(assert (<= X_0 0))", 2, 1)


def test_linear_time_on_large_files() -> None:
    n = 20_000
    lines = [f"(declare-const X_{i} Real)" for i in range(n)] + ["(declare-const Y_0 Real)"]
    for i in range(n):
        lines += [f"(assert (<= X_{i} 0.5))", f"(assert (>= X_{i} 0.0))"]
    lines.append("(assert (or " + " ".join(f"(and (>= Y_0 {k}))" for k in range(9)) + "))")
    start = time.monotonic()
    prop = parse_vnnlib("\n".join(lines), n, 1)
    assert time.monotonic() - start < 5.0
    assert prop.negation is not None and len(prop.negation.disjuncts) == 9


@needs_bench
@pytest.mark.parametrize(
    ("name", "n", "m", "disjuncts", "atoms"),
    [
        ("vnncomp/acasxu/vnnlib/prop_1.vnnlib", 5, 5, 1, [1]),
        ("vnncomp/acasxu/vnnlib/prop_3.vnnlib", 5, 5, 1, [4]),
        ("vnncomp/acasxu/vnnlib/prop_6.vnnlib", 5, 5, 8, [1] * 8),
        ("vnncomp/acasxu/vnnlib/prop_7.vnnlib", 5, 5, 2, [3, 3]),
        ("vnncomp/acasxu/vnnlib/prop_8.vnnlib", 5, 5, 3, [2, 2, 2]),
        ("vnncomp/mnist_fc/vnnlib/prop_0_0.03.vnnlib", 784, 10, 9, [1] * 9),
        ("vnncomp/test/vnnlib/test_small.vnnlib", 1, 1, 1, [1]),
    ],
)
def test_competition_files(name: str, n: int, m: int, disjuncts: int, atoms: list[int]) -> None:
    prop = read_vnnlib(BENCH / name, n, m)
    assert prop.negation is not None
    assert len(prop.negation.disjuncts) == disjuncts
    assert [len(d.atoms) for d in prop.negation.disjuncts] == atoms
    if "prop_6" in name:
        boxes = {(d.lower.tobytes(), d.upper.tobytes()) for d in prop.negation.disjuncts}
        assert len(boxes) == 2
