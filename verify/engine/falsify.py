"""A cheap counterexample search on the IR before and beside any solver (``verify vnnlib``).

The one ascent loop of the project (:func:`robustprop.properties.ascent.ascend`) on the IR as
a float64 torch module (:func:`~robustprop.verify.engine.torch_net.to_torch`) maximises the
*satisfaction score* of a box's disjuncts, ``max_k min_i atom_ki(y)`` (a disjunct holds where
its score is ``>= 0``). Gradients are exact subgradients of the piecewise-linear network (one
binding atom, one best disjunct).

The search runs in **rounds**. Each round, per box:

1. ``samples`` points are drawn over the whole box, each coordinate on the lower bound, on
   the upper bound (probability ``edge_probability / 2`` each) or uniform in between: sign
   steps drive coordinates to the bounds anyway, and ACAS Xu's counterexamples sit in thin
   ridges along faces of the box, where the interior's gradient is zero;
2. all of them are scored in one batch; the best ``starts`` (the box center among them in the
   first round) start PGD — together with restarts around the *elite*, the best points of the
   earlier rounds, perturbed by a few percent of the box width;
3. ``steps`` sign steps of ``step_fraction`` of the box width, halved twice, every iterate
   scored; the best iterates join the elite.

Rounds continue until a point scores ``>= 0``, ``rounds`` rounds were run, or ``time_s`` is
spent. :func:`falsify_boxes` runs the same rounds on many sub-boxes at once (every row of one
tensor carries its own box): the branch-and-bound stage calls it on the sub-boxes it splits.

Candidates are only candidates: the caller replays them through onnxruntime before calling
anything ``sat``. Negations with an LR distance or SCR's softmax are not handled here
(``verify run`` attacks those with the properties' own objectives,
:mod:`robustprop.verify.engine.attack`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from robustprop.properties.ascent import BatchObjective, Best, Model, ascend
from robustprop.properties.errors import InputError
from robustprop.properties.spec import Disjunct, FloatArray, Negation
from robustprop.verify.engine.backends.base import group_by_box
from robustprop.verify.engine.network import Network
from robustprop.verify.engine.torch_net import to_torch, torch_threads

__all__ = ["MAX_SAMPLE_VALUES", "FalsifyConfig", "falsify", "falsify_boxes"]

log = logging.getLogger(__name__)

#: Most coordinates held at once, of the sampled points (boxes x samples x inputs) and of the
#: PGD rows (boxes x starts x inputs): 160 MB of float64; more boxes get fewer of each.
MAX_SAMPLE_VALUES = 20_000_000


@dataclass(frozen=True)
class FalsifyConfig:
    """Search effort (see the module docstring): per round and box, ``samples`` points scored,
    ``starts`` PGD starts of ``steps`` sign steps of ``step_fraction`` of the box width (halved
    twice), of which ``elite`` restart around the best points found so far; at most ``rounds``
    rounds (``None``: no limit) and ``time_s`` seconds in all."""

    starts: int = 128
    steps: int = 60
    step_fraction: float = 0.02
    time_s: float = 2.0
    seed: int = 0
    samples: int = 4096
    edge_probability: float = 0.5
    elite: int = 16
    rounds: int | None = None

    def __post_init__(self) -> None:
        if self.starts < 1 or self.steps < 0 or self.samples < 1 or self.elite < 0:
            raise InputError(
                f"FalsifyConfig: starts and samples must be >= 1, steps and elite >= 0, got "
                f"starts={self.starts}, samples={self.samples}, steps={self.steps}, "
                f"elite={self.elite}"
            )
        if not 0.0 <= self.edge_probability <= 1.0:
            raise InputError(
                f"FalsifyConfig: edge_probability must lie in [0, 1], got {self.edge_probability}"
            )
        if self.rounds is not None and self.rounds < 1:
            raise InputError(f"FalsifyConfig: rounds must be >= 1 or None, got {self.rounds}")


def falsify(
    network: Network, negation: Negation, config: FalsifyConfig | None = None
) -> list[FloatArray]:
    """Candidate points (best first, a few) whose IR score is ``>= 0``; ``[]`` if none found.

    Disjuncts sharing a box are searched jointly (score = max over them); rounds of restarts
    (see the module docstring) continue over the boxes until a candidate appears or the
    config's rounds or time are spent. The same config gives the same candidates (a
    ``torch.Generator`` seeded with ``config.seed``), unless the time limit cuts a run short.
    """
    cfg = config or FalsifyConfig()
    if negation.softmax is not None or negation.distance is not None:
        return []
    for disjunct in negation.disjuncts:
        if not disjunct.atoms:
            return [(disjunct.lower + disjunct.upper) / 2.0]
    model = to_torch(network, torch.float64)
    generator = torch.Generator().manual_seed(cfg.seed)
    searches = [
        _Search.of(model, _BoxScore.of(network.m, g.disjuncts), g.disjuncts[0], cfg)
        for g in group_by_box(negation)
    ]
    with torch_threads(1):
        deadline = time.monotonic() + cfg.time_s
        rounds = 0
        while True:
            for search in searches:
                found = search.round(generator, deadline, first=rounds == 0)
                if found[0]:
                    log.debug("falsifier: candidate after %d round(s)", rounds + 1)
                    return found[0]
                if time.monotonic() > deadline:
                    return []
            rounds += 1
            if cfg.rounds is not None and rounds >= cfg.rounds:
                return []


def falsify_boxes(
    network: Network,
    negation: Negation,
    lowers: FloatArray,
    uppers: FloatArray,
    config: FalsifyConfig | None = None,
) -> list[FloatArray | None]:
    """Per sub-box ``[lowers[b], uppers[b]]``, a candidate point scoring ``>= 0`` or ``None``.

    Each sub-box is searched against the disjuncts of ``negation`` whose input box contains
    it (a sub-box inside none of them is an :class:`InputError` naming it); all sub-boxes with
    the same disjuncts run as rows of one batch, every row kept inside its own sub-box. Sub-
    boxes leave the batch when they have a candidate; the rest continue for the config's
    rounds and time. Negations with a distance or softmax term give ``None`` everywhere.

    Shape:
        lowers, uppers: ``(B, n)``; returns ``B`` entries of shape ``(n,)`` or ``None``.
    """
    cfg = config or FalsifyConfig()
    lowers = np.atleast_2d(np.asarray(lowers, dtype=np.float64))
    uppers = np.atleast_2d(np.asarray(uppers, dtype=np.float64))
    if lowers.shape != uppers.shape or lowers.shape[1:] != (network.n,):
        raise InputError(
            f"falsify_boxes: lowers {lowers.shape} and uppers {uppers.shape} must both be "
            f"(boxes, {network.n})"
        )
    out: list[FloatArray | None] = [None] * lowers.shape[0]
    if negation.softmax is not None or negation.distance is not None or not len(out):
        return out
    members: dict[tuple[int, ...], list[int]] = {}
    for b in range(lowers.shape[0]):
        inside = tuple(
            k
            for k, d in enumerate(negation.disjuncts)
            if np.all(d.lower <= lowers[b]) and np.all(uppers[b] <= d.upper)
        )
        if not inside or np.any(lowers[b] > uppers[b]):
            raise InputError(
                f"falsify_boxes: sub-box {b} is empty or inside no input box of the negation"
            )
        members.setdefault(inside, []).append(b)
    model = to_torch(network, torch.float64)
    generator = torch.Generator().manual_seed(cfg.seed)
    with torch_threads(1):
        deadline = time.monotonic() + cfg.time_s
        for ks, boxes in members.items():
            disjuncts = tuple(negation.disjuncts[k] for k in ks)
            if any(not d.atoms for d in disjuncts):
                for b in boxes:
                    out[b] = (lowers[b] + uppers[b]) / 2.0
                continue
            score = _BoxScore.of(network.m, disjuncts)
            search = _Search(model, score, lowers[boxes], uppers[boxes], cfg)
            rounds = 0
            while search.open.any() and time.monotonic() <= deadline:
                found = search.round(generator, deadline, first=rounds == 0)
                for row, points in enumerate(found):
                    if points:
                        out[boxes[row]] = points[0]
                rounds += 1
                if cfg.rounds is not None and rounds >= cfg.rounds:
                    break
    return out


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
    def of(m: int, disjuncts: Sequence[Disjunct]) -> _BoxScore:
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


class _Search:
    """The rounds of restarts on ``B`` boxes of one score: the elite of each box, and which
    boxes are still open (no candidate yet)."""

    def __init__(
        self,
        model: Model,
        score: _BoxScore,
        lowers: FloatArray,
        uppers: FloatArray,
        cfg: FalsifyConfig,
    ) -> None:
        self.model, self.score, self.cfg = model, score, cfg
        self.lo = torch.from_numpy(np.ascontiguousarray(lowers))
        self.hi = torch.from_numpy(np.ascontiguousarray(uppers))
        boxes, n = self.lo.shape
        cap = max(1, MAX_SAMPLE_VALUES // max(1, boxes * n))  # rows of one batch
        self.starts = min(cfg.starts, cap)
        self.samples = max(self.starts, min(cfg.samples, cap))
        self.elite_x = self.lo.new_empty((boxes, 0, n))
        self.elite_v = self.lo.new_empty((boxes, 0))
        self.open = torch.ones(boxes, dtype=torch.bool)

    @staticmethod
    def of(model: Model, score: _BoxScore, d: Disjunct, cfg: FalsifyConfig) -> _Search:
        return _Search(model, score, d.lower[None, :], d.upper[None, :], cfg)

    def round(
        self, generator: torch.Generator, deadline: float, *, first: bool
    ) -> list[list[FloatArray]]:
        """One round on the open boxes: per box (all ``B``), its candidates, best first (at
        most 4; empty for a box without one or closed before)."""
        cfg = self.cfg
        rows = torch.nonzero(self.open).flatten()
        found: list[list[FloatArray]] = [[] for _ in range(self.open.shape[0])]
        if rows.numel() == 0:
            return found
        lo, hi = self.lo[rows], self.hi[rows]
        starts = self._starts(rows, lo, hi, generator, first=first)  # (b, k, n)
        b, k, n = starts.shape
        x = starts.reshape(b * k, n)
        lo_rows = lo.repeat_interleave(k, dim=0)
        hi_rows = hi.repeat_interleave(k, dim=0)
        best = Best(x)

        def found_or_late(points: Tensor) -> Tensor:
            if time.monotonic() > deadline:
                return torch.ones(points.shape, dtype=torch.bool)
            scored = best.value.reshape(b, k).max(dim=1).values >= 0.0
            return scored.repeat_interleave(k)[points]

        def bind(_: Tensor) -> BatchObjective:
            return self.score

        ascend(
            self.model,
            bind,
            best,
            x,
            lo_rows,
            hi_rows,
            cfg.step_fraction * (hi_rows - lo_rows),
            cfg.steps,
            stop=found_or_late,
            halve_at=(cfg.steps // 2, (3 * cfg.steps) // 4),
        )
        values = best.value.reshape(b, k)
        points = best.x.reshape(b, k, n)
        self._keep_elite(rows, points, values)
        for i, row in enumerate(rows.tolist()):
            order = torch.argsort(values[i], descending=True)[:4]
            hits = [points[i, j].numpy().copy() for j in order.tolist() if values[i, j] >= 0.0]
            if hits:
                found[row] = hits
                self.open[row] = False
        return found

    def _starts(
        self, rows: Tensor, lo: Tensor, hi: Tensor, generator: torch.Generator, *, first: bool
    ) -> Tensor:
        """The round's PGD starts per open box: the best-scoring samples (and the center in
        the first round), then restarts around the elite."""
        cfg = self.cfg
        b, n = lo.shape
        width = hi - lo
        unit = torch.rand((b, self.samples, n), generator=generator, dtype=torch.float64)
        if cfg.edge_probability > 0.0:
            pick = torch.rand((b, self.samples, n), generator=generator, dtype=torch.float64)
            half = cfg.edge_probability / 2.0
            unit = torch.where(pick < half, 0.0, torch.where(pick < 2 * half, 1.0, unit))
        if first:
            unit[:, 0] = 0.5
        sampled = lo[:, None, :] + width[:, None, :] * unit
        with torch.no_grad():
            flat = sampled.reshape(b * self.samples, n)
            value = self.score(flat, self.model(flat))[1].reshape(b, self.samples)
        elite = self.elite_x[rows]
        restarts = self.starts // 2 if elite.shape[1] else 0
        fresh = max(1, min(self.starts - restarts, self.samples))
        order = torch.argsort(value.nan_to_num(nan=-math.inf), dim=1, descending=True)[:, :fresh]
        if first:  # the center (sample 0) starts PGD whatever its score
            order[:, -1] = torch.where((order == 0).any(dim=1), order[:, -1], 0)
        chosen = sampled.gather(1, order[:, :, None].expand(b, fresh, n))
        if not restarts:
            return chosen
        pick = torch.randint(0, elite.shape[1], (b, restarts), generator=generator)
        around = elite.gather(1, pick[:, :, None].expand(b, restarts, n))
        noise = torch.randn(around.shape, generator=generator, dtype=torch.float64)
        around = (
            (around + 0.02 * width[:, None, :] * noise).maximum(lo[:, None]).minimum(hi[:, None])
        )
        return torch.cat([chosen, around], dim=1)

    def _keep_elite(self, rows: Tensor, points: Tensor, values: Tensor) -> None:
        """The best ``cfg.elite`` points per box over this round and the earlier ones."""
        keep = self.cfg.elite
        if keep == 0:
            return
        xs = torch.cat([self.elite_x[rows], points], dim=1) if self.elite_x.shape[1] else points
        vs = torch.cat([self.elite_v[rows], values], dim=1) if self.elite_v.shape[1] else values
        order = torch.argsort(vs.nan_to_num(nan=-math.inf), dim=1, descending=True)[:, :keep]
        new_x = xs.gather(1, order[:, :, None].expand(*order.shape, xs.shape[2]))
        new_v = vs.gather(1, order)
        if self.elite_x.shape[1] != new_x.shape[1]:
            boxes = self.open.shape[0]
            self.elite_x = self.lo.new_full((boxes, new_x.shape[1], xs.shape[2]), math.nan)
            self.elite_v = self.lo.new_full((boxes, new_x.shape[1]), -math.inf)
            self.elite_x[:, :] = self.lo[:, None, :]
        self.elite_x[rows] = new_x
        self.elite_v[rows] = new_v
