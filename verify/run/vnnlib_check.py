"""VNN-LIB instances, as ``verify vnnlib`` decides them: the staged pipeline on one query, and
a batch over a VNN-COMP ``instances.csv``.

One instance: load the model (once: the IR, the replayer and any worker get the same bytes; a
gzip-compressed ``.onnx.gz`` is inflated under a cap), parse the property (``.vnnlib.gz``
too), check the IR against onnxruntime on the property's box, then run the stages of
:func:`robustprop.verify.run.stages.run_stages` on its negation with two attacks, both the
falsifier (:mod:`robustprop.verify.engine.falsify`: points sampled over the whole box, the
best of them climbed by PGD, rounds of restarts around the best points found):

1. a short one (one round of 1024 samples and 64 PGD starts, at most 1 s), run before the
   bounds, which finds most counterexamples at once (21 of the 23 sat instances of the
   shared VNN-COMP set);
2. a longer one (:func:`search_budget`), which the pipeline runs after the bounds (and after a
   quick branch and bound, where that stage runs), so that instances proved cheaply never
   pay for it.

Every falsifier point counts only after onnxruntime replay. An instance still open when its
time is spent answers ``timeout`` (VNN-COMP's word); one left open for another reason (a
solver error, a witness that never replayed) ``unknown``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from robustprop.properties.errors import InputError, RobustpropError
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
from robustprop.verify.formats.compressed import is_gzip, read_capped
from robustprop.verify.formats.vnncomp import Instance
from robustprop.verify.formats.vnnlib import read_vnnlib
from robustprop.verify.run.model import ModelBytes, self_contained
from robustprop.verify.run.stages import Attack, ExactSettings, Strategy, confirm, run_stages

__all__ = [
    "MAX_MODEL_BYTES",
    "InstanceResult",
    "VnnlibResult",
    "check_instances",
    "check_vnnlib",
    "read_model",
    "search_budget",
]

log = logging.getLogger(__name__)

#: Largest model read from a gzip file, inflated (2 GiB, as the IR reader's own cap).
MAX_MODEL_BYTES = 2 * 1024**3

#: VNN-COMP's answer for each verdict on the *property* (its unsafe set is the negation).
ANSWERS: dict[Status, str] = {
    Status.HOLDS: "unsat",
    Status.VIOLATED: "sat",
    Status.UNKNOWN: "unknown",
}

_TIME_REASON = re.compile(r"time ?limit|timeout|timed out|deadline", re.IGNORECASE)


def search_budget(timeout_s: float) -> float:
    """The time of the falsifier's second, longer search: 5 % of the budget, at most 1 s.

    (Branch and bound attacks its open sub-domains as it goes, and resumes after this search
    where its quick round stopped: a longer search only delays every hard unsat instance. On
    the shared VNN-COMP set every counterexample comes from the first, short search, within
    0.4 s; this one is a hedge, halved from 2 s when it had found none there.)"""
    return min(1.0, 0.05 * timeout_s)


@dataclass(frozen=True, eq=False)
class VnnlibResult:
    """``verify vnnlib``'s answer: the verdict, and for ``sat`` the confirmed input ``x`` and
    onnxruntime's float32 output ``y`` at it; ``timed_out`` when the instance was left open
    because its time was spent."""

    verdict: Verdict
    y: FloatArray | None
    time_s: float
    timed_out: bool = False

    @property
    def status(self) -> str:
        """``sat`` (the unsafe set has a point), ``unsat`` or ``unknown``: VNN-COMP's words."""
        return ANSWERS[self.verdict.status]

    @property
    def answer(self) -> str:
        """The result file's first word: :attr:`status`, with ``timeout`` for an ``unknown``
        whose time was spent."""
        return "timeout" if self.timed_out else self.status

    @property
    def x(self) -> FloatArray | None:
        return self.verdict.witness

    @property
    def reason(self) -> str:
        return self.verdict.reason


def read_model(path: str | Path) -> ModelBytes:
    """The model at ``path``, inflated first when the file is gzip (under
    :data:`MAX_MODEL_BYTES`); external data is read from the file's folder either way."""
    path = Path(path)
    with_magic = path.is_file() and _starts_gzip(path)
    if not with_magic:
        return ModelBytes.read(path)
    raw = read_capped(path, MAX_MODEL_BYTES, "ONNX model", "MAX_MODEL_BYTES")
    data, files = self_contained(raw, str(path), path.parent)
    return ModelBytes(data, str(path), path, files)


