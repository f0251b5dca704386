"""One VNN-LIB instance, as ``verify vnnlib`` decides it: the staged pipeline on one query.

Load the model (once: the IR, the replayer and any worker get the same bytes), parse the
property, check the IR against onnxruntime on the property's box, then run the stages of
:mod:`robustprop.verify.run.stages` on its negation: the falsifier (a PGD search on the IR,
at most 5 % of the budget and 2 s; its points count only after replay), the bounds, and the
exact backend with the time that is left.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from robustprop.properties.errors import InputError
from robustprop.properties.spec import FloatArray
from robustprop.verify.engine.backends.base import BackendName
from robustprop.verify.engine.backends.registry import choose_backend
from robustprop.verify.engine.falsify import FalsifyConfig, falsify
from robustprop.verify.engine.network import (
    Network,
    check_against_onnxruntime,
    network_from_bytes,
)
from robustprop.verify.engine.point_query import Query
from robustprop.verify.engine.replay import Replayer
from robustprop.verify.engine.verdict import Stage, Status, Verdict
from robustprop.verify.formats.vnnlib import read_vnnlib
from robustprop.verify.run.model import ModelBytes
from robustprop.verify.run.stages import Attack, ExactSettings, Strategy, confirm, run_stages

__all__ = ["VnnlibResult", "check_vnnlib"]

log = logging.getLogger(__name__)

#: VNN-COMP's answer for each verdict on the *property* (its unsafe set is the negation).
ANSWERS: dict[Status, str] = {
    Status.HOLDS: "unsat",
    Status.VIOLATED: "sat",
    Status.UNKNOWN: "unknown",
}


@dataclass(frozen=True, eq=False)
class VnnlibResult:
    """``verify vnnlib``'s answer: the verdict, and for ``sat`` the confirmed input ``x`` and
    onnxruntime's float32 output ``y`` at it."""

    verdict: Verdict
    y: FloatArray | None
    time_s: float

    @property
    def status(self) -> str:
        """``sat`` (the unsafe set has a point), ``unsat`` or ``unknown``: VNN-COMP's words."""
        return ANSWERS[self.verdict.status]

    @property
    def x(self) -> FloatArray | None:
        return self.verdict.witness

    @property
    def reason(self) -> str:
        return self.verdict.reason


def check_vnnlib(
    net_path: str | Path,
    spec_path: str | Path,
    *,
    backend: BackendName | str = "auto",
    timeout_s: float = 60.0,
    isolate: bool = True,
    attack: bool = True,
    strategy: Strategy | str = Strategy.STAGED,
) -> VnnlibResult:
    """Decide one instance within about ``timeout_s`` seconds (see the module docstring).

    ``strategy="plain"``: the backend alone (no search, no bounds), the baseline.
    ``backend="auto"``: Marabou for the plain strategy; else Z3 for tiny networks and the
    Marabou/MILP portfolio beyond. ``isolate=False`` runs solver calls in this process (no
    hard kill; for tests and debugging).
    """
    try:
        strategy = Strategy(strategy)
    except ValueError as err:
        choices = ", ".join(s.value for s in Strategy)
        raise InputError(f"unknown strategy {strategy!r} (choose from {choices})") from err
    start = time.monotonic()
    model = ModelBytes.read(net_path)
    network = network_from_bytes(model.data, source=model.source, check_points=0)
    negation = read_vnnlib(spec_path, network.n, network.m).negation
    if negation is None:
        reason = "every input box of the property is empty"
        return _result(Verdict(Status.HOLDS, Stage.BOUNDS, "vnnlib", 0.0, reason), None, start)
    lower = np.min([d.lower for d in negation.disjuncts], axis=0)
    upper = np.max([d.upper for d in negation.disjuncts], axis=0)
    check_against_onnxruntime(network, model.data, lower, upper)
    replayer = Replayer(model.data, source=model.source)
    plain = strategy is Strategy.PLAIN
    solver = choose_backend(backend, network, plain=plain)
    attacks: tuple[Attack, ...] = ()
    if attack and not plain:
        search = FalsifyConfig(time_s=min(2.0, 0.05 * timeout_s))
        attacks = (lambda qs: _falsify(network, qs, replayer, search),)
    settings = ExactSettings(
        solver, timeout_s, in_process=True, isolate=isolate, deadline=start + timeout_s
    )
    verdict = run_stages(
        [Query(0, negation)], network, model, replayer, settings, strategy=strategy, attacks=attacks
    )[0]
    if verdict.stage is Stage.BOUNDS:
        verdict = replace(verdict, reason=f"proved by bound propagation ({verdict.reason})")
    elif verdict.stage is Stage.SOLVER and not verdict.reason:
        verdict = replace(verdict, reason=f"{verdict.backend}: {ANSWERS[verdict.status]}")
    if verdict.status is Status.VIOLATED and verdict.witness is not None:
        return _result(verdict, replayer.evaluate32(verdict.witness)[0], start)
    return _result(verdict, None, start)


def _falsify(
    network: Network, queries: Sequence[Query], replayer: Replayer, search: FalsifyConfig
) -> dict[int, Verdict]:
    """The falsifier's candidates on each query's negation, until one replays."""
    out: dict[int, Verdict] = {}
    for q in queries:
        t0 = time.monotonic()
        for x in falsify(network, q.negation, search):
            hit = confirm(replayer, x, q.negation)
            if hit is not None:
                out[q.index] = Verdict(
                    Status.VIOLATED,
                    Stage.ATTACK,
                    "pgd",
                    time.monotonic() - t0,
                    "found by the PGD search on the IR; witness confirmed by onnxruntime",
                    witness=hit.witness,
                    witness_output=hit.witness_output,
                )
                break
    return out


def _result(verdict: Verdict, y: FloatArray | None, start: float) -> VnnlibResult:
    return VnnlibResult(verdict, y, time.monotonic() - start)
