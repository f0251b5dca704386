"""The portfolio backend: Marabou and the HiGHS MILP race on the same query.

They are complementary (measured on 784→100→10 and 784→512→10-like networks: HiGHS proves
"unsat" where Marabou times out, Marabou finds "sat" points many times faster), so both start
at once, each in its own forked process, and the first *definitive* answer wins: ``HOLDS``
(the negation is unsat), or ``VIOLATED`` with a point that really lies in the negation when the
float64 IR is evaluated there (projected into the box). The loser is killed at once. A racer
whose point fails that check, or that answers ``UNKNOWN``, is ignored while the other still
runs. The caller
(:func:`robustprop.verify.engine.decide.decide`) still replays every point through onnxruntime.

Two cores, one query. With a single disjunct, Marabou and the MILP simply race with the full
time limit. With several (CR's classes, SR's and LR's outputs and signs), the MILP decides one
disjunct at a time, and ``HOLDS`` needs every one: there the first racer runs Marabou on the whole
negation for a short share (:data:`MARABOU_SHARE`, its chance to find a point quickly), then
both racers take disjuncts from one shared queue (a pipe of indices, most violated at the center
first) and decide them with the MILP. Measured on the ``benchmarks/verify_speed.py`` queries
that reach this stage (after PGD, so mostly unsat, several disjuncts each): Marabou decided
none of them within 60 s, the MILP each disjunct in 0.1–4 s; a full-time race left one core to
Marabou for nothing, the shared queue halves the wall time of multi-disjunct queries.

Both racers get the same intermediate-neuron bounds: before forking, the network is seeded with
CROWN bounds of the query box (:func:`robustprop.verify.engine.bounds.seeded`) unless it already
carries a seed
covering it, so no racer runs torch after the fork. Racers are plain ``os.fork`` children
(possible from daemonic pool workers, cheap, no re-import) that die with their parent
(``PR_SET_PDEATHSIG``) and are killed ``grace_s`` seconds after the time limit at the latest.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import pickle
import select
import signal
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from robustprop.properties.spec import FloatArray, Negation
from robustprop.verify.engine.backends.base import (
    BackendName,
    SolverOutcome,
    check_query,
    import_solver,
    query_box,
)
from robustprop.verify.engine.backends.marabou import MarabouBackend
from robustprop.verify.engine.backends.milp import MilpSession
from robustprop.verify.engine.bounds import Seed, seeded
from robustprop.verify.engine.crown import Crown
from robustprop.verify.engine.network import Network
from robustprop.verify.engine.verdict import Status

__all__ = [
    "MARABOU_SHARE",
    "PortfolioBackend",
    "Report",
    "race",
    "racer_reason",
    "unknown_reason",
    "valid_point",
]

log = logging.getLogger(__name__)

# Share of the time limit Marabou gets on a query with several disjuncts (at least 1 s).
MARABOU_SHARE = 0.02


@dataclass(frozen=True)
class Report:
    """A racer's answer. ``proved``: disjuncts it showed empty; ``whole``: the status is about
    the whole negation (Marabou), not about the disjuncts it took from the queue."""

    status: Status
    x: FloatArray | None
    reason: str
    racer: str
    whole: bool = False
    proved: tuple[int, ...] = field(default=())


@dataclass(frozen=True)
class PortfolioBackend:
    """Marabou and MILP racing; ``grace_s`` past the limit, stragglers are killed."""

    grace_s: float = 2.0

    @property
    def name(self) -> BackendName:
        return BackendName.PORTFOLIO

    def solve(self, network: Network, negation: Negation, timeout_s: float) -> SolverOutcome:
        check_query(network, negation)
        start = time.monotonic()
        network = _with_seed(network, negation)
        for module, package in (("maraboupy.MarabouCore", "maraboupy"), ("highspy", "highspy")):
            import_solver(module, package)  # once here, not in every forked racer
        count = len(negation.disjuncts)
        if count == 1:
            jobs: list[tuple[Callable[..., Report], tuple[object, ...]]] = [
                (_marabou, (network, negation, timeout_s)),
                (_milp, (network, negation, None, timeout_s)),
            ]
            queue = None
        else:
            queue = _queue(MilpSession(network, negation).order())
            share = min(timeout_s, max(1.0, MARABOU_SHARE * timeout_s))
            jobs = [
                (_marabou_then_milp, (network, negation, queue, share, timeout_s)),
                (_milp, (network, negation, queue, timeout_s)),
            ]
        try:
            reports = race(
                jobs,
                lambda got: _verdict(network, negation, got) is not None,
                timeout_s + self.grace_s,
            )
        finally:
            if queue is not None:
                os.close(queue)
        elapsed = time.monotonic() - start
        answer = _verdict(network, negation, reports)
        if answer is not None:
            status, x, reason = answer
            return SolverOutcome(status, x, racer_reason("portfolio", reason), elapsed)
        # No definitive answer: hand on an unconfirmed point (the caller's replay and margin
        # retry deal with it), else unknown with every racer's reason.
        for r in reports:
            if r is not None and r.status is Status.VIOLATED:
                reason = racer_reason("portfolio", racer_reason(r.racer, r.reason))
                return SolverOutcome(Status.VIOLATED, r.x, reason, elapsed)
        return SolverOutcome(Status.UNKNOWN, None, unknown_reason(reports), elapsed)


def racer_reason(name: str, reason: str, tag: str = ": ") -> str:
    """``name`` + ``tag`` + ``reason``, with ``name`` once: a reason that already starts with
    ``"name: "`` (the MILP's ``"milp: sat"``) is not prefixed again."""
    return f"{name}{tag}{reason.removeprefix(f'{name}: ')}"


def unknown_reason(reports: list[Report | None]) -> str:
    """Why the race gave no answer: every racer's reason once (a racer that stopped for the same
    reason as another is named once), each prefixed by its racer's name once."""
    reasons = dict.fromkeys(racer_reason(r.racer, r.reason) for r in reports if r is not None)
    return racer_reason("portfolio", "; ".join(reasons) or "no answer")


def _verdict(
    network: Network, negation: Negation, reports: list[Report | None]
) -> tuple[Status, FloatArray | None, str] | None:
    """The definitive answer the reports so far give, if any."""
    proved: set[int] = set()
    for r in reports:
        if r is None:
            continue
        if r.status is Status.VIOLATED and r.x is not None and valid_point(network, negation, r.x):
            return Status.VIOLATED, r.x, racer_reason(r.racer, r.reason, " first: ")
        if r.status is Status.HOLDS and r.whole:
            return Status.HOLDS, None, racer_reason(r.racer, r.reason, " first: ")
        proved.update(r.proved)
    if len(proved) == len(negation.disjuncts):
        racers = sorted({r.racer for r in reports if r is not None and r.proved})
        return Status.HOLDS, None, f"every disjunct unsat ({', '.join(racers)})"
    return None


# -- the racers (run in forked children) ------------------------------------------------------


def _marabou(network: Network, negation: Negation, timeout_s: float) -> Report:
    out = MarabouBackend().solve(network, negation, timeout_s)
    return Report(out.status, out.x, out.reason, "marabou", whole=True)


def _marabou_then_milp(
    network: Network, negation: Negation, queue: int, share_s: float, timeout_s: float
) -> Report:
    start = time.monotonic()
    first = _marabou(network, negation, share_s)
    if first.status is Status.HOLDS or (
        first.status is Status.VIOLATED
        and first.x is not None
        and valid_point(network, negation, first.x)
    ):
        return first
    return _milp(network, negation, queue, timeout_s - (time.monotonic() - start))


def _milp(network: Network, negation: Negation, queue: int | None, timeout_s: float) -> Report:
    """MILP on the disjuncts it takes from ``queue`` (all of them, in order, if ``None``)."""
    start = time.monotonic()
    session = MilpSession(network, negation)
    order = iter(session.order()) if queue is None else None
    proved: list[int] = []
    while True:
        k = next(order, None) if order is not None else _take(queue)
        if k is None:
            return Report(
                Status.HOLDS,
                None,
                f"milp: {len(proved)} disjunct(s) unsat",
                "milp",
                whole=queue is None,
                proved=tuple(proved),
            )
        left = timeout_s - (time.monotonic() - start)
        if left <= 0:
            return Report(
                Status.UNKNOWN, None, "milp: time limit reached", "milp", proved=tuple(proved)
            )
        status, x, reason = session.solve(k, left)
        if status is not Status.HOLDS:
            return Report(status, x, reason, "milp", proved=tuple(proved))
        proved.append(k)


def _queue(order: list[int]) -> int:
    """A pipe holding the disjunct indices, write end closed: its read end, for the racers."""
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"".join(struct.pack("i", k) for k in order))
    os.close(write_fd)
    return read_fd