def _starts_gzip(path: Path) -> bool:
    try:
        with path.open("rb") as stream:
            return is_gzip(stream.read(2))
    except OSError as err:
        raise InputError(f"cannot read ONNX model {path}: {err.strerror or err}") from err


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
    model = read_model(net_path)
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
        # a few rounds: on ACAS Xu 5_3/prop_2 the first round never hit, the third did (0.1 s)
        short = FalsifyConfig(rounds=4, time_s=min(1.0, 0.05 * timeout_s))
        search = FalsifyConfig(time_s=search_budget(timeout_s), seed=1)
        attacks = (
            lambda qs: _falsify(network, qs, replayer, short),
            lambda qs: _falsify(network, qs, replayer, search),
        )
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
    spent = time.monotonic() >= start + timeout_s - max(0.5, 0.02 * timeout_s)
    timed_out = verdict.status is Status.UNKNOWN and (
        spent or bool(_TIME_REASON.search(verdict.reason))
    )
    return _result(verdict, None, start, timed_out=timed_out)


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
                    "found by the falsifier (sampled starts, PGD) on the IR; witness confirmed "
                    "by onnxruntime",
                    witness=hit.witness,
                    witness_output=hit.witness_output,
                )
                break
    return out


def _result(
    verdict: Verdict, y: FloatArray | None, start: float, *, timed_out: bool = False
) -> VnnlibResult:
    return VnnlibResult(verdict, y, time.monotonic() - start, timed_out)


# --------------------------------------------------------------------------------------------
# a batch over an instances.csv


@dataclass(frozen=True, eq=False)
class InstanceResult:
    """One instance of a batch: the answer (``error`` when the instance could not be run, with
    ``error`` the message), the stage that decided, the wall time and the time limit used."""

    instance: Instance
    answer: str
    stage: str
    time_s: float
    timeout_s: float
    result: VnnlibResult | None = None
    error: str = ""

    @property
    def wrong(self) -> bool:
        """The answer contradicts the instance's expected answer."""
        expected = self.instance.expected
        return expected is not None and self.answer in ("sat", "unsat") and self.answer != expected

    @property
    def decided(self) -> bool:
        return self.answer in ("sat", "unsat")


def check_instances(
    instances: Sequence[Instance],
    *,
    timeout_scale: float = 1.0,
    max_timeout_s: float | None = None,
    backend: BackendName | str = "auto",
    strategy: Strategy | str = Strategy.STAGED,
    attack: bool = True,
    on_result: Callable[[InstanceResult], None] | None = None,
) -> list[InstanceResult]:
    """Each instance in turn with its own timeout (the CSV's, times ``timeout_scale``, at most
    ``max_timeout_s``); an instance that cannot be run answers ``error`` and the batch goes on.
    ``on_result`` sees each result as it is reached (a printer)."""
    if not timeout_scale > 0:
        raise InputError(f"--timeout-scale must be positive, got {timeout_scale}")
    if max_timeout_s is not None and not max_timeout_s > 0:
        raise InputError(f"--timeout must be positive, got {max_timeout_s}")
    out: list[InstanceResult] = []
    for inst in instances:
        limit = inst.timeout_s * timeout_scale
        if max_timeout_s is not None:
            limit = min(limit, max_timeout_s)
        t0 = time.monotonic()
        try:
            result = check_vnnlib(
                inst.onnx,
                inst.vnnlib,
                backend=backend,
                timeout_s=limit,
                attack=attack,
                strategy=strategy,
            )
            row = InstanceResult(
                inst, result.answer, result.verdict.stage.value, result.time_s, limit, result
            )
        except RobustpropError as err:  # bad input: this instance's, the batch goes on
            row = InstanceResult(
                inst, "error", "none", time.monotonic() - t0, limit, error=str(err)
            )
        except Exception as err:  # a bug: reported on the instance, the batch goes on
            log.exception("instance %s failed", inst.name)
            message = f"internal error: {type(err).__name__}: {err}"
            row = InstanceResult(inst, "error", "none", time.monotonic() - t0, limit, error=message)
        out.append(row)
        if on_result is not None:
            on_result(row)
    return out
