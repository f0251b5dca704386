"""MILP backend: the query as a mixed-integer linear program for HiGHS (``highspy``).

Encoding of one query (disjuncts sharing one input box), exact for the IR:

- inputs: continuous variables bounded by the box (∩ the distance ball for LR);
- affine layers: one variable per output, ``z − Σ W h = b`` (constant inputs folded in);
- ReLU on ``[l, u]``: the identity if ``l ≥ 0``, the constant 0 if ``u ≤ 0``, else ``a ≥ 0``,
  ``a ≥ z``, ``a ≤ z − l(1 − δ)``, ``a ≤ u·δ`` with a binary ``δ`` (big-M from the bounds);
- Clip(lo, hi) = ``lo + relu(z − lo) − relu(z − hi)``, each ReLU as above (only those that can
  act), so stable sides add no binary;
- LR distance: ``d`` in ``[0, ε]`` with ``±(x_i − x̂_i) ≤ d``;
- each disjunct is one MILP: its atoms as rows ``Σ c_j y_j + k·d ≥ rhs`` and, for a single atom,
  the objective "maximise the atom" (guides the search towards violations). HiGHS stops at the
  first feasible point (``mip_max_improving_sols = 1``): ``Status.VIOLATED`` (the solver's
  "sat"); infeasible: ``Status.HOLDS`` ("unsat"). Primal
  heuristics and presolve are off (see ``_OPTIONS``).

The bounds ``[l, u]`` are the tightest available: ``network.interval_bounds`` (which a
:class:`robustprop.verify.engine.bounds.SeededNetwork` intersects with CROWN bounds of the query
box), and when
the network carries no seed covering the box, CROWN bounds computed here. Disjuncts are tried
in order of their atom's value at the box center (most violated first); the time limit covers
them all.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from robustprop.properties.spec import Disjunct, FloatArray, Negation
from robustprop.verify.engine.backends.base import (
    BackendName,
    SolverOutcome,
    check_query,
    import_solver,
    query_box,
)
from robustprop.verify.engine.crown import Crown
from robustprop.verify.engine.network import Affine, Network, Relu
from robustprop.verify.engine.verdict import Status

__all__ = ["MilpBackend", "MilpModel", "MilpSession", "encode_network", "solve_disjunct"]

log = logging.getLogger(__name__)

_INF = float("inf")
IntArray = npt.NDArray[np.int64]


@dataclass
class MilpModel:
    """Columns and rows of the MILP, built in pieces and assembled for HiGHS."""

    col_lower: list[float] = field(default_factory=list)
    col_upper: list[float] = field(default_factory=list)
    integer: list[int] = field(default_factory=list)
    row_lower: list[float] = field(default_factory=list)
    row_upper: list[float] = field(default_factory=list)
    row_index: list[IntArray] = field(default_factory=list)
    row_value: list[FloatArray] = field(default_factory=list)
    inputs: list[int] = field(default_factory=list)
    d: int | None = None
    delta_of: dict[int, int] = field(default_factory=dict)  # ReLU input column → its binary

    def fix_relu(self, z: int, sign: int) -> None:
        """Restrict to ``z ≥ 0`` (``sign`` +1) or ``z ≤ 0`` (−1), the ReLU on ``z`` active or
        inactive: the row, and its binary fixed if it has one."""
        if sign > 0:
            self.row([z], [1.0], 0.0, _INF)
        else:
            self.row([z], [1.0], -_INF, 0.0)
        delta = self.delta_of.get(z)
        if delta is not None:
            self.col_lower[delta] = self.col_upper[delta] = 1.0 if sign > 0 else 0.0

    def copy(self) -> MilpModel:
        """A copy whose columns and rows can be changed without touching this model."""
        return MilpModel(
            list(self.col_lower),
            list(self.col_upper),
            list(self.integer),
            list(self.row_lower),
            list(self.row_upper),
            list(self.row_index),
            list(self.row_value),
            list(self.inputs),
            self.d,
            dict(self.delta_of),
        )

    def var(self, lo: float, hi: float, integer: bool = False) -> int:
        self.col_lower.append(float(lo))
        self.col_upper.append(float(hi))
        if integer:
            self.integer.append(len(self.col_lower) - 1)
        return len(self.col_lower) - 1

    def row(
        self, index: list[int] | IntArray, value: list[float] | FloatArray, lo: float, hi: float
    ) -> None:
        self.row_index.append(np.asarray(index, dtype=np.int64))
        self.row_value.append(np.asarray(value, dtype=np.float64))
        self.row_lower.append(float(lo))
        self.row_upper.append(float(hi))

    @property
    def n_cols(self) -> int:
        return len(self.col_lower)


# A network value: a variable index (>= 0) or, with index -1, the constant beside it.
_Values = tuple[IntArray, FloatArray]


def _layer_bounds(
    network: Network, lower: FloatArray, upper: FloatArray
) -> list[tuple[FloatArray, FloatArray]]:
    """Interval bounds (seeded if the network carries a seed) intersected with CROWN's."""
    base = network.interval_bounds(lower, upper)
    seed = getattr(network, "seed", None)
    if seed is not None and seed.covers(lower, upper):
        return base
    crown = Crown(network)
    lb = crown.layer_bounds(crown.tensor(lower[None, :]), crown.tensor(upper[None, :]))
    out = []
    for (b_lo, b_hi), (c_lo, c_hi) in zip(base, lb.numpy(0), strict=True):
        lo, hi = np.maximum(b_lo, c_lo), np.minimum(b_hi, c_hi)
        out.append((lo, hi) if np.all(lo <= hi) else (b_lo, b_hi))
    return out


