"""Measuring several networks at once (``verify experiment --jobs N``).

The unit of work is one network (:class:`NetworkJob`): its curves, its certified cells and its
LR findings, in that order, in one process. A network's measurements share one cache file
(``<net>.eval.json``), so keeping them in one process means no two processes ever write the
same cache; the verdict store is shared (SQLite serialises its writers). With ``jobs > 1`` the
networks go to a pool of ``jobs`` processes (spawned, so no solver or torch state is forked),
each with ``cores // jobs`` torch threads so the pool does not oversubscribe the machine; the
results come back in the order of the jobs whatever order they finish in.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

from robustprop.lazy import load as load_heavy
from robustprop.verify.experiment.lipschitz import LipschitzFinding, lipschitz_finding
from robustprop.verify.experiment.measure import (
    Measure,
    Row,
    measure_all,
    read_cache,
    write_cache,
)

__all__ = ["NetworkJob", "NetworkResult", "measure_network", "measure_networks"]


@dataclass(frozen=True)
class NetworkJob:
    """Everything measured on one network."""

    net: Path
    dataset: str
    regime: str
    data: str  # dataset name or .npz of the test points
    curves: tuple[Measure, ...]
    certified: tuple[Measure, ...]
    lipschitz_eps: tuple[float, ...]
    lipschitz_points: int
    timeout_s: float
    store: Path | None


@dataclass(frozen=True)
class NetworkResult:
    curves: list[Row]
    certified: list[Row]
    lipschitz: list[LipschitzFinding]


def measure_network(job: NetworkJob, say: Callable[[str], None]) -> NetworkResult:
    """Every measurement of ``job``, each reused from the network's cache when there."""
    curves = measure_all(job.net, job.dataset, job.regime, list(job.curves), data=job.data, say=say)
    certified = measure_all(
        job.net,
        job.dataset,
        job.regime,
        list(job.certified),
        data=job.data,
        store=job.store,
        say=say,
    )
    findings = []
    cache = read_cache(job.net)
    for eps in job.lipschitz_eps:
        finding, reused = lipschitz_finding(
            job.net,
            job.dataset,
            job.regime,
            eps,
            points=job.lipschitz_points,
            data=job.data,
            timeout_s=job.timeout_s,
            store=job.store,
            cache=cache,
        )
        if not reused:
            write_cache(job.net, cache)
        findings.append(finding)
        say(
            f"{job.dataset} {job.regime} LR witnesses eps={eps:g}: {finding.violated} refuted, "
            f"paper's PGD finds {finding.paper_pgd} "
            + ("(cached)" if reused else f"({finding.time_s:.1f} s)")
        )
    return NetworkResult(curves, certified, findings)


def _in_worker(job: NetworkJob) -> tuple[NetworkResult, list[str]]:
    lines: list[str] = []
    return measure_network(job, lines.append), lines


def _limit_threads(threads: int) -> None:
    torch = load_heavy("torch")
    torch.set_num_threads(threads)


def measure_networks(
    jobs: Sequence[NetworkJob], workers: int, say: Callable[[str], None] = lambda _: None
) -> list[NetworkResult]:
    """:func:`measure_network` for each job, ``workers`` networks at a time; in job order."""
    if workers <= 1 or len(jobs) <= 1:
        return [measure_network(job, say) for job in jobs]
    workers = min(workers, len(jobs))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = max(1, (cores or 1) // workers)
    results: list[NetworkResult | None] = [None] * len(jobs)
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=get_context("spawn"),
        initializer=_limit_threads,
        initargs=(threads,),
    ) as pool:
        pending: dict[Future[tuple[NetworkResult, list[str]]], int] = {
            pool.submit(_in_worker, job): i for i, job in enumerate(jobs)
        }
        each = f"{threads} torch thread" + ("" if threads == 1 else "s")
        say(f"measuring {len(jobs)} networks, {workers} at a time ({each} each)")
        for future in as_completed(pending):
            result, lines = future.result()
            for line in lines:
                say(line)
            results[pending[future]] = result
    return [r for r in results if r is not None]
