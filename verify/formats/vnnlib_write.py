"""Writing a property's negation as a VNN-LIB 1.0 file, so any VNN-COMP verifier can check it.

VNN-LIB 1.0 compares a variable with a number or two variables, so an atom is expressible when
it has one output term (``c·Y_j ≥ rhs``) or two terms with opposite unit-size coefficients
(``Y_j − Y_k ≥ 0``): exactly SR's and CR's atoms. LR's auxiliary distance ``d`` and SCR's softmax
have no VNN-LIB 1.0 form; they are refused with a message saying so. Numbers are written with
``repr`` (shortest round-trip form), so reading the file back gives the same float64 values;
a non-finite number (which the reader refuses) is refused here, naming where it is.
"""

from __future__ import annotations

import math
from pathlib import Path

from robustprop.properties.errors import InputError
from robustprop.properties.spec import Atom, Negation

__all__ = ["vnnlib_text", "write_vnnlib"]


def vnnlib_text(negation: Negation, title: str = "") -> str:
    """The VNN-LIB text of ``negation`` (one input box shared by all disjuncts)."""
    if negation.distance is not None:
        raise InputError("LR's query needs an auxiliary distance variable: no VNN-LIB 1.0 form")
    if negation.softmax is not None:
        raise InputError("SCR's query involves softmax: no VNN-LIB 1.0 form")
    boxes = {d.lower.tobytes() + d.upper.tobytes() for d in negation.disjuncts}
    if len(boxes) != 1:
        raise InputError("the query has several input boxes; write one file per box")
    box = negation.disjuncts[0]
    m = 1 + max((j for d in negation.disjuncts for a in d.atoms for j, _ in a.terms), default=0)
    lines = [f"; {line}" for line in (title or negation.description).splitlines() if line]
    lines += [f"(declare-const X_{i} Real)" for i in range(box.lower.size)]
    lines += [f"(declare-const Y_{j} Real)" for j in range(m)]
    for i, (lo, hi) in enumerate(zip(box.lower, box.upper, strict=True)):
        lines.append(f"(assert (>= X_{i} {_number(lo, f'the bounds of X_{i}')}))")
        lines.append(f"(assert (<= X_{i} {_number(hi, f'the bounds of X_{i}')}))")
    conjunctions = []
    for disjunct in negation.disjuncts:
        atoms = " ".join(_atom(a) for a in disjunct.atoms)
        conjunctions.append(f"(and {atoms})")
    lines.append("(assert (or")
    lines += [f"    {c}" for c in conjunctions]
    lines.append("))")
    return "\n".join(lines) + "\n"


def write_vnnlib(negation: Negation, path: Path, title: str = "") -> None:
    """Write :func:`vnnlib_text` to ``path``."""
    try:
        path.write_text(vnnlib_text(negation, title), encoding="utf-8")
    except OSError as err:
        raise InputError(f"cannot write {path}: {err.strerror or err}") from err


def _number(value: float, where: str) -> str:
    """``repr`` of a finite float64; InputError naming ``where`` otherwise."""
    number = float(value)
    if not math.isfinite(number):
        raise InputError(f"cannot write {number} in {where}: VNN-LIB numbers are finite")
    return repr(number)


def _atom(atom: Atom) -> str:
    if atom.dist_coeff != 0.0:
        raise InputError("an atom with the distance term d has no VNN-LIB 1.0 form")
    terms = [(j, c) for j, c in atom.terms if c != 0.0]
    if len(terms) == 1:
        (j, c), bound = terms[0], atom.rhs / terms[0][1]
        op = ">=" if c > 0 else "<="
        return f"({op} Y_{j} {_number(bound, f'an atom on Y_{j}')})"
    if len(terms) == 2 and atom.rhs == 0.0:
        (j, a), (k, b) = terms
        if a == -b and a != 0.0:
            hi, lo = (j, k) if a > 0 else (k, j)
            return f"(>= Y_{hi} Y_{lo})"
    raise InputError(f"atom {atom} is not a VNN-LIB 1.0 comparison")
