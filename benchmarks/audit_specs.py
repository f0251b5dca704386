"""Hostile VNN-LIB specs for ``benchmarks/audit.py``: numbers and boxes a solver gets wrong.

For one audit network and one point ``x̂`` of it (outputs ``ŷ = f(x̂)``), :func:`hostile_specs`
writes specs whose answer is known:

- ``huge_le`` / ``huge_ge``: ``Y_0 ≤ C`` (sat) and ``Y_0 ≥ C`` (unsat) for C from 1e16 to the
  largest float64 (the outputs are clamped to ±100): Marabou answered ``unsat`` to the first;
- ``huge_beside``: ``Y_0 ≤ 1e17`` beside ``Y_a ≥ Y_b`` (the answer is the second atom's);
- ``point_box``: ``lower == upper = x̂`` and ``Y_0 ≤ ŷ_0 + 0.01`` (sat) / ``≥ ŷ_0 + 0.01``
  (unsat);
- ``tiny``: subnormal and tiny constants far from the outputs (``Y_0 ≤ ±1e-300`` and
  ``Y_0 ≥ ±5e-324`` on the point box, the answer set by the sign of ``ŷ_0`` when
  ``|ŷ_0| > 1e-6``; on the whole box, cross-checked only), and a box ``[x̂, x̂ + 5e-324]``
  (subnormal width). (A margin below float rounding, ``Y_0 ≥ ŷ_0 − 1e-300``, has no answer
  that float evaluation can confirm: verdicts are about the real-valued network.)
- ``empty_box``: one disjunct with ``lower > upper`` beside an ordinary one;
- ``repeated``: the same atom three times, the same disjunct twice.

Each spec is decided by ``verify vnnlib``'s pipeline four ways (Marabou, MILP and Z3 with the
plain strategy; ``auto`` staged), each with no attack. A *disagreement*: ``sat`` and ``unsat``
for the same spec, an answer against the known one, ``unsat`` where a replayed sample of the box
lies in the unsafe set, or an error.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from robustprop.properties.errors import RobustpropError
from robustprop.verify.engine.replay import Replayer
from robustprop.verify.formats.vnnlib import read_vnnlib
from robustprop.verify.run.vnnlib_check import check_vnnlib

FloatArray = npt.NDArray[np.float64]

DECIDERS: tuple[tuple[str, str], ...] = (
    ("marabou", "plain"),
    ("milp", "plain"),
    ("z3", "plain"),
    ("auto", "staged"),
)
HUGE = ("1e16", "1e17", "1e300", "1.7976931348623157e308")


@dataclass(frozen=True)
class Spec:
    """One hostile spec: its family, text and the answer it must have (``""``: either)."""

    family: str
    text: str
    expected: str


@dataclass
class SpecOutcome:
    family: str
    answers: dict[str, str] = field(default_factory=dict)  # decider -> sat/unsat/unknown
    disagreements: list[str] = field(default_factory=list)


def _box(lower: FloatArray, upper: FloatArray, m: int, body: list[str]) -> str:
    lines = [f"(declare-const X_{i} Real)" for i in range(lower.size)]
    lines += [f"(declare-const Y_{j} Real)" for j in range(m)]
    for i, (lo, hi) in enumerate(zip(lower, upper, strict=True)):
        lines += [f"(assert (>= X_{i} {float(lo)!r}))", f"(assert (<= X_{i} {float(hi)!r}))"]
    return "\n".join([*lines, *body]) + "\n"


def hostile_specs(x: FloatArray, y: FloatArray, eps: float) -> list[Spec]:
    """The specs around ``x`` (see the module doc); ``y``: the network's output at ``x``."""
    m = y.size
    lo, hi = np.maximum(x - eps, 0.0), np.minimum(x + eps, 1.0)
    y0 = float(y[0])
    specs: list[Spec] = []
    for c in HUGE:
        specs.append(Spec("huge_le", _box(lo, hi, m, [f"(assert (<= Y_0 {c}))"]), "sat"))
        specs.append(Spec("huge_ge", _box(lo, hi, m, [f"(assert (>= Y_0 {c}))"]), "unsat"))
    a, b = (1, 0) if m > 1 else (0, 0)
    beside = ["(assert (<= Y_0 1e17))", f"(assert (>= Y_{a} Y_{b}))"]
    specs.append(Spec("huge_beside", _box(lo, hi, m, beside), ""))
    specs.append(Spec("point_box", _box(x, x, m, [f"(assert (<= Y_0 {y0 + 0.01!r}))"]), "sat"))
    specs.append(Spec("point_box", _box(x, x, m, [f"(assert (>= Y_0 {y0 + 0.01!r}))"]), "unsat"))
    sign = "" if abs(y0) <= 1e-6 else ("sat" if y0 < 0 else "unsat")
    flip = {"sat": "unsat", "unsat": "sat", "": ""}[sign]
    specs.append(Spec("tiny", _box(x, x, m, ["(assert (<= Y_0 1e-300))"]), sign))
    specs.append(Spec("tiny", _box(x, x, m, ["(assert (<= Y_0 -5e-324))"]), sign))
    specs.append(Spec("tiny", _box(x, x, m, ["(assert (>= Y_0 5e-324))"]), flip))
    specs.append(Spec("tiny", _box(lo, hi, m, ["(assert (>= Y_0 -1e-300))"]), ""))
    sub = x + 5e-324
    specs.append(Spec("tiny", _box(x, sub, m, [f"(assert (<= Y_0 {y0 + 1.0!r}))"]), "sat"))
    empty = [
        f"(assert (or (and (>= X_0 {float(hi[0]) + 0.5!r}) (<= X_0 {float(lo[0])!r}) "
        f"(>= Y_0 -1e9)) (and (>= Y_0 {y0 + 1000.0!r}))))"
    ]
    specs.append(Spec("empty_box", _box(lo, hi, m, empty), "unsat"))
    atom = f"(>= Y_{a} Y_{b})"
    repeated = [f"(assert (or (and {atom} {atom} {atom}) (and {atom} {atom})))"]
    specs.append(Spec("repeated", _box(lo, hi, m, repeated), ""))
    return specs


