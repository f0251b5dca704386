"""One exact (point, property) query, as a worker of :mod:`robustprop.verify.run.pool` runs it.

Linear negations (SR, LR, CR) go to :func:`robustprop.verify.engine.decide.decide`, which trusts
a solver's point only after onnxruntime replay. SCR negations go through the chord refinement of
:mod:`robustprop.verify.engine.scr_encoding`, whose linear sub-queries use the same backends and
the same replay. A query may carry a :class:`robustprop.verify.engine.bounds.Seed` (CROWN bounds
of every layer over its box, from the bound stage): the backends then encode the network with
those bounds (:func:`robustprop.verify.engine.bounds.seeded`), and SCR starts from the bound
stage's margin bounds.

Before the exact backend, a linear negation (VNN-LIB, CR, SR) gets branch and bound
(:mod:`robustprop.verify.engine.bab`) for ``bab_share`` of the query's time (by default
:data:`BAB_SHARE` when it splits inputs, :data:`RELU_BAB_SHARE` when it splits ReLUs): in the
worker, so that the pool's ``jobs`` run it in parallel and the pool's per-query limit bounds
both. What it leaves open goes to the exact backend with the time that is left: only the
disjuncts it did not prove (:func:`robustprop.verify.engine.bab.open_part`). An SCR negation
on such a network first gets ReLU splitting on chord bounds of the softmax
(:mod:`robustprop.verify.engine.bab_scr`) for the same share; what it leaves open goes to the
chord refinement, whose linear sub-queries get branch and bound too, each for
:data:`SCR_BAB_SHARE` of its time. A backend that would get less than :data:`BACKEND_MIN_S`
after the search gets nothing: the search keeps that time too (:func:`bab_time`), and a query
it leaves open ends ``unknown`` there.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from robustprop.properties.spec import FloatArray, Negation
from robustprop.verify.engine.bab import (
    BabOutcome,
    BabState,
    bab_decide,
    open_part,
    splits_inputs,
    supported,
)
from robustprop.verify.engine.bab_scr import softmax_split
from robustprop.verify.engine.backends.registry import choose_backend, get_backend
from robustprop.verify.engine.bounds import Seed, seeded
from robustprop.verify.engine.crown import Crown
from robustprop.verify.engine.decide import decide
from robustprop.verify.engine.lr_local import analyse
from robustprop.verify.engine.network import Network
from robustprop.verify.engine.replay import Replayer
from robustprop.verify.engine.scr_encoding import ScrSettings, decide_scr
from robustprop.verify.engine.screen import screen
from robustprop.verify.engine.torch_net import torch_threads
from robustprop.verify.engine.verdict import Stage, Status, Verdict

__all__ = [
    "BAB_SHARE",
    "BACKEND_MIN_S",
    "RELU_BAB_SHARE",
    "SCR_BAB_SHARE",
    "PointDecider",
    "Query",
    "bab_share_for",
    "bab_time",
    "confirm",
]

#: The share of a query's time that branch and bound gets before the exact backend.
BAB_SHARE = 0.7
#: The share when branch and bound splits ReLUs (wide inputs). It searches one disjunct at a
#: time and hands the exact backend only those it did not prove (and gives a disjunct up
#: early when its search stalls). On the paper's Fashion-MNIST networks it is far ahead of the
#: MILP: at 10 s a point, SR at ε = 0.1 (30 points), the MILP decided 1 of the 12 queries that
#: branch and bound left open in 5 s; with 8.5 s, branch and bound leaves 6 instead of 8 open
#: on constraint-sr and 3 instead of 4 on adversarial. On MNIST-FC 256x4/prop_3 (unsat) the
#: two cost about the same per disjunct (≈ 11 s); the VNN-COMP set at 30 s is unchanged by
#: 0.5 → 0.85 (55 of 56, 0 wrong). 0.85 → 0.95 (the backend still gets the rest of a search
#: that stalls): Fashion-MNIST constraint-sr, SR at ε = 0.1, 100 points at 10 s, run in turn,
#: 11 instead of 13 unknown (the backend decided one point either way); the VNN-COMP set at
#: 30 s stays 56 of 56, 0 wrong.
RELU_BAB_SHARE = 0.95
#: The share of each linear sub-query of SCR's refinement that branch and bound gets before
#: the backend (the chord queries are linear negations like CR's).
SCR_BAB_SHARE = 0.5
#: The least time worth giving the exact backend after branch and bound (:func:`bab_time`).
#: With less it decides nothing and overruns: Fashion-MNIST constraint-sr, SR at ε = 0.1,
#: 10 s a point, given 0.45 s after ReLU splitting the portfolio took 1.1–1.4 s on each of
#: the 10 points left open and decided none; adversarial SCR's chord refinement, given as
#: little, ran into the pool's limit (its worker killed) on all 3.
BACKEND_MIN_S = 1.0

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class Query:
    """The negation of a property around the point at position ``index`` of a run.

    ``seed``: CROWN bounds over the negation's query box; ``g_bounds``: SCR margin bounds.
    """

    index: int
    negation: Negation
    seed: Seed | None = None
    g_bounds: tuple[FloatArray, FloatArray] | None = None


def bab_share_for(network: Network, share: float | None = None) -> float:
    """The share of a query's time for branch and bound: ``share`` as given (0 for none),
    else :data:`BAB_SHARE` when it splits ``network``'s inputs, :data:`RELU_BAB_SHARE` when
    it splits its ReLUs."""
    if share is not None:
        return share
    return BAB_SHARE if splits_inputs(network) else RELU_BAB_SHARE


def bab_time(share: float, timeout_s: float) -> float:
    """The seconds of a query's ``timeout_s`` for branch and bound: ``share`` of them, or all
    of them when the backend's rest would be less than :data:`BACKEND_MIN_S`."""
    rest = (1.0 - share) * timeout_s
    return timeout_s if share > 0.0 and rest < BACKEND_MIN_S else share * timeout_s