def _take(queue: int | None) -> int | None:
    """The next disjunct index from the shared queue; ``None`` when it is empty."""
    assert queue is not None
    data = os.read(queue, 4)  # 4-byte reads from one pipe are atomic between the racers
    return struct.unpack("i", data)[0] if len(data) == 4 else None


def _with_seed(network: Network, negation: Negation) -> Network:
    lower, upper = query_box(negation)
    seed = getattr(network, "seed", None)
    if np.any(lower > upper) or (seed is not None and seed.covers(lower, upper)):
        return network
    crown = Crown(network)
    with torch.no_grad():
        bounds = crown.layer_bounds(crown.tensor(lower[None, :]), crown.tensor(upper[None, :]))
    return seeded(network, Seed(lower, upper, tuple(bounds.numpy(0))))


def valid_point(network: Network, negation: Negation, x: np.ndarray) -> bool:
    """Whether ``x``, projected into some disjunct's box, lies in the negation (float64 IR)."""
    for d in negation.disjuncts:
        xp = np.clip(np.asarray(x, dtype=np.float64).reshape(-1), d.lower, d.upper)
        if negation.distance is not None:
            c, e = negation.distance.center, negation.distance.eps
            xp = np.clip(xp, c - e, c + e)
        if negation.is_satisfied_by(xp, network.evaluate(xp)[0]):
            return True
    return False