def encode_network(
    network: Network, negation: Negation, trace: list[_Values] | None = None
) -> tuple[MilpModel, _Values] | None:
    """The network over the query box of ``negation``, and its outputs; ``None`` if empty.
    ``trace`` receives the values of every affine layer's outputs, in order."""
    lower, upper = query_box(negation)
    if np.any(lower > upper):
        return None
    model = MilpModel()
    model.inputs = [model.var(lo, hi) for lo, hi in zip(lower, upper, strict=True)]
    h: _Values = (np.asarray(model.inputs, dtype=np.int64), np.zeros(network.n))
    h_lo, h_hi = lower, upper
    for layer, (lo, hi) in zip(network.layers, _layer_bounds(network, lower, upper), strict=True):
        if isinstance(layer, Affine):
            h = _affine(model, layer, h, lo, hi)
            if trace is not None:
                trace.append(h)
        elif isinstance(layer, Relu):
            h = _activation(model, h, h_lo, h_hi, None)
        else:
            h = _activation(model, h, h_lo, h_hi, (layer.lo, layer.hi))
        h_lo, h_hi = lo, hi
    if negation.distance is not None:
        center, eps = negation.distance.center, float(negation.distance.eps)
        model.d = model.var(0.0, eps)
        for xi, ci in zip(model.inputs, center, strict=True):
            model.row([xi, model.d], [1.0, -1.0], -_INF, float(ci))
            model.row([xi, model.d], [-1.0, -1.0], -_INF, -float(ci))
    return model, h


def _affine(model: MilpModel, layer: Affine, h: _Values, lo: FloatArray, hi: FloatArray) -> _Values:
    idx, const = h
    is_var = idx >= 0
    offset = layer.b + layer.W[:, ~is_var] @ const[~is_var]
    Wv = layer.W[:, is_var]
    cols = idx[is_var]
    out_idx = np.full(layer.out_size, -1, dtype=np.int64)
    out_const = np.zeros(layer.out_size)
    for i in range(layer.out_size):
        nz = np.flatnonzero(Wv[i])
        if nz.size == 0:
            out_const[i] = offset[i]
            continue
        v = model.var(lo[i], hi[i])
        model.row(
            np.concatenate([[v], cols[nz]]),
            np.concatenate([[1.0], -Wv[i, nz]]),
            float(offset[i]),
            float(offset[i]),
        )
        out_idx[i] = v
    return out_idx, out_const


def _relu(model: MilpModel, z: int, shift: float, low: float, up: float) -> int:
    """A variable equal to ``relu(z − shift)`` for ``z − shift`` in ``[low, up]``, low < 0 < up
    (its binary is 1 exactly where ``z ≥ shift``; recorded for a plain ReLU)."""
    a = model.var(0.0, up)
    delta = model.var(0.0, 1.0, integer=True)
    if shift == 0.0:
        model.delta_of[z] = delta
    model.row([a, z], [1.0, -1.0], -shift, _INF)  # a >= z - shift
    # a <= z - shift - low (1 - delta)
    model.row([a, z, delta], [1.0, -1.0, -low], -_INF, -shift - low)
    model.row([a, delta], [1.0, -up], -_INF, 0.0)  # a <= up * delta
    return a


