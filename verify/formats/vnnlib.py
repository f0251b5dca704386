"""A VNN-LIB 1.0 reader producing a :class:`~robustprop.properties.spec.Negation` (the unsafe set).

Supported (what the VNN-COMP files use): ``;`` comments, ``(declare-const X_i Real)`` and
``(declare-const Y_j Real)``, and ``(assert F)`` where ``F`` is built from ``and``, ``or`` and
comparisons ``<=``, ``>=`` (``<``, ``>`` are read as non-strict, as in the competition) between a
variable and a number, or between two output variables (input-to-input comparisons are not boxes
and are refused). The asserts are conjoined and put in disjunctive normal form; each disjunct
becomes a :class:`~robustprop.properties.spec.Disjunct` with its own input box, so input bounds
inside an ``or`` restrict only their own alternative.

Linear time in the file size: the file is read one top-level command at a time (a plain
assert's tree is dropped as soon as it is read), plain asserts (the 1568 input bounds of an
MNIST file) are collected once and only asserts containing ``or`` are multiplied out.

**Nothing in a file is trusted.** Every cap below is checked *before* the structure it limits
is built, and exceeding one is an :class:`InputError` naming the cap:

- at most :data:`MAX_FILE_BYTES` bytes are read, also after inflating a ``.gz`` file (a FIFO
  or device cannot make the reader wait for more), at most :data:`MAX_TOKENS` tokens,
  parentheses nested at most :data:`MAX_DEPTH` deep (the competition files need 4);
- the normal form has at most :data:`MAX_DISJUNCTS` disjuncts, :data:`MAX_DNF_LITERALS`
  comparisons over all of them and :data:`MAX_BOX_VALUES` input bounds (disjuncts x inputs);
- numbers are finite float64 values: ``inf``, ``nan`` and literals that overflow (``1e400``)
  are refused with file, line, column and the token. Tiny and subnormal numbers are kept as
  they are; which constants a solver can take is decided by the engine
  (:mod:`robustprop.verify.engine.screen`), not here;
- a comparison repeated within a disjunct, and a disjunct repeated, are kept once; a disjunct
  whose input box is empty (a lower bound above its upper bound) is dropped and *reported*
  (:attr:`VnnlibProperty.dropped`, a warning, the negation's description); a box with
  ``lower == upper`` is a single point and is kept.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robustprop.properties.errors import InputError
from robustprop.properties.spec import Atom, Disjunct, Negation
from robustprop.verify.formats.compressed import read_capped

__all__ = [
    "MAX_BOX_VALUES",
    "MAX_DEPTH",
    "MAX_DISJUNCTS",
    "MAX_DNF_LITERALS",
    "MAX_FILE_BYTES",
    "MAX_TOKENS",
    "VnnlibProperty",
    "parse_vnnlib",
    "read_vnnlib",
]

log = logging.getLogger(__name__)

#: Largest file read (64 MiB; a 224 x 224 x 3 image box is about 12 MB of VNN-LIB).
MAX_FILE_BYTES = 64 * 1024 * 1024
#: Most tokens (names, numbers, parentheses) in one file.
MAX_TOKENS = 10_000_000
#: Deepest nesting of parentheses (the competition files need 4).
MAX_DEPTH = 64
#: Most disjuncts in normal form (the competition files need at most 8 per box).
MAX_DISJUNCTS = 100_000
#: Most comparisons summed over the disjuncts of the normal form.
MAX_DNF_LITERALS = 10_000_000
#: Most input bounds summed over the disjuncts' boxes (disjuncts x inputs; 320 MB of float64).
MAX_BOX_VALUES = 20_000_000

_TOKEN = re.compile(r"\s+|;[^\n]*|\(|\)|[^\s();]+")
_VAR = re.compile(r"([XY])_(0|[1-9][0-9]*)$")
_NUMBER = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$")
_NON_FINITE = re.compile(r"[-+]?(?:inf(?:inity)?|nan)$", re.IGNORECASE)


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


@dataclass(frozen=True, slots=True)
class _Tok:
    text: str
    line: int
    col: int


@dataclass(frozen=True, slots=True)
class _List:
    items: tuple[_Node, ...]
    line: int
    col: int


_Node = _Tok | _List

# An input bound: (index, is_upper_bound, value).
_XLit = tuple[int, bool, float]


@dataclass(slots=True)
class _Conj:
    """One conjunction of the DNF: input bounds and output atoms."""

    xs: list[_XLit]
    ys: list[Atom]

    @property
    def size(self) -> int:
        return len(self.xs) + len(self.ys)


def read_vnnlib(path: str | Path, n_inputs: int, n_outputs: int) -> VnnlibProperty:
    """Parse a VNN-LIB file for a network with ``n_inputs`` inputs and ``n_outputs`` outputs.

    Reads at most :data:`MAX_FILE_BYTES` bytes (a larger file is an InputError naming the cap);
    a gzip-compressed file (VNN-COMP's ``.vnnlib.gz``) is inflated, to at most as many bytes
    (:func:`~robustprop.verify.formats.compressed.read_capped`).
    """
    p = Path(path)
    data = read_capped(p, MAX_FILE_BYTES, "VNN-LIB file", "MAX_FILE_BYTES")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputError(f"cannot read VNN-LIB file {p}: {err}") from err
    return parse_vnnlib(text, n_inputs, n_outputs, source=str(p))


def parse_vnnlib(
    text: str, n_inputs: int, n_outputs: int, *, source: str = "<vnnlib>"
) -> VnnlibProperty:
    """Parse VNN-LIB text. Errors are InputError with ``source:line:col`` and the token."""
    if len(text) > MAX_FILE_BYTES:
        raise InputError(
            f"{source}: VNN-LIB text longer than the cap of {MAX_FILE_BYTES} characters "
            "(MAX_FILE_BYTES)"
        )
    return _Reader(text, n_inputs, n_outputs, source).read()


def _shown(token: str) -> str:
    """The token for a message: at most 40 characters of it."""
    return repr(token if len(token) <= 40 else token[:40] + "...")


def _apply(xs: list[_XLit], lower: np.ndarray, upper: np.ndarray) -> None:
    """Tighten ``lower``/``upper`` in place by the input bounds ``xs``."""
    for index, is_upper, value in xs:
        if is_upper:
            upper[index] = min(upper[index], value)
        else:
            lower[index] = max(lower[index], value)


def _unique(atoms: list[Atom]) -> tuple[Atom, ...]:
    """The atoms in order, each kept once."""
    return tuple(dict.fromkeys(atoms))


class _Reader:
    def __init__(self, text: str, n_inputs: int, n_outputs: int, source: str) -> None:
        self.text = text
        self.n = n_inputs
        self.m = n_outputs
        self.source = source
        self.declared: set[tuple[str, int]] = set()

    def err(self, node: _Node, message: str) -> InputError:
        token = node.text if isinstance(node, _Tok) else "("
        return InputError(f"{self.source}:{node.line}:{node.col}: {message} (at {_shown(token)})")

    # -- s-expressions ------------------------------------------------------------------------

    def commands(self) -> Iterator[_List]:
        """The top-level s-expressions, each as soon as its ``)`` is read."""
        stack: list[tuple[list[_Node], int, int]] = []
        line, line_start = 1, 0
        tokens = 0
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
            tokens += 1
            if tokens > MAX_TOKENS:
                raise self.err(_Tok(tok, line, col), f"more than {MAX_TOKENS} tokens (MAX_TOKENS)")
            if tok == "(":
                if len(stack) >= MAX_DEPTH:
                    raise self.err(
                        _Tok(tok, line, col),
                        f"parentheses nested deeper than {MAX_DEPTH} (MAX_DEPTH)",
                    )
                stack.append(([], line, col))
            elif tok == ")":
                if not stack:
                    raise self.err(_Tok(tok, line, col), "unbalanced ')'")
                items, l0, c0 = stack.pop()
                node = _List(tuple(items), l0, c0)
                if stack:
                    stack[-1][0].append(node)
                else:
                    yield node
            else:
                if not stack:
                    raise self.err(_Tok(tok, line, col), "expected '(' at top level")
                stack[-1][0].append(_Tok(tok, line, col))
        if stack:
            _, l0, c0 = stack[-1]
            raise self.err(_Tok("(", l0, c0), "unclosed '(' at end of file")

    # -- commands -------------------------------------------------------------------------------

    def read(self) -> VnnlibProperty:
        base = _Conj([], [])
        ors: list[list[_Conj]] = []
        any_assert = False
        for cmd in self.commands():
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
                f"(at most {MAX_DISJUNCTS} supported, MAX_DISJUNCTS)"
            )
        if n_terms * self.n > MAX_BOX_VALUES:
            raise InputError(
                f"{self.source}: {n_terms} disjuncts x {self.n} inputs = {n_terms * self.n} "
                f"input bounds (at most {MAX_BOX_VALUES} supported, MAX_BOX_VALUES)"
            )
        conjs = [_Conj([], [])]
        for dnf in ors:
            conjs = self.product(conjs, dnf, None)
        return self.finish(base, conjs)

    def finish(self, base: _Conj, conjs: list[_Conj]) -> VnnlibProperty:
        """The disjuncts: ``base`` (the plain asserts) and each conjunction of ``conjs``."""
        lower0 = np.full(self.n, -np.inf)
        upper0 = np.full(self.n, np.inf)
        _apply(base.xs, lower0, upper0)
        disjuncts: list[Disjunct] = []
        seen: set[tuple[bytes, tuple[Atom, ...]]] = set()
        dropped = repeated = 0
        for k, conj in enumerate(conjs):
            lower, upper = lower0.copy(), upper0.copy()
            _apply(conj.xs, lower, upper)
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
            atoms = _unique(base.ys + conj.ys)
            key = (hashlib.blake2b(lower.tobytes() + upper.tobytes()).digest(), atoms)
            if key in seen:
                repeated += 1
                continue
            seen.add(key)
            disjuncts.append(Disjunct(lower=lower, upper=upper, atoms=atoms))
        description = f"VNN-LIB {self.source}"
        if dropped:
            empty = np.flatnonzero(lower0 > upper0)
            why = f" (X_{empty[0]} in every disjunct)" if empty.size else ""
            log.warning(
                "%s: dropped %d of %d disjunct(s) whose input box is empty%s",
                self.source,
                dropped,
                len(conjs),
                why,
            )
            description += f" ({dropped} of {len(conjs)} disjuncts dropped: empty input box)"
        if repeated:
            log.info("%s: %d repeated disjunct(s) kept once", self.source, repeated)
        negation = (
            Negation(disjuncts=tuple(disjuncts), description=description) if disjuncts else None
        )
        return VnnlibProperty(negation, self.n, self.m, dropped, self.source)

    def product(self, left: list[_Conj], right: list[_Conj], at: _Node | None) -> list[_Conj]:
        """Every conjunction of ``left`` with every one of ``right``, within the caps."""
        count = len(left) * len(right)
        literals = len(right) * sum(c.size for c in left) + len(left) * sum(c.size for c in right)
        problem = ""
        if count > MAX_DISJUNCTS:
            problem = f"more than {MAX_DISJUNCTS} disjuncts in normal form (MAX_DISJUNCTS)"
        elif literals > MAX_DNF_LITERALS:
            problem = f"more than {MAX_DNF_LITERALS} comparisons in normal form (MAX_DNF_LITERALS)"
        if problem:
            if at is not None:
                raise self.err(at, problem)
            raise InputError(f"{self.source}: {problem}")
        return [_Conj(a.xs + b.xs, a.ys + b.ys) for a in left for b in right]

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
                    grown = sum(c.size for c in result) + len(result) * sub[0].size
                    if grown > MAX_DNF_LITERALS:
                        self.product(result, sub, arg)  # raises, naming the cap
                    for conj in result:
                        conj.xs.extend(sub[0].xs)
                        conj.ys.extend(sub[0].ys)
                    continue
                result = self.product(result, sub, arg)
            return result
        if head.text == "or":
            if not args:
                raise self.err(head, "'or' needs at least one argument")
            out: list[_Conj] = []
            for arg in args:
                out.extend(self.formula(arg))
                if len(out) > MAX_DISJUNCTS:
                    raise self.err(
                        arg, f"more than {MAX_DISJUNCTS} disjuncts in normal form (MAX_DISJUNCTS)"
                    )
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
            ):
                if _NUMBER.match(items[1].text):
                    return -self.number(items[1])
                if _NON_FINITE.match(items[1].text):
                    raise self.err(items[1], "not a finite number (inf and nan are refused)")
            raise self.err(node, "expected a variable or a number")
        if _NUMBER.match(node.text):
            return self.number(node)
        if _NON_FINITE.match(node.text):
            raise self.err(node, "not a finite number (inf and nan are refused)")
        kind, index = self.var_name(node)
        if (kind, index) not in self.declared:
            raise self.err(node, "undeclared variable")
        return kind, index

    def number(self, tok: _Tok) -> float:
        """A numeric literal as a finite float64 (an overflow to infinity is refused)."""
        value = float(tok.text)
        if not math.isfinite(value):
            raise self.err(tok, "number beyond the range of float64 (it would read as infinity)")
        return value

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
