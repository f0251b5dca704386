"""A cheap counterexample search on the IR before any solver runs (``verify vnnlib``).

Projected sign-gradient ascent (PGD in L∞ geometry) from random starts inside each input box,
maximising the *satisfaction score* of a disjunct, ``min_i atom_i(y)`` (the disjunct holds
where the score is ``>= 0``). Gradients are exact subgradients of the piecewise-linear IR,
computed in numpy. Candidates are only candidates: the caller replays them through
onnxruntime before calling anything ``sat``. Negations with an LR distance or SCR's softmax are
not handled here (``verify run`` has its own attacks for those).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from robustprop.properties.spec import Disjunct, FloatArray, Negation
from robustprop.verify.engine.backends.base import group_by_box
from robustprop.verify.engine.network import Affine, Network, Relu

__all__ = ["FalsifyConfig", "falsify"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FalsifyConfig:
    """Search effort: rounds of ``starts`` random starts per box, each ``steps`` sign steps of
    ``step_fraction`` of the box width (halved twice per round), at most ``time_s`` in all."""

    starts: int = 64
    steps: int = 60
    step_fraction: float = 0.05
    time_s: float = 2.0
    seed: int = 0


def falsify(
    network: Network, negation: Negation, config: FalsifyConfig | None = None
) -> list[FloatArray]:
    """Candidate points (best first, a few) whose IR score is ``>= 0``; ``[]`` if none found.

    Disjuncts sharing a box are searched jointly (score = max over them); rounds of random
    restarts continue over the boxes until a candidate appears or ``config.time_s`` is spent.
    """
    cfg = config or FalsifyConfig()
    if negation.softmax is not None or negation.distance is not None:
        return []
    for disjunct in negation.disjuncts:
        if not disjunct.atoms:
            return [(disjunct.lower + disjunct.upper) / 2.0]
    rng = np.random.default_rng(cfg.seed)
    deadline = time.monotonic() + cfg.time_s
    groups = [_Objective.of(network, g.disjuncts) for g in group_by_box(negation)]
    rounds = 0
    while True:
        for objective in groups:
            x, score = _pgd(network, objective, cfg, rng, deadline, first=rounds == 0)
            order = [i for i in np.argsort(-score)[:4] if score[i] >= 0.0]
            if order:
                log.debug(
                    "PGD candidate after %d round(s), score %.3g", rounds + 1, score[order[0]]
                )
                return [x[i] for i in order]
            if time.monotonic() > deadline:
                return []
        rounds += 1


@dataclass(frozen=True, eq=False)
class _Objective:
    """``max_k min_i (coeff_ki . y - rhs_ki)`` over disjuncts k sharing one box."""

    lower: FloatArray
    upper: FloatArray
    coeff: FloatArray  # (atoms, m)
    rhs: FloatArray  # (atoms,)
    starts: npt.NDArray[np.intp]  # first atom of each disjunct

    @staticmethod
    def of(network: Network, disjuncts: tuple[Disjunct, ...]) -> _Objective:
        atoms = [a for d in disjuncts for a in d.atoms]
        coeff = np.zeros((len(atoms), network.m))
        for i, atom in enumerate(atoms):
            for j, c in atom.terms:
                coeff[i, j] += c
        starts = np.cumsum([0] + [len(d.atoms) for d in disjuncts[:-1]]).astype(np.intp)
        rhs = np.array([a.rhs for a in atoms], dtype=np.float64)
        return _Objective(disjuncts[0].lower, disjuncts[0].upper, coeff, rhs, starts)

    def score_and_grad_y(self, y: FloatArray) -> tuple[FloatArray, FloatArray]:
        values = y @ self.coeff.T - self.rhs  # (B, atoms)
        per_disjunct = np.minimum.reduceat(values, self.starts, axis=1)  # (B, disjuncts)
        best = np.argmax(per_disjunct, axis=1)
        rows = np.arange(y.shape[0])
        score = per_disjunct[rows, best]
        # the binding atom: the minimum inside the best disjunct
        masked = np.where(self._owner[None, :] == best[:, None], values, np.inf)
        atom = np.argmin(masked, axis=1)
        return score, self.coeff[atom]

    @property
    def _owner(self) -> npt.NDArray[np.intp]:
        owner = np.zeros(self.rhs.size, dtype=np.intp)
        owner[self.starts[1:]] = 1
        return np.cumsum(owner)


def _pgd(
    network: Network,
    objective: _Objective,
    cfg: FalsifyConfig,
    rng: np.random.Generator,
    deadline: float,
    *,
    first: bool,
) -> tuple[FloatArray, FloatArray]:
    lo, hi = objective.lower, objective.upper
    width = hi - lo
    x = lo + width * rng.random((cfg.starts, lo.size))
    if first:
        x[0] = (lo + hi) / 2.0
    best_x = x.copy()
    best = np.full(cfg.starts, -np.inf)
    step = cfg.step_fraction * width
    for k in range(cfg.steps):
        score, grad = _score_and_grad(network, objective, x)
        better = score > best
        best[better] = score[better]
        best_x[better] = x[better]
        if np.any(best >= 0.0) or time.monotonic() > deadline:
            break
        if k in (cfg.steps // 2, (3 * cfg.steps) // 4):
            step = step / 2.0
        x = np.clip(x + step * np.sign(grad), lo, hi)
    return best_x, best


def _score_and_grad(
    network: Network, objective: _Objective, x: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """The objective per row of ``x`` and its subgradient with respect to ``x``."""
    h = x
    masks: list[FloatArray | None] = []
    for layer in network.layers:
        if isinstance(layer, Affine):
            h = h @ layer.W.T + layer.b
            masks.append(None)
        elif isinstance(layer, Relu):
            masks.append((h > 0.0).astype(np.float64))
            h = np.maximum(h, 0.0)
        else:
            masks.append(((h > layer.lo) & (h < layer.hi)).astype(np.float64))
            h = np.clip(h, layer.lo, layer.hi)
    score, g = objective.score_and_grad_y(h)
    for layer, mask in zip(reversed(network.layers), reversed(masks), strict=True):
        if isinstance(layer, Affine):
            g = g @ layer.W
        else:
            assert mask is not None
            g = g * mask
    return score, g