def _activation(
    model: MilpModel,
    h: _Values,
    lo: FloatArray,
    hi: FloatArray,
    clip: tuple[float, float] | None,
) -> _Values:
    idx, const = h
    out_idx = idx.copy()
    out_const = const.copy()
    for i in range(idx.size):
        z, low, up = int(idx[i]), float(lo[i]), float(hi[i])
        if clip is None:
            if z < 0:
                out_const[i] = max(const[i], 0.0)
            elif up <= 0.0:
                out_idx[i], out_const[i] = -1, 0.0
            elif low < 0.0:
                out_idx[i] = _relu(model, z, 0.0, low, up)
            continue
        c_lo, c_hi = clip
        if z < 0:
            out_const[i] = min(max(const[i], c_lo), c_hi)
        elif up <= c_lo:
            out_idx[i], out_const[i] = -1, c_lo
        elif low >= c_hi:
            out_idx[i], out_const[i] = -1, c_hi
        elif low < c_lo or up > c_hi:
            # out = [c_lo + relu(z - c_lo) or z] - [relu(z - c_hi) or 0]
            out = model.var(max(low, c_lo), min(up, c_hi))
            index, value, rhs = [out], [1.0], 0.0
            if low < c_lo:
                index.append(_relu(model, z, c_lo, low - c_lo, up - c_lo))
                value.append(-1.0)
                rhs = c_lo
            else:
                index.append(z)
                value.append(-1.0)
            if up > c_hi:
                index.append(_relu(model, z, c_hi, low - c_hi, up - c_hi))
                value.append(1.0)
            model.row(index, value, rhs, rhs)
            out_idx[i] = out
    return out_idx, out_const


# HiGHS settings. Primal heuristics are off: this backend's job in the portfolio is proving
# "unsat" (Marabou and PGD find points faster), and on 784-100-10 networks HiGHS spent ~85% of
# its time in sub-MIP heuristics (RINS/RENS) on infeasible models (27 s -> 3.7 s per query).
# Presolve is off too (its probing cost ~1 s per query there and removed almost nothing).
_OPTIONS: tuple[tuple[str, bool | int | float | str], ...] = (
    ("output_flag", False),
    ("threads", 1),
    ("presolve", "off"),
    ("mip_max_improving_sols", 1),
    ("mip_feasibility_tolerance", 1e-9),
    ("primal_feasibility_tolerance", 1e-9),
    ("mip_heuristic_effort", 0.0),
    ("mip_heuristic_run_feasibility_jump", False),
    ("mip_heuristic_run_rins", False),
    ("mip_heuristic_run_rens", False),
    ("mip_heuristic_run_root_reduced_cost", False),
)


@dataclass(frozen=True)
class MilpBackend:
    """HiGHS branch and bound, one thread, quiet."""

    @property
    def name(self) -> BackendName:
        return BackendName.MILP

    def solve(self, network: Network, negation: Negation, timeout_s: float) -> SolverOutcome:
        check_query(network, negation)
        start = time.monotonic()
        session = MilpSession(network, negation)
        for k in session.order():
            remaining = timeout_s - (time.monotonic() - start)
            if remaining <= 0:
                return SolverOutcome(
                    Status.UNKNOWN,
                    None,
                    "milp: time limit reached before every disjunct was tried",
                    time.monotonic() - start,
                )
            status, x, reason = session.solve(k, remaining)
            if status is not Status.HOLDS:
                return SolverOutcome(status, x, reason, time.monotonic() - start)
        return SolverOutcome(Status.HOLDS, None, "milp: unsat", time.monotonic() - start)


class MilpSession:
    """One MILP per disjunct of a negation, the network encoded once per input box.

    :meth:`order` lists the disjuncts most violated at their box center first (the likeliest
    to have a point); :meth:`solve` decides one of them.
    """

    def __init__(self, network: Network, negation: Negation) -> None:
        check_query(network, negation)
        self.network = network
        self.negation = negation
        self._highspy = import_solver("highspy", "highspy")
        self._encoded: dict[bytes, tuple[MilpModel, _Values] | None] = {}

    def order(self) -> list[int]:
        scores = []
        centers: dict[bytes, FloatArray] = {}
        for d in self.negation.disjuncts:
            key = d.lower.tobytes() + d.upper.tobytes()
            if key not in centers:
                centers[key] = self.network.evaluate((d.lower + d.upper) / 2.0)[0]
            scores.append(-min((a.value(centers[key]) for a in d.atoms), default=0.0))
        return [int(k) for k in np.argsort(scores, kind="stable")]

    def solve(self, k: int, timeout_s: float) -> tuple[Status, FloatArray | None, str]:
        """Decide disjunct ``k`` alone (with the negation's distance, if any)."""
        d = self.negation.disjuncts[k]
        key = d.lower.tobytes() + d.upper.tobytes()
        if key not in self._encoded:
            group = Negation(
                disjuncts=tuple(
                    e
                    for e in self.negation.disjuncts
                    if e.lower.tobytes() + e.upper.tobytes() == key
                ),
                distance=self.negation.distance,
                tau=self.negation.tau,
            )
            self._encoded[key] = encode_network(self.network, group)
        encoded = self._encoded[key]
        if encoded is None:
            return Status.HOLDS, None, "milp: empty input box"
        model, outputs = encoded
        return solve_disjunct(self._highspy, model, outputs, d, timeout_s)


