"""A VNN-LIB 1.0 reader producing a :class:`~robustprop.properties.spec.Negation` (the unsafe set).

Supported (what the VNN-COMP files use): ``;`` comments, ``(declare-const X_i Real)`` and
``(declare-const Y_j Real)``, and ``(assert F)`` where ``F`` is built from ``and``, ``or`` and
comparisons ``<=``, ``>=`` (``<``, ``>`` are read as non-strict, as in the competition) between a
variable and a number, or between two output variables (input-to-input comparisons are not boxes
and are refused). The asserts are conjoined and put in disjunctive normal form; each disjunct
becomes a :class:`~robustprop.properties.spec.Disjunct` with its own input box, so input bounds
inside an ``or`` restrict only their own alternative.

Linear time in the file size: plain asserts (the 1568 input bounds of an MNIST file) are
collected once; only asserts containing ``or`` are multiplied out.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robustprop.properties.errors import InputError
from robustprop.properties.spec import Atom, Disjunct, Negation

__all__ = ["VnnlibProperty", "parse_vnnlib", "read_vnnlib"]

log = logging.getLogger(__name__)

# Guard against DNF blow-up from adversarial files (the competition files need at most 8).
MAX_DISJUNCTS = 100_000

_TOKEN = re.compile(r"\s+|;[^\n]*|\(|\)|[^\s();]+")
_VAR = re.compile(r"([XY])_(0|[1-9][0-9]*)$")
_NUMBER = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$")


@dataclass(frozen=True)
class VnnlibProperty:
    """A parsed VNN-LIB file: the unsafe set as a Negation, or ``None`` if it is empty.

    ``negation`` is ``None`` when every disjunct has an empty input box (trivially unsat).
    ``dropped`` counts the disjuncts dropped for an empty box.
    """

    negation: Negation | None
    n_inputs: int
    n_outputs: int
    dropped: int
    source: str


@dataclass(frozen=True)
class _Tok:
    text: str
    line: int
    col: int


@dataclass(frozen=True)
class _List:
    items: tuple[_Node, ...]
    line: int
    col: int


_Node = _Tok | _List

# An input bound: (index, is_upper_bound, value).
_XLit = tuple[int, bool, float]


@dataclass
class _Conj:
    """One conjunction of the DNF: input bounds and output atoms."""

    xs: list[_XLit]
    ys: list[Atom]


def read_vnnlib(path: str | Path, n_inputs: int, n_outputs: int) -> VnnlibProperty:
    """Parse a VNN-LIB file for a network with ``n_inputs`` inputs and ``n_outputs`` outputs."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read VNN-LIB file {p}: {err}") from err
    return parse_vnnlib(text, n_inputs, n_outputs, source=str(p))


def parse_vnnlib(
    text: str, n_inputs: int, n_outputs: int, *, source: str = "<vnnlib>"
) -> VnnlibProperty:
    """Parse VNN-LIB text. Errors are InputError with ``source:line:col`` and the token."""
    return _Reader(text, n_inputs, n_outputs, source).read()


