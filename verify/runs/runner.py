"""``verify run``: satisfaction, security and accuracy of one property on one network.

Per point, with ``strategy="staged"`` (the default), in order (each step only for what the
previous left open):

1. **center** — the data point itself, replayed through onnxruntime;
2. **attack** — batched PGD (:mod:`robustprop.verify.engine.attack`: the property's margin plus targeted
   objectives per class, or per output and sign, all in one batch); a candidate counts only
   after replay. The same attack gives the *security* metric;
3. **bounds** — batched CROWN bound propagation over all open points and every atom
   (:mod:`robustprop.verify.engine.bounds`): ``holds`` when it proves the negation empty; otherwise the disjuncts
   it proves empty are dropped and the rest goes on seeded with CROWN's neuron bounds;
4. **solver** — the exact backend (``--jobs`` worker processes, per-query timeout); ``auto``
   is Z3 for tiny networks, else the Marabou/MILP portfolio (:mod:`robustprop.verify.engine.portfolio`), which
   with one job runs in this process (its solvers run in forked, killable racers).

Attack and bounds never both decide a point (one proves, the other refutes), so their order
only changes the time spent: without the security metric a short attack (``QUICK_STEPS``
steps, one run) goes first, then the bounds, then the full attack on what is left.

``strategy="plain"`` is the baseline a user could script: every point goes straight to the
exact backend (``auto``: Marabou), without the center, attack and bound stages (the attack
still runs, for the security metric only, when that metric is asked for).

*Accuracy* is the fraction of uniform samples of the region on which the predicate holds.
The invariants of DESIGN.md §3 are checked on every run: a point proved ``holds`` never has a
confirmed attack or sample violation; every ``violated`` carries a witness.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from robustprop.properties import PGDConfig, Property
from robustprop.properties.domain import Domain
from robustprop.properties.errors import InputError, RobustpropError
from robustprop.properties.spec import Negation
from robustprop.verify.engine.backends.base import BackendName
from robustprop.verify.engine.bounds import bound_negations, compute_seeds
from robustprop.verify.engine.crown import Crown
from robustprop.verify.engine.decide import STRATEGIES
from robustprop.verify.engine.network import Network, load_network
from robustprop.verify.engine.attack import batched_attack
from robustprop.verify.engine.point_query import Query, choose_backend
from robustprop.verify.runs.points import Points, PointSelection, domain_from_metadata, load_points
from robustprop.verify.runs.pool import WorkerPool, WorkerSpec
from robustprop.verify.engine.replay import Replayer
from robustprop.verify.runs.store import Store, is_reusable, point_key, property_key
from robustprop.verify.engine.torch_net import to_torch
from robustprop.verify.engine.verdict import Stage, Status, Verdict

if TYPE_CHECKING:
    from robustprop.verify.runs.ray_pool import RayPool

log = logging.getLogger(__name__)

METRICS = ("satisfaction", "security", "accuracy")

# Steps of the short attack that runs before the bound stage.
QUICK_STEPS = 20


@dataclass(frozen=True)
class RunConfig:
    """Everything one run needs, built at the CLI edge."""

    model_path: Path
    prop: Property
    selection: PointSelection
    metrics: tuple[str, ...] = METRICS
    backend: str = "auto"
    timeout_s: float = 60.0
    jobs: int = 1
    tau: float = 1e-6
    attack: PGDConfig = field(default_factory=PGDConfig.strong)
    samples: int = 1000
    seed: int = 0
    domain: Domain | None = None  # None: from the model's metadata, else [0, 1]
    store_path: Path | None = None  # None: no store (``--no-cache``)
    strategy: str = "staged"  # or "plain"
    executor: str = "local"  # or "ray"
    address: str | None = None  # Ray cluster address; None starts a local instance
    export_vnnlib: Path | None = None  # write each point's query as VNN-LIB (SR, CR)
    device: str = "cpu"  # where PGD and bound propagation run


@dataclass(frozen=True, eq=False)
class PointResult:
    """What the run found at one point; metrics not asked for are ``None``."""

    index: int
    label: int
    verdict: Verdict | None
    attack_violated: bool | None
    attack_margin: float | None
    sampling_fraction: float | None


@dataclass(frozen=True, eq=False)
class RunResult:
    config: RunConfig
    network: Network
    backend: str
    points: tuple[PointResult, ...]
    breaches: tuple[str, ...]
    time_s: float
    reused: int = 0

    @property
    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in Status}
        for p in self.points:
            if p.verdict is not None:
                out[p.verdict.status.value] += 1
        return out


Progress = Callable[[PointResult], None]


def run(config: RunConfig, progress: Progress | None = None) -> RunResult:
    """Measure the requested metrics; see the module docstring for the steps."""
    start = time.monotonic()
    for metric in config.metrics:
        if metric not in METRICS:
            raise_metric(metric)
    from robustprop.export.metadata import read_metadata

    metadata = read_metadata(config.model_path)
    domain = config.domain or domain_from_metadata(metadata, str(config.model_path))
    network = load_network(config.model_path)
    points = load_points(config.selection, network.n)
    replayer = Replayer(config.model_path)
    prop = config.prop
    y_center = replayer.evaluate64(points.x)
    labels = torch.from_numpy(points.y)
    try:
        refs = prop.references(torch.from_numpy(y_center), labels)
    except InputError as err:
        raise InputError(
            f"data {config.selection.data!r} with --reference {prop.reference}: {err}"
        ) from err
    negations = [
        prop.negation(points.x[i], y_center[i], int(refs.classes[i]), domain, config.tau)
        for i in range(len(points.x))
    ]
    if config.export_vnnlib is not None:
        _export_vnnlib(config, points, negations)
    if config.strategy not in STRATEGIES:
        raise InputError(
            f"unknown strategy {config.strategy!r} (choose from {', '.join(STRATEGIES)})"
        )
    staged = config.strategy == "staged"
    model = to_torch(network)
    attack_model = model if config.device == "cpu" else to_torch(network).to(config.device)
    generator = torch.Generator(device=config.device).manual_seed(config.seed)

    verdicts: dict[int, Verdict] = {}
    attack_violated: dict[int, bool] = {}
    attack_margin: dict[int, float] = {}
    want_sat = "satisfaction" in config.metrics
    want_security = "security" in config.metrics
    everything = list(range(len(points.x)))

    def attack_stage(indices: list[int], pgd: PGDConfig = config.attack) -> None:
        """PGD on ``indices``: security data, and ``violated`` verdicts when staged."""
        if not indices:
            return
        t0 = time.monotonic()
        with _torch_threads(1):
            found = _attack(
                prop,
                attack_model,
                points,
                indices,
                refs,
                domain,
                pgd,
                generator,
                config.device,
            )
        per_point = (time.monotonic() - t0) / len(indices)
        for i, (x_adv, margin) in zip(indices, found, strict=True):
            attack_margin[i] = margin
            witness = None
            if prop.violated(torch.tensor(margin)).item():
                witness = _confirm(replayer, x_adv, negations[i])
            attack_violated[i] = witness is not None or i in center_violated
            if witness is not None and want_sat and staged and i not in verdicts:
                verdicts[i] = Verdict(
                    Status.VIOLATED,
                    Stage.ATTACK,
                    "pgd",
                    per_point,
                    witness=witness[0],
                    witness_output=witness[1],
                )

    # 1. center: the data point itself (also a confirmed violation for the security metric)
    center_violated: set[int] = set()
    if (want_sat and staged) or want_security:
        for i in everything:
            witness = _confirm(replayer, points.x[i], negations[i])
            if witness is None:
                continue
            center_violated.add(i)
            if want_sat and staged:
                verdicts[i] = Verdict(
                    Status.VIOLATED,
                    Stage.CENTER,
                    "replay",
                    0.0,
                    witness=witness[0],
                    witness_output=witness[1],
                )
    # 2. the attack on every point when security is asked for (it is that metric) ...
    if want_security:
        attack_stage(everything)

    backend = choose_backend(config.backend, network, plain=not staged)
    results: dict[int, PointResult] = {}
    reused = 0

    def finish(i: int) -> None:
        results[i] = PointResult(
            index=int(points.indices[i]),
            label=int(points.y[i]),
            verdict=verdicts.get(i),
            attack_violated=attack_violated.get(i),
            attack_margin=attack_margin.get(i),
            sampling_fraction=None,
        )
        if progress is not None:
            progress(results[i])

    if want_sat:
        open_queries = [Query(i, negations[i]) for i in everything if i not in verdicts]
        if staged and open_queries and not want_security:
            # 2'. without the security metric: a short attack first (the first run, at most
            # QUICK_STEPS steps; violated points leave it after a few), so that the bounds
            # skip what it refutes, and the full attack later only on what they leave open
            quick = dataclasses.replace(
                config.attack, steps=min(config.attack.steps, QUICK_STEPS), restarts=1
            )
            attack_stage([q.index for q in open_queries], quick)
            open_queries = [q for q in open_queries if q.index not in verdicts]
        if staged and open_queries:
            # 3. bounds; they never meet a violated point, so the order of attack and bounds
            # changes only the time spent
            open_queries = _bound_stage(network, open_queries, points, verdicts, config.device)
            if not want_security:
                attack_stage([q.index for q in open_queries])
                open_queries = [q for q in open_queries if q.index not in verdicts]
        for i in sorted(verdicts):
            finish(i)
        # 4. the exact stage
        reused = _decide_open(
            open_queries, config, network, backend.value, points, verdicts, finish
        )
    else:
        for i in everything:
            finish(i)

    if "accuracy" in config.metrics:
        fractions = _sampling(prop, model, points, refs, domain, config, replayer, negations)
        for i, (fraction, _) in fractions.items():
            results[i] = _with_fraction(results[i], fraction)
        sample_witness = {i: w for i, (_, w) in fractions.items() if w}
    else:
        sample_witness = {}
    ordered = tuple(results[i] for i in range(len(points.x)))
    breaches = _invariants(ordered, sample_witness)
    for breach in breaches:
        log.error("invariant broken: %s", breach)
    return RunResult(
        config, network, backend.value, ordered, tuple(breaches), time.monotonic() - start, reused
    )


def _decide_open(
    queries: list[Query],
    config: RunConfig,
    network: Network,
    backend: str,
    points: Points,
    verdicts: dict[int, Verdict],
    finish: Callable[[int], None],
) -> int:
    """Exact verdicts for ``queries``: from the store where it has them, else from workers.

    Returns how many came from the store. Each new verdict is stored as soon as it arrives.
    """
    with contextlib.ExitStack() as stack:
        store = None if config.store_path is None else stack.enter_context(Store(config.store_path))
        prop_key = property_key(config.prop.name, config.prop.params(), config.tau)
        keys = {q.index: point_key(points.x[q.index], int(points.y[q.index])) for q in queries}
        todo: list[Query] = []
        for q in queries:
            hit = None
            if store is not None:
                hit = store.lookup(
                    network.sha256, prop_key, keys[q.index], backend, config.timeout_s
                )
            if hit is None:
                todo.append(q)
            else:
                verdicts[q.index] = hit
                finish(q.index)
        reused = len(queries) - len(todo)
        if reused:
            log.info("reused %d stored verdict(s) from %s", reused, config.store_path)
        if todo:
            for query, verdict in _exact(todo, config, network, backend):
                verdicts[query.index] = verdict
                if store is not None and is_reusable(verdict):
                    store.put(
                        network.sha256,
                        prop_key,
                        keys[query.index],
                        backend,
                        config.timeout_s,
                        verdict,
                    )
                finish(query.index)
        return reused


def _exact(
    queries: list[Query], config: RunConfig, network: Network, backend: str
) -> Iterator[tuple[Query, Verdict]]:
    """Exact verdicts in completion order, from the executor; except for the portfolio with one
    local job, which runs here: its solvers already run in forked racers under a hard time
    limit, so a solver crash or hang cannot reach this process, and no worker has to start and
    load the network (about 2 s per run)."""
    if backend == BackendName.PORTFOLIO.value and config.jobs == 1 and config.executor == "local":
        from robustprop.verify.engine.point_query import PointDecider

        decider = PointDecider(network, Replayer(config.model_path), backend)
        for query in queries:
            try:
                verdict = decider.decide(query, config.timeout_s)
            except RobustpropError as err:
                verdict = Verdict(Status.UNKNOWN, Stage.NONE, backend, 0.0, reason=f"error: {err}")
            except Exception as err:  # as in a pool worker: one query, not the run
                log.exception("query %d failed", query.index)
                verdict = Verdict(
                    Status.UNKNOWN,
                    Stage.NONE,
                    backend,
                    0.0,
                    reason=f"internal error: {type(err).__name__}: {err}",
                )
            yield query, verdict
        return
    with _pool(config, WorkerSpec(config.model_path, backend)) as pool:
        yield from pool.map(queries, config.timeout_s)


def _bound_stage(
    network: Network,
    queries: list[Query],
    points: Points,
    verdicts: dict[int, Verdict],
    device: str,
) -> list[Query]:
    """Batched bound propagation: ``holds`` verdicts into ``verdicts``; the rest, pruned and
    seeded, as queries for the exact stage."""
    t0 = time.monotonic()
    crown = Crown(network, device)
    negations = [q.negation for q in queries]
    centers_y = network.evaluate(points.x[[q.index for q in queries]])
    with _torch_threads(1):
        results = compute_seeds(
            network, bound_negations(network, negations, crown, centers_y=centers_y), crown
        )
    per_point = (time.monotonic() - t0) / len(queries)
    left: list[Query] = []
    for q, r in zip(queries, results, strict=True):
        if r.holds or r.negation is None:
            verdicts[q.index] = Verdict(Status.HOLDS, Stage.BOUNDS, "crown", per_point, r.reason)
        else:
            left.append(Query(q.index, r.negation, r.seed, r.g_bounds))
    log.info("bound stage: %d of %d proved", len(queries) - len(left), len(queries))
    return left


@contextlib.contextmanager
def _torch_threads(count: int) -> Iterator[None]:
    """Run torch ops on ``count`` intra-op threads, then restore the setting.

    The attack and bound stages run many small ops; on a loaded machine (solver processes on
    the other cores) every op's thread hand-off can wait a scheduler slice, which made them
    ~10x slower with two threads than with one on our two-core machine.
    """
    saved = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def raise_metric(metric: str) -> None:
    from robustprop.properties.errors import InputError

    raise InputError(f"unknown metric {metric!r} (choose from {', '.join(METRICS)})")


def _attack(
    prop: Property,
    model: torch.nn.Module,
    points: Points,
    indices: list[int],
    refs: object,
    domain: Domain,
    config: PGDConfig,
    generator: torch.Generator,
    device: str = "cpu",
    batch: int = 64,
) -> list[tuple[np.ndarray, float]]:
    """Best PGD point and its margin per point, in batches (:mod:`robustprop.verify.engine.attack`)."""
    from robustprop.properties.base import References

    assert isinstance(refs, References)
    out: list[tuple[np.ndarray, float]] = []
    for lo in range(0, len(indices), batch):
        part = torch.as_tensor(indices[lo : lo + batch], dtype=torch.int64)
        centers = torch.from_numpy(points.x[part.numpy()]).to(device, torch.float32)
        sub = References(refs.scores[part].to(device, torch.float32), refs.classes[part].to(device))
        found = batched_attack(prop, model, centers, sub, domain, config, generator)
        xs = found.x.double().cpu().numpy()
        values = found.value.cpu().numpy()
        for k in range(part.numel()):
            out.append((xs[k], float(values[k])))
    return out


def _confirm(
    replayer: Replayer, x: np.ndarray, negation: Negation
) -> tuple[np.ndarray, np.ndarray] | None:
    replay = replayer.replay(x, negation)
    return (replay.x, replay.y64) if replay.confirmed else None


def _sampling(
    prop: Property,
    model: torch.nn.Module,
    points: Points,
    refs: object,
    domain: Domain,
    config: RunConfig,
    replayer: Replayer,
    negations: list[Negation],
) -> dict[int, tuple[float, bool]]:
    """Per point: the fraction of samples where P holds, and whether a violation replays."""
    from robustprop.properties.base import References

    assert isinstance(refs, References)
    generator = torch.Generator().manual_seed(config.seed + 1)
    out: dict[int, tuple[float, bool]] = {}
    chunk = max(1, 200_000 // max(1, config.samples * max(1, points.x.shape[1] // 100)))
    for lo in range(0, len(points.x), chunk):
        hi = min(lo + chunk, len(points.x))
        centers = torch.from_numpy(points.x[lo:hi]).to(torch.float32)
        region = prop.region(centers, domain)
        xs = region.sample(config.samples, generator)  # (b, k, n)
        b, k, n = xs.shape
        flat = xs.reshape(b * k, n)
        with torch.no_grad():
            ys = model(flat)
        sub = References(
            refs.scores[lo:hi].to(torch.float32).repeat_interleave(k, dim=0),
            refs.classes[lo:hi].repeat_interleave(k, dim=0),
        )
        ok = prop.predicate(flat, ys, centers.repeat_interleave(k, dim=0), sub).reshape(b, k)
        for r in range(b):
            i = lo + r
            fraction = float(ok[r].float().mean())
            replayed = False
            bad = torch.nonzero(~ok[r]).flatten()
            if bad.numel():
                x_bad = xs[r, int(bad[0])].double().numpy()
                replayed = _confirm(replayer, x_bad, negations[i]) is not None
            out[i] = (fraction, replayed)
    return out


def _with_fraction(p: PointResult, fraction: float) -> PointResult:
    return PointResult(p.index, p.label, p.verdict, p.attack_violated, p.attack_margin, fraction)


def _invariants(points: tuple[PointResult, ...], sample_witness: Mapping[int, bool]) -> list[str]:
    """DESIGN.md §3: ``holds`` never meets a confirmed violation; ``violated`` has a witness."""
    breaches: list[str] = []
    for i, p in enumerate(points):
        v = p.verdict
        if v is None:
            continue
        if v.status is Status.HOLDS and p.attack_violated:
            breaches.append(f"point {p.index}: proved holds, but PGD found a confirmed violation")
        if v.status is Status.HOLDS and sample_witness.get(i):
            breaches.append(
                f"point {p.index}: proved holds, but a uniform sample is a confirmed violation"
            )
        if v.status is Status.VIOLATED and v.witness is None:
            breaches.append(f"point {p.index}: violated without a witness")
    return breaches


def _pool(config: RunConfig, spec: WorkerSpec) -> WorkerPool | RayPool:
    """The executor of the exact stage: local worker processes, or Ray actors."""
    if config.executor == "local":
        return WorkerPool(spec, config.jobs)
    if config.executor == "ray":
        from robustprop.verify.runs.ray_pool import RayPool

        return RayPool(spec, config.jobs, config.address)
    raise InputError(f"unknown executor {config.executor!r} (choose from local, ray)")


def _export_vnnlib(config: RunConfig, points: Points, negations: list[Negation]) -> None:
    """One VNN-LIB file per point and a VNN-COMP style ``instances.csv`` (onnx,vnnlib,timeout)."""
    from robustprop.verify.formats.vnnlib_write import write_vnnlib

    folder = config.export_vnnlib
    assert folder is not None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(
            f"--export-vnnlib {folder}: cannot create ({err.strerror or err})"
        ) from err
    rows = []
    name = config.prop.name
    for i, negation in enumerate(negations):
        file = folder / f"{name}_eps{config.prop.eps:g}_point{int(points.indices[i])}.vnnlib"
        write_vnnlib(negation, file, f"robustprop {name} {config.prop.params()} point {i}")
        rows.append(f"{config.model_path.resolve()},{file.name},{config.timeout_s:g}")
    (folder / "instances.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