def solve_disjunct(
    highspy: Any,
    model: MilpModel,
    outputs: _Values,
    disjunct: Disjunct,
    timeout_s: float,
    *,
    margin: bool = False,
) -> tuple[Status, FloatArray | None, str]:
    """Decide one disjunct over the encoded ``model`` (``highspy``: the imported module).

    A single atom is maximised, so that a point found satisfies it with room to spare. With
    ``margin`` (for small programs: it makes the solver optimise where feasibility would do) so
    is the smallest slack of several atoms, through a column ``t ∈ [0, 1]`` subtracted from
    each: feasibility is unchanged, and the point is not a vertex where every atom is tight,
    which float replay may miss by an ulp (a fully split sub-domain of a random 3-8-8-3 net,
    where the negation is met with room 1e-4: its feasibility point failed replay)."""
    cost = np.zeros(model.n_cols)
    extra_rows: list[tuple[IntArray, FloatArray, float]] = []
    for atom in disjunct.atoms:
        terms: dict[int, float] = {}
        rhs = float(atom.rhs)
        for j, c in atom.terms:
            var = int(outputs[0][j])
            if var < 0:
                rhs -= c * float(outputs[1][j])
            else:
                terms[var] = terms.get(var, 0.0) + c
        if atom.dist_coeff != 0.0:
            if model.d is None:
                raise ValueError("an atom uses the distance d but the negation has no Distance")
            terms[model.d] = terms.get(model.d, 0.0) + atom.dist_coeff
        terms = {v: c for v, c in terms.items() if c != 0.0}
        if not terms:
            if rhs > 0.0:
                return Status.HOLDS, None, "milp: an atom without variables never holds"
            continue
        index = np.fromiter(terms.keys(), dtype=np.int64)
        value = np.fromiter(terms.values(), dtype=np.float64)
        extra_rows.append((index, value, rhs))
        if len(disjunct.atoms) == 1:
            cost[index] -= value  # HiGHS minimises: maximise the atom
    if margin and len(extra_rows) > 1:
        model = model.copy()
        t = model.var(0.0, 1.0)
        cost = np.zeros(model.n_cols)
        cost[t] = -1.0
        extra_rows = [(np.append(i, t), np.append(v, -1.0), r) for i, v, r in extra_rows]
    with _quiet_fds():  # the constructor prints a banner on stdout
        h = highspy.Highs()
    for option, setting in _OPTIONS:
        h.setOptionValue(option, setting)
    h.setOptionValue("time_limit", max(0.01, float(timeout_s)))
    h.passModel(_lp(highspy, model, cost, extra_rows))
    h.run()
    status = h.getModelStatus()
    info = h.getInfo()
    if info.primal_solution_status == 2:  # a feasible point
        values = np.asarray(h.getSolution().col_value, dtype=np.float64)
        return Status.VIOLATED, values[model.inputs], "milp: sat"
    if status in (
        highspy.HighsModelStatus.kInfeasible,
        highspy.HighsModelStatus.kUnboundedOrInfeasible,
    ):
        return Status.HOLDS, None, "milp: unsat"
    return Status.UNKNOWN, None, f"milp: {h.modelStatusToString(status)}"


@contextlib.contextmanager
def _quiet_fds() -> Iterator[None]:
    """File descriptors 1 and 2 pointed at /dev/null for the duration."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def _lp(
    highspy: Any,
    model: MilpModel,
    cost: FloatArray,
    extra: list[tuple[IntArray, FloatArray, float]],
) -> Any:
    indices = [*model.row_index, *(r[0] for r in extra)]
    values = [*model.row_value, *(r[1] for r in extra)]
    lp = highspy.HighsLp()
    lp.num_col_ = model.n_cols
    lp.num_row_ = len(indices)
    lp.col_cost_ = cost
    lp.col_lower_ = np.asarray(model.col_lower)
    lp.col_upper_ = np.asarray(model.col_upper)
    lp.row_lower_ = np.asarray([*model.row_lower, *(r[2] for r in extra)])
    lp.row_upper_ = np.asarray([*model.row_upper, *(_INF for _ in extra)])
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.start_ = np.concatenate([[0], np.cumsum([len(i) for i in indices])]).astype(
        np.int32
    )
    lp.a_matrix_.index_ = (
        np.concatenate(indices).astype(np.int32) if indices else np.zeros(0, np.int32)
    )
    lp.a_matrix_.value_ = np.concatenate(values) if values else np.zeros(0)
    integrality = np.zeros(model.n_cols, dtype=np.int64)
    integrality[model.integer] = 1
    lp.integrality_ = [highspy.HighsVarType(int(v)) for v in integrality]
    return lp