def confirm(
    replayer: Replayer,
    x: FloatArray,
    negation: Negation,
    stage: Stage = Stage.ATTACK,
    backend: str = "replay",
) -> Verdict | None:
    """A ``violated`` verdict when ``x`` replays inside ``negation`` with onnxruntime, else
    None (the callers fill in their own stage, backend and time)."""
    replay = replayer.replay(x, negation)
    if not replay.confirmed:
        log.info("candidate failed replay: %s", replay.note)
        return None
    return Verdict(
        Status.VIOLATED, stage, backend, 0.0, witness=replay.x, witness_output=replay.y64
    )


class PointDecider:
    """What a worker holds for many queries on one network."""

    def __init__(
        self,
        network: Network,
        replayer: Replayer,
        backend: str,
        *,
        isolate: bool = False,
        bab_share: float | None = None,
        resume: Mapping[int, BabState] | None = None,
    ) -> None:
        self.isolate = isolate  # each solver call in a child process killed on timeout
        self.network = network
        self.replayer = replayer
        self.backend = choose_backend(backend, network)
        self.bab_share = bab_share_for(network, bab_share)
        self._resume = dict(resume or {})  # query index → where an earlier search stopped
        self._crown: Crown | None = None

    def decide(self, query: Query, timeout_s: float) -> Verdict:
        """The exact verdict for one query within about ``timeout_s`` seconds."""
        start = began = time.monotonic()
        share = self.bab_share
        negation = query.negation
        searched: BabOutcome | None = None  # a search that left the query open
        if share > 0.0 and supported(negation):
            found = self._branch_and_bound(
                negation, start + bab_time(share, timeout_s), self._resume.pop(query.index, None)
            )
            if isinstance(found, Verdict):
                return found
            searched = found
            if found.state is not None:
                negation = open_part(negation, found.state)  # what the search did not prove
            timeout_s = max(0.0, timeout_s - (time.monotonic() - start))
            start = time.monotonic()
        network = seeded(self.network, query.seed)
        if negation.softmax is not None:
            if share > 0.0 and not splits_inputs(self.network):
                split = self._softmax_split(negation, start + bab_time(share, timeout_s))
                if isinstance(split, Verdict):
                    return split
                timeout_s = max(0.0, timeout_s - (time.monotonic() - start))
                start = time.monotonic()
                if timeout_s < BACKEND_MIN_S:
                    return _no_time_left(split, start - began)
            return self._decide_scr(network, query, start, start + timeout_s)
        if negation.distance is not None:
            local = self._local_lr(network, negation, start)
            if isinstance(local, Verdict):
                return local
            negation = local
        if searched is not None and timeout_s < BACKEND_MIN_S:
            return _no_time_left(searched, time.monotonic() - began)
        decision = decide(
            network,
            negation,
            self.replayer,
            backend=self.backend,
            timeout_s=timeout_s,
            isolate=self.isolate,  # False in a pool worker: the pool isolates the worker
        )
        elapsed = time.monotonic() - start
        n_queries = len(decision.queries)
        if decision.status is Status.HOLDS:
            if not n_queries:  # the sound bounds refuted every disjunct: no solver call
                return Verdict(
                    Status.HOLDS, Stage.BOUNDS, self.backend.value, elapsed, decision.reason
                )
            return Verdict(
                Status.HOLDS, Stage.SOLVER, self.backend.value, elapsed, queries=n_queries
            )
        if decision.status is Status.VIOLATED and decision.replay is not None:
            return Verdict(
                Status.VIOLATED,
                Stage.SOLVER,
                self.backend.value,
                elapsed,
                reason=decision.reason if not n_queries else "",
                witness=decision.replay.x,
                witness_output=decision.replay.y64,
                queries=n_queries,
            )
        return Verdict(
            Status.UNKNOWN,
            Stage.NONE,
            self.backend.value,
            elapsed,
            reason=decision.reason,
            queries=n_queries,
        )

    def _branch_and_bound(
        self, negation: Negation, deadline: float, resume: BabState | None = None
    ) -> Verdict | BabOutcome:
        """Branch and bound until ``deadline`` (from ``resume``, where an earlier search on
        this negation stopped): a verdict, or the search's outcome when it left the query open
        (its ``state``: where it stopped, None if it cannot say)."""
        start = time.monotonic()
        with torch_threads(1):  # one core per worker: the pool runs `jobs` of them
            outcome = bab_decide(
                self._bounds(), negation, self._check(negation), deadline, resume=resume
            )
        verdict = _bab_verdict(outcome, time.monotonic() - start)
        if verdict is None:
            log.info("branch and bound left the query open (%s)", outcome.reason)
            return outcome
        return verdict

    def _softmax_split(self, negation: Negation, deadline: float) -> Verdict | BabOutcome:
        """SCR by ReLU splitting on chord bounds (:mod:`robustprop.verify.engine.bab_scr`)
        until ``deadline``: a verdict, or the search's outcome when it left the query open."""
        start = time.monotonic()
        with torch_threads(1):
            outcome = softmax_split(self._bounds(), negation, self._check(negation), deadline)
        verdict = _bab_verdict(outcome, time.monotonic() - start)
        if verdict is None:
            log.info("SCR branch and bound left the query open (%s)", outcome.reason)
            return outcome
        return verdict

    def _bounds(self) -> Crown:
        if self._crown is None:
            self._crown = Crown(self.network)
        return self._crown

    def _check(self, negation: Negation) -> Callable[[FloatArray], Verdict | None]:
        def check(x: FloatArray) -> Verdict | None:
            return confirm(self.replayer, x, negation, Stage.BAB, "bab")

        return check

    def _local_lr(self, network: Network, negation: Negation, start: float) -> Negation | Verdict:
        """LR's small ball decided by linear algebra (:mod:`robustprop.verify.engine.lr_local`);
        the rest as a
        negation for the solver, or the verdict if the small ball already has a violation."""
        center = negation.distance.center if negation.distance is not None else None
        assert center is not None
        local = analyse(network, negation, network.evaluate(center)[0])
        if local is None or local.outer is not None:
            return negation if local is None or local.outer is None else local.outer
        if local.witness is None:
            return negation  # no stable radius: the solver gets the whole region
        replay = self.replayer.replay(local.witness, negation)
        elapsed = time.monotonic() - start
        if replay.confirmed:
            return Verdict(
                Status.VIOLATED,
                Stage.SOLVER,
                "linear",
                elapsed,
                reason=f"violated within the linear ball of radius {local.d0:.3g}",
                witness=replay.x,
                witness_output=replay.y64,
            )
        return Verdict(
            Status.UNKNOWN,
            Stage.NONE,
            "linear",
            elapsed,
            reason=f"a violation within radius {local.d0:.3g} of the center did not replay",
        )

    def _decide_scr(self, network: Network, query: Query, start: float, deadline: float) -> Verdict:
        negation = query.negation
        box = negation.disjuncts[0]
        y_lower, y_upper = network.interval_bounds(box.lower, box.upper)[-1]

        def solve(q: Negation, timeout_s: float) -> tuple[Status, FloatArray | None, str]:
            screened = screen(network, q, self.backend)  # as decide() does for linear queries
            if screened.candidates:
                return Status.VIOLATED, screened.candidates[0], "a point the bounds imply"
            if screened.negation is None:
                return Status.HOLDS, None, "the sound output bounds refute the query"
            if screened.out_of_range:
                return Status.UNKNOWN, None, screened.out_of_range
            rest = screened.negation
            if self.bab_share > 0.0 and supported(rest):
                start = time.monotonic()
                found = self._branch_and_bound(rest, start + SCR_BAB_SHARE * timeout_s)
                if isinstance(found, Verdict):
                    return found.status, found.witness, found.reason
                if found.state is not None:
                    rest = open_part(rest, found.state)
                timeout_s = max(0.0, timeout_s - (time.monotonic() - start))
            out = get_backend(screened.backend).solve(network, rest, timeout_s)
            return out.status, out.x, out.reason

        def confirm(x: FloatArray, q: Negation) -> FloatArray | None:
            replay = self.replayer.replay(x, q)
            return replay.y64 if replay.confirmed else None

        def evaluate(x: FloatArray) -> FloatArray:
            return np.asarray(self.replayer.evaluate64(x)[0], dtype=np.float64)

        result = decide_scr(
            negation,
            y_lower,
            y_upper,
            solve,
            confirm,
            evaluate,
            deadline,
            ScrSettings(),
            g_bounds=query.g_bounds,
        )
        elapsed = time.monotonic() - start
        if result.status is Status.VIOLATED and result.x is not None:
            replay = self.replayer.replay(result.x, negation)
            if replay.confirmed:
                return Verdict(
                    Status.VIOLATED,
                    Stage.SOLVER,
                    self.backend.value,
                    elapsed,
                    reason=result.reason,
                    witness=replay.x,
                    witness_output=replay.y64,
                    queries=result.queries,
                    refinements=result.refinements,
                )
        if result.status is Status.HOLDS:
            stage = Stage.BOUNDS if result.queries == 0 else Stage.SOLVER
            return Verdict(
                Status.HOLDS,
                stage,
                self.backend.value,
                elapsed,
                reason=result.reason,
                queries=result.queries,
                refinements=result.refinements,
            )
        return Verdict(
            Status.UNKNOWN,
            Stage.NONE,
            self.backend.value,
            elapsed,
            reason=result.reason,
            queries=result.queries,
            refinements=result.refinements,
        )


def _no_time_left(search: BabOutcome, elapsed: float) -> Verdict:
    """``unknown`` after a search that left too little time for the backend."""
    reason = f"{search.reason}; less than {BACKEND_MIN_S:g} s left for the backend"
    return Verdict(Status.UNKNOWN, Stage.NONE, "bab", elapsed, reason=reason)


def _bab_verdict(outcome: BabOutcome, elapsed: float) -> Verdict | None:
    """A branch-and-bound search's ``holds`` or replayed ``violated`` as a verdict; None when
    it left the query open."""
    if outcome.status is Status.HOLDS:
        return Verdict(Status.HOLDS, Stage.BAB, "bab", elapsed, outcome.reason)
    if outcome.status is Status.VIOLATED and outcome.witness is not None:
        return dataclasses.replace(
            outcome.witness,
            stage=Stage.BAB,
            backend="bab",
            time_s=elapsed,
            reason=f"{outcome.reason}; witness confirmed by onnxruntime",
        )
    return None
