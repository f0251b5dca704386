"""Backend-neutral description of the *negation* of a property on one region.

This is the "query" reading of a property: the set of inputs ``x`` (and, for LR, an
auxiliary distance ``d``) on which the property fails. Solvers in ``verify/backends``
decide whether that set is empty ("holds") or not ("violated"). VNN-LIB files are read
into the same shape, so one backend serves both.

Shape (a disjunction of conjunctions)::

    exists x, d:  OR_k ( lower_k <= x <= upper_k
                         AND (d-term, if ``distance`` is set)
                         AND AND_i  atom_ki )

where each atom is linear in the network outputs ``y = f(x)`` and ``d``::

    sum_j coeff_j * y_j + dist_coeff * d  >=  rhs

``distance`` (LR only) adds ``|x_i - center_i| <= d <= eps`` for every feature ``i``; with it,
``d`` can be taken as ``||x - center||_inf`` in any witness.

SCR is not piecewise linear; its negation carries a :class:`SoftmaxBelow` instead of atoms,
and ``verify`` decides it with a refinement loop over linear queries.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Atom:
    """``sum_j coeff_j * y_j + dist_coeff * d >= rhs`` (non-strict; margins are in ``rhs``)."""

    terms: tuple[tuple[int, float], ...]
    rhs: float
    dist_coeff: float = 0.0

    def value(self, y: FloatArray, d: float = 0.0) -> float:
        """Left side minus right side; the atom holds iff this is ``>= 0``."""
        return float(sum(c * y[j] for j, c in self.terms) + self.dist_coeff * d - self.rhs)


@dataclass(frozen=True)
class Disjunct:
    """One alternative of the negation: an input box and a conjunction of output atoms."""

    lower: FloatArray
    upper: FloatArray
    atoms: tuple[Atom, ...]


@dataclass(frozen=True)
class Distance:
    """LR's auxiliary variable: ``|x_i - center_i| <= d <= eps`` for every ``i``."""

    center: FloatArray
    eps: float


@dataclass(frozen=True)
class SoftmaxBelow:
    """SCR's violation: ``softmax(y)_label < eta``.

    Equivalently, with ``g_j = y_j - y_label``: ``sum_{j != label} exp(g_j) > 1/eta - 1``.
    """

    label: int
    eta: float

    @property
    def threshold(self) -> float:
        """``T = 1/η − 1``: the property fails iff ``Σ_{j≠c} exp(y_j − y_c) > T``."""
        return 1.0 / self.eta - 1.0

    def threshold_with_margin(self, tau: float) -> float:
        """``1/(η − τ) − 1``: the sum beyond which ``p_c < η − τ`` (a violation by more than τ)."""
        if tau >= self.eta:
            return float("inf")
        return 1.0 / (self.eta - tau) - 1.0


@dataclass(frozen=True)
class Negation:
    """Inputs on which a property fails, or (from VNN-LIB) an unsafe set.

    Exactly one of ``disjuncts`` (non-empty) or ``softmax`` describes the output condition.
    For ``softmax`` the region is the box of ``disjuncts[0]`` (which then has no atoms).
    ``tau`` is the strictness margin already folded into the atoms' ``rhs`` (reported).
    """

    disjuncts: tuple[Disjunct, ...]
    distance: Distance | None = None
    softmax: SoftmaxBelow | None = None
    tau: float = 0.0
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.disjuncts:
            raise ValueError("a negation needs at least one disjunct (an input box)")
        if self.softmax is not None and any(d.atoms for d in self.disjuncts):
            raise ValueError("a softmax negation carries no linear atoms")

    @property
    def n_inputs(self) -> int:
        return int(self.disjuncts[0].lower.size)

    def is_satisfied_by(self, x: FloatArray, y: FloatArray) -> bool:
        """Whether the concrete pair ``(x, y = f(x))`` lies in the negation (exactly, no slack).

        Used to re-check solver witnesses after replay through onnxruntime.
        """
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        d = 0.0
        if self.distance is not None:
            d = float(np.max(np.abs(x - self.distance.center))) if x.size else 0.0
            if d > self.distance.eps:
                return False
        for disjunct in self.disjuncts:
            if np.any(x < disjunct.lower) or np.any(x > disjunct.upper):
                continue
            if self.softmax is not None:
                g = y - y[self.softmax.label]
                g = np.delete(g, self.softmax.label)
                # p_c < eta - tau  <=>  sum exp(g) > 1/(eta - tau) - 1, computed stably
                return bool(_logsumexp(g) > np.log(self.softmax.threshold_with_margin(self.tau)))
            if all(atom.value(y, d) >= 0.0 for atom in disjunct.atoms):
                return True
        return False


def _logsumexp(v: FloatArray) -> float:
    if v.size == 0:
        return float("-inf")
    m = float(np.max(v))
    return m + float(np.log(np.sum(np.exp(v - m))))