# --------------------------------------------------------------------------------------------
# racing forked children


def race(
    jobs: list[tuple[Callable[..., Any], tuple[object, ...]]],
    done: Callable[[list[Any]], bool],
    limit_s: float,
) -> list[Any]:
    """Run every ``fn(*args)`` in its own forked child until ``done(answers)`` holds.

    ``answers`` lists each job's result so far, in job order (``None``: still running, killed,
    crashed or past ``limit_s``); it is checked whenever a child finishes. The remaining
    children are then killed.
    """
    children = [_fork(fn, args) for fn, args in jobs]
    answers: list[Any] = [None] * len(jobs)
    buffers = [bytearray() for _ in jobs]
    open_fds = {fd: k for k, (_, fd) in enumerate(children)}
    deadline = time.monotonic() + limit_s
    try:
        while open_fds:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select(list(open_fds), [], [], left)
            for fd in ready:
                k = open_fds[fd]
                chunk = os.read(fd, 1 << 16)
                if chunk:
                    buffers[k].extend(chunk)
                    continue
                del open_fds[fd]
                answers[k] = _unpickle(bytes(buffers[k]))
                if done(answers):
                    return answers
    finally:
        for pid, fd in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            with contextlib.suppress(OSError):
                os.close(fd)
    return answers


def _unpickle(data: bytes) -> Any:
    try:
        tag, payload = pickle.loads(data)
    except Exception:  # a child that died mid-write
        return None
    if tag == "ok":
        return payload
    log.warning("portfolio racer failed: %s", payload)
    return None


def _fork(fn: Callable[..., Any], args: tuple[object, ...]) -> tuple[int, int]:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: solve, write the pickled answer, exit without cleanup
        code = 0
        try:
            os.close(read_fd)
            _die_with_parent()
            with contextlib.suppress(OSError):
                os.dup2(2, 1)  # solver prints never reach stdout
            try:
                message: tuple[str, object] = ("ok", fn(*args))
            except BaseException as err:  # anything becomes an UNKNOWN in the parent
                message = ("error", f"{type(err).__name__}: {err}")
            data = pickle.dumps(message)
            view = memoryview(data)
            while view:
                written = os.write(write_fd, view)
                view = view[written:]
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(write_fd)
    return pid, read_fd


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None)
        libc.prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
