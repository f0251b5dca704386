"""A cheap counterexample search on the IR before any solver runs (``verify vnnlib``).

The one ascent loop of the project (:func:`robustprop.properties.ascent.ascend`) on the IR as
a float64 torch module (:func:`~robustprop.verify.engine.torch_net.to_torch`): from random
starts inside each input box, sign steps of a fraction of the box width (halved twice per run)
maximise the *satisfaction score* of the box's disjuncts, ``max_k min_i atom_ki(y)`` (a
disjunct holds where its score is ``>= 0``). Gradients are exact subgradients of the
piecewise-linear network (one binding atom, one best disjunct). Candidates are only candidates:
the caller replays them through onnxruntime before calling anything ``sat``. Negations with an
LR distance or SCR's softmax are not handled here (``verify run`` attacks those with the
properties' own objectives, :mod:`robustprop.verify.engine.attack`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from robustprop.properties.ascent import BatchObjective, Best, Model, ascend
from robustprop.properties.spec import Disjunct, FloatArray, Negation
from robustprop.verify.engine.backends.base import group_by_box
from robustprop.verify.engine.network import Network
from robustprop.verify.engine.torch_net import to_torch

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
    The same config gives the same candidates (a ``torch.Generator`` seeded with
    ``config.seed``), unless the time limit cuts a run short.
    """
    cfg = config or FalsifyConfig()
    if negation.softmax is not None or negation.distance is not None:
        return []
    for disjunct in negation.disjuncts:
        if not disjunct.atoms:
            return [(disjunct.lower + disjunct.upper) / 2.0]
    model = to_torch(network, torch.float64)
    generator = torch.Generator().manual_seed(cfg.seed)
    boxes = [_BoxScore.of(network.m, g.disjuncts) for g in group_by_box(negation)]
    with _one_thread():
        deadline = time.monotonic() + cfg.time_s
        rounds = 0
        while True:
            for box in boxes:
                x, score = _search(model, box, cfg, generator, deadline, first=rounds == 0)
                order = [i for i in np.argsort(-score)[:4] if score[i] >= 0.0]
                if order:
                    log.debug(
                        "PGD candidate after %d round(s), score %.3g", rounds + 1, score[order[0]]
                    )
                    return [x[i] for i in order]
                if time.monotonic() > deadline:
                    return []
            rounds += 1


@contextmanager
def _one_thread() -> Iterator[None]:
    """Run torch on one thread: the search is many tiny ops, and a second thread's hand-off
    waits for a scheduler slice whenever the other cores are busy (solvers, other jobs)."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


@dataclass(frozen=True, eq=False)
class _BoxScore:
    """``max_k min_i (coeff_ki · y − rhs_ki)`` over the disjuncts ``k`` sharing one box.

    ``atoms`` indexes the flat atom list per disjunct, padded with the index one past the last
    atom (a value of ``+inf``, never the minimum); ``None`` for a single disjunct.
    """

    lower: FloatArray
    upper: FloatArray
    coeff: Tensor  # (atoms, m)
    rhs: Tensor  # (atoms,)
    atoms: Tensor | None  # (disjuncts, most atoms), int64

    @staticmethod
    def of(m: int, disjuncts: tuple[Disjunct, ...]) -> _BoxScore:
        flat = [a for d in disjuncts for a in d.atoms]
        coeff = np.zeros((len(flat), m))
        for i, atom in enumerate(flat):
            for j, c in atom.terms:
                coeff[i, j] += c
        widest = max(len(d.atoms) for d in disjuncts)
        index = np.full((len(disjuncts), widest), len(flat), dtype=np.int64)
        first = 0
        for k, d in enumerate(disjuncts):
            index[k, : len(d.atoms)] = np.arange(first, first + len(d.atoms))
            first += len(d.atoms)
        return _BoxScore(
            disjuncts[0].lower,
            disjuncts[0].upper,
            torch.from_numpy(coeff),
            torch.tensor([a.rhs for a in flat], dtype=torch.float64),
            torch.from_numpy(index) if len(disjuncts) > 1 else None,
        )

    def __call__(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        values = y @ self.coeff.T - self.rhs  # (rows, atoms)
        if self.atoms is None:
            score = values.min(dim=1).values
            return score, score
        padded = torch.cat([values, values.new_full((values.shape[0], 1), math.inf)], dim=1)
        per_disjunct = padded[:, self.atoms].min(dim=2).values  # (rows, disjuncts)
        score = per_disjunct.max(dim=1).values
        return score, score


def _search(
    model: Model,
    box: _BoxScore,
    cfg: FalsifyConfig,
    generator: torch.Generator,
    deadline: float,
    *,
    first: bool,
) -> tuple[FloatArray, FloatArray]:
    """One run of ``cfg.starts`` starts in ``box`` (the first at the box center on ``first``):
    each start's best point and score; ends early once a score is ``>= 0`` or at ``deadline``."""
    lo, hi = torch.from_numpy(box.lower), torch.from_numpy(box.upper)
    width = hi - lo
    x = lo + width * torch.rand((cfg.starts, lo.numel()), generator=generator, dtype=torch.float64)
    if first:
        x[0] = (lo + hi) / 2.0
    best = Best(x)

    def found_or_late(points: Tensor) -> Tensor:
        done = bool((best.value >= 0.0).any()) or time.monotonic() > deadline
        return torch.full(points.shape, done, dtype=torch.bool)

    def bind(_: Tensor) -> BatchObjective:
        return box

    ascend(
        model,
        bind,
        best,
        x,
        lo.expand_as(x),
        hi.expand_as(x),
        cfg.step_fraction * width,
        cfg.steps,
        stop=found_or_late,
        halve_at=(cfg.steps // 2, (3 * cfg.steps) // 4),
    )
    return best.x.numpy(), best.value.numpy()