class _Reader:
    def __init__(self, text: str, n_inputs: int, n_outputs: int, source: str) -> None:
        self.text = text
        self.n = n_inputs
        self.m = n_outputs
        self.source = source
        self.declared: set[tuple[str, int]] = set()

    def err(self, node: _Node, message: str) -> InputError:
        token = node.text if isinstance(node, _Tok) else "("
        return InputError(f"{self.source}:{node.line}:{node.col}: {message} (at {token!r})")

    # -- s-expressions ------------------------------------------------------------------------

    def parse_sexprs(self) -> list[_List]:
        stack: list[tuple[list[_Node], int, int]] = []
        top: list[_List] = []
        line, line_start = 1, 0
        for match in _TOKEN.finditer(self.text):
            tok = match.group()
            start = match.start()
            col = start - line_start + 1
            if tok[0].isspace() or tok[0] == ";":
                newlines = tok.count("\n")
                if newlines:
                    line += newlines
                    line_start = start + tok.rindex("\n") + 1
                continue
            if tok == "(":
                stack.append(([], line, col))
            elif tok == ")":
                if not stack:
                    raise self.err(_Tok(tok, line, col), "unbalanced ')'")
                items, l0, c0 = stack.pop()
                node = _List(tuple(items), l0, c0)
                if stack:
                    stack[-1][0].append(node)
                else:
                    top.append(node)
            else:
                if not stack:
                    raise self.err(_Tok(tok, line, col), "expected '(' at top level")
                stack[-1][0].append(_Tok(tok, line, col))
        if stack:
            _, l0, c0 = stack[-1]
            raise self.err(_Tok("(", l0, c0), "unclosed '(' at end of file")
        return top

    # -- commands -------------------------------------------------------------------------------

    def read(self) -> VnnlibProperty:
        base = _Conj([], [])
        ors: list[list[_Conj]] = []
        any_assert = False
        for cmd in self.parse_sexprs():
            head = cmd.items[0] if cmd.items else None
            if not isinstance(head, _Tok):
                raise self.err(cmd, "expected a command such as 'declare-const' or 'assert'")
            if head.text == "declare-const":
                self.declare(cmd)
            elif head.text == "assert":
                if len(cmd.items) != 2:
                    raise self.err(head, "'assert' takes exactly one formula")
                any_assert = True
                dnf = self.formula(cmd.items[1])
                if len(dnf) == 1:
                    base.xs.extend(dnf[0].xs)
                    base.ys.extend(dnf[0].ys)
                else:
                    ors.append(dnf)
            else:
                raise self.err(head, "unsupported command")
        if not any_assert:
            log.warning("%s has no assert", self.source)
        for i in range(self.n):
            if ("X", i) not in self.declared:
                raise InputError(f"{self.source}: network input X_{i} is not declared")
        n_terms = math.prod(len(d) for d in ors)
        if n_terms > MAX_DISJUNCTS:
            raise InputError(
                f"{self.source}: the property has {n_terms} disjuncts in normal form "
                f"(at most {MAX_DISJUNCTS} supported)"
            )
        conjs = [base]
        for dnf in ors:
            conjs = [_Conj(c.xs + d.xs, c.ys + d.ys) for c in conjs for d in dnf]
        disjuncts: list[Disjunct] = []
        dropped = 0
        for k, conj in enumerate(conjs):
            lower = np.full(self.n, -np.inf)
            upper = np.full(self.n, np.inf)
            for index, is_upper, value in conj.xs:
                if is_upper:
                    upper[index] = min(upper[index], value)
                else:
                    lower[index] = max(lower[index], value)
            unbounded = np.flatnonzero(~np.isfinite(lower) | ~np.isfinite(upper))
            if unbounded.size:
                where = f" in disjunct {k + 1} of {len(conjs)}" if len(conjs) > 1 else ""
                raise InputError(
                    f"{self.source}: input X_{unbounded[0]} has no "
                    f"{'lower' if not np.isfinite(lower[unbounded[0]]) else 'upper'} bound{where}"
                )
            if np.any(lower > upper):
                dropped += 1
                continue
            disjuncts.append(Disjunct(lower=lower, upper=upper, atoms=tuple(conj.ys)))
        if dropped:
            log.info("%s: dropped %d disjunct(s) with an empty input box", self.source, dropped)
        negation = (
            Negation(disjuncts=tuple(disjuncts), description=f"VNN-LIB {self.source}")
            if disjuncts
            else None
        )
        return VnnlibProperty(negation, self.n, self.m, dropped, self.source)

    def declare(self, cmd: _List) -> None:
        items = cmd.items
        if len(items) != 3 or not all(isinstance(t, _Tok) for t in items):
            raise self.err(cmd, "expected (declare-const NAME Real)")
        name, sort = items[1], items[2]
        assert isinstance(name, _Tok) and isinstance(sort, _Tok)
        if sort.text != "Real":
            raise self.err(sort, "only sort 'Real' is supported")
        kind, index = self.var_name(name)
        if (kind, index) in self.declared:
            raise self.err(name, "variable declared twice")
        self.declared.add((kind, index))

    def var_name(self, tok: _Tok) -> tuple[str, int]:
        match = _VAR.match(tok.text)
        if not match:
            raise self.err(tok, "variables must be named X_<i> (inputs) or Y_<j> (outputs)")
        kind, index = match.group(1), int(match.group(2))
        limit = self.n if kind == "X" else self.m
        if index >= limit:
            what = "inputs" if kind == "X" else "outputs"
            raise self.err(tok, f"index out of range: the network has {limit} {what}")
        return kind, index

    # -- formulas -------------------------------------------------------------------------------

    def formula(self, node: _Node) -> list[_Conj]:
        """DNF of a formula: a list of conjunctions."""
        if not isinstance(node, _List) or not node.items:
            raise self.err(node, "expected a formula '(and ...)', '(or ...)' or a comparison")
        head = node.items[0]
        if not isinstance(head, _Tok):
            raise self.err(head, "expected an operator")
        args = node.items[1:]
        if head.text == "and":
            result = [_Conj([], [])]
            for arg in args:
                sub = self.formula(arg)
                if len(sub) == 1:  # the common case: extend in place, no copying
                    for conj in result:
                        conj.xs.extend(sub[0].xs)
                        conj.ys.extend(sub[0].ys)
                    continue
                if len(result) * len(sub) > MAX_DISJUNCTS:
                    raise self.err(arg, f"more than {MAX_DISJUNCTS} disjuncts in normal form")
                result = [_Conj(a.xs + b.xs, a.ys + b.ys) for a in result for b in sub]
            return result
        if head.text == "or":
            if not args:
                raise self.err(head, "'or' needs at least one argument")
            out: list[_Conj] = []
            for arg in args:
                out.extend(self.formula(arg))
            return out
        if head.text in ("<=", ">=", "<", ">"):
            if len(args) != 2:
                raise self.err(head, "a comparison takes exactly two arguments")
            return [self.comparison(head, args[0], args[1])]
        raise self.err(head, "unsupported operator (expected and, or, <=, >=)")

    def term(self, node: _Node) -> tuple[str, int] | float:
        if isinstance(node, _List):
            # allow (- c) for a negative constant
            items = node.items
            if (
                len(items) == 2
                and isinstance(items[0], _Tok)
                and items[0].text == "-"
                and isinstance(items[1], _Tok)
                and _NUMBER.match(items[1].text)
            ):
                return -float(items[1].text)
            raise self.err(node, "expected a variable or a number")
        if _NUMBER.match(node.text):
            return float(node.text)
        kind, index = self.var_name(node)
        if (kind, index) not in self.declared:
            raise self.err(node, "undeclared variable")
        return kind, index

    def comparison(self, op: _Tok, left: _Node, right: _Node) -> _Conj:
        a, b = self.term(left), self.term(right)
        if op.text in ("<", ">"):
            log.debug(
                "%s:%d:%d: strict %r read as non-strict", self.source, op.line, op.col, op.text
            )
        # normalise to  a >= b
        if op.text in ("<=", "<"):
            a, b = b, a
        if isinstance(a, float) and isinstance(b, float):
            raise self.err(op, "comparison between two numbers")
        if isinstance(a, tuple) and isinstance(b, tuple):
            if a[0] == "Y" and b[0] == "Y":
                return _Conj([], [Atom(terms=((a[1], 1.0), (b[1], -1.0)), rhs=0.0)])
            raise self.err(op, "only output-output comparisons are supported between two variables")
        if isinstance(a, tuple):  # var >= const
            assert isinstance(b, float)
            if a[0] == "X":
                return _Conj([(a[1], False, b)], [])
            return _Conj([], [Atom(terms=((a[1], 1.0),), rhs=b)])
        assert isinstance(b, tuple) and isinstance(a, float)  # const >= var
        if b[0] == "X":
            return _Conj([(b[1], True, a)], [])
        return _Conj([], [Atom(terms=((b[1], -1.0),), rhs=-a)])