def audit_specs(
    net_path: Path,
    replayer: Replayer,
    x: FloatArray,
    eps: float,
    timeout_s: float,
    folder: Path,
    rng: np.random.Generator,
) -> list[SpecOutcome]:
    """Decide every hostile spec around ``x`` every way and compare (see the module doc)."""
    y = replayer.evaluate64(x)[0]
    outcomes = []
    for k, spec in enumerate(hostile_specs(x, y, eps)):
        path = folder / f"hostile{k:02d}.vnnlib"
        path.write_text(spec.text)
        outcome = SpecOutcome(spec.family)
        for backend, strategy in DECIDERS:
            name = f"{backend}/{strategy}"
            try:
                result = check_vnnlib(
                    net_path, path, backend=backend, strategy=strategy, timeout_s=timeout_s,
                    attack=False,
                )  # fmt: skip
            except RobustpropError as err:
                outcome.answers[name] = "error"
                outcome.disagreements.append(f"{spec.family} {path.name}: {name} error: {err}")
                continue
            outcome.answers[name] = result.status
        _compare(outcome, spec, path, replayer, rng)
        outcomes.append(outcome)
    return outcomes


def _compare(
    outcome: SpecOutcome, spec: Spec, path: Path, replayer: Replayer, rng: np.random.Generator
) -> None:
    decided = {k: v for k, v in outcome.answers.items() if v in ("sat", "unsat")}
    where = f"{spec.family} {path.name}"
    for a, b in itertools.combinations(sorted(decided), 2):
        if decided[a] != decided[b]:
            outcome.disagreements.append(f"{where}: {a} says {decided[a]}, {b} {decided[b]}")
    for k, v in decided.items():
        if spec.expected and v != spec.expected:
            outcome.disagreements.append(f"{where}: {k} says {v}, the answer is {spec.expected}")
    if "unsat" in decided.values() and _sampled_violation(path, replayer, rng):
        outcome.disagreements.append(f"{where}: unsat, but a replayed sample is in the unsafe set")


def _sampled_violation(path: Path, replayer: Replayer, rng: np.random.Generator) -> bool:
    """Whether a sample of the spec's boxes (centres, corners, 200 uniform) replays inside it."""
    text = path.read_text()
    n, m = text.count("(declare-const X_"), text.count("(declare-const Y_")
    negation = read_vnnlib(path, n, m).negation
    if negation is None:
        return False
    for d in negation.disjuncts:
        vertices = itertools.product(*zip(d.lower, d.upper, strict=True))
        corners = np.array(list(itertools.islice(vertices, 16)))
        samples = d.lower + (d.upper - d.lower) * rng.random((200, d.lower.size))
        for point in [(d.lower + d.upper) / 2.0, *corners, *samples]:
            if replayer.replay(point, negation).confirmed:
                return True
    return False


def tally(outcomes: list[SpecOutcome]) -> Counter[str]:
    """Counts by ``family decider answer`` and in all."""
    counts: Counter[str] = Counter()
    for o in outcomes:
        counts["specs"] += 1
        counts["disagree" if o.disagreements else "agree"] += 1
        for decider, answer in o.answers.items():
            counts[f"{o.family} {decider} {answer}"] += 1
            counts[f"{decider} {answer}"] += 1
    return counts
