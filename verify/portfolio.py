"""The portfolio backend: Marabou and the HiGHS MILP race on the same query.

They are complementary (measured on 784→100→10 and 784→512→10-like networks: HiGHS proves
"unsat" where Marabou times out, Marabou finds "sat" points many times faster), so both start
at once, each in its own forked process with the full time limit, and the first *definitive*
answer wins: ``unsat``, or ``sat`` with a point that really lies in the negation when the float64
IR is evaluated there (projected into the box). The loser is killed at once. A racer whose
point fails that check, or that answers ``unknown``, is ignored while the other still runs.
The caller (:func:`verify.decide.decide`) still replays every point through onnxruntime.

Racing needs two cores for one query: run ``verify run --jobs 1`` on a two-core machine (see
``benchmarks/verify_speed.py`` for the measurement behind this choice).

Both racers get the same intermediate-neuron bounds: before forking, the network is seeded with
CROWN bounds of the query box (:func:`verify.bounds.seeded`) unless it already carries a seed
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
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from properties.spec import Negation
from verify.backends.base import BackendName, SolverOutcome, check_query, get_backend, query_box
from verify.network import Network

__all__ = ["RACERS", "PortfolioBackend", "race", "valid_point"]

log = logging.getLogger(__name__)

RACERS = (BackendName.MARABOU, BackendName.MILP)


@dataclass(frozen=True)
class PortfolioBackend:
    """Marabou and MILP racing; ``grace_s`` past the limit, stragglers are killed."""

    racers: tuple[BackendName, ...] = RACERS
    grace_s: float = 2.0

    @property
    def name(self) -> BackendName:
        return BackendName.PORTFOLIO

    def solve(self, network: Network, negation: Negation, timeout_s: float) -> SolverOutcome:
        check_query(network, negation)
        start = time.monotonic()
        network = _with_seed(network, negation)
        jobs: list[tuple[Callable[..., SolverOutcome], tuple[object, ...]]] = [
            (_solve_one, (name, network, negation, timeout_s)) for name in self.racers
        ]
        answers = race(
            jobs,
            lambda out: _definitive(network, negation, out),
            timeout_s + self.grace_s,
        )
        elapsed = time.monotonic() - start
        for name, out in zip(self.racers, answers, strict=True):
            if out is not None and _definitive(network, negation, out):
                return SolverOutcome(
                    out.status, out.x, f"portfolio: {name.value} first: {out.reason}", elapsed
                )
        # No definitive answer: hand on an unconfirmed point (the caller's replay and margin
        # retry deal with it), else unknown with every racer's reason.
        reasons = []
        for name, out in zip(self.racers, answers, strict=True):
            if out is not None and out.status == "sat":
                return SolverOutcome(
                    "sat", out.x, f"portfolio: {name.value}: {out.reason}", elapsed
                )
            reasons.append(f"{name.value}: {out.reason if out is not None else 'no answer'}")
        return SolverOutcome("unknown", None, "portfolio: " + "; ".join(reasons), elapsed)


def _solve_one(
    name: BackendName, network: Network, negation: Negation, timeout_s: float
) -> SolverOutcome:
    return get_backend(name).solve(network, negation, timeout_s)


def _with_seed(network: Network, negation: Negation) -> Network:
    from verify.bounds import Seed, seeded

    lower, upper = query_box(negation)
    seed = getattr(network, "seed", None)
    if np.any(lower > upper) or (seed is not None and seed.covers(lower, upper)):
        return network
    import torch

    from verify.crown import Crown

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


def _definitive(network: Network, negation: Negation, out: SolverOutcome) -> bool:
    if out.status == "unsat":
        return True
    return out.status == "sat" and out.x is not None and valid_point(network, negation, out.x)


# --------------------------------------------------------------------------------------------
# racing forked children


def race(
    jobs: list[tuple[Callable[..., SolverOutcome], tuple[object, ...]]],
    definitive: Callable[[SolverOutcome], bool],
    limit_s: float,
) -> list[SolverOutcome | None]:
    """Run every ``fn(*args)`` in its own forked child; stop at the first definitive answer.

    Returns each job's answer (``None``: killed, crashed or past ``limit_s``), in job order.
    """
    children = [_fork(fn, args) for fn, args in jobs]
    answers: list[SolverOutcome | None] = [None] * len(jobs)
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
                out = answers[k]
                if out is not None and definitive(out):
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


def _unpickle(data: bytes) -> SolverOutcome | None:
    try:
        tag, payload = pickle.loads(data)
    except Exception:  # a child that died mid-write
        return None
    if tag == "ok" and isinstance(payload, SolverOutcome):
        return payload
    log.warning("portfolio racer failed: %s", payload)
    return SolverOutcome("unknown", None, f"error: {payload}", 0.0)


def _fork(fn: Callable[..., SolverOutcome], args: tuple[object, ...]) -> tuple[int, int]:
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
            except BaseException as err:  # anything becomes an "unknown" in the parent
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
