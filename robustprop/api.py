"""The Python API: what ``verify run`` and ``verify vnnlib`` do, on in-memory models and data.

>>> import robustprop
>>> model = robustprop.load("model.onnx")                       # doctest: +SKIP
>>> result = robustprop.check(model, robustprop.LR(eps=0.01), x) # doctest: +SKIP
>>> result.summary.satisfaction, result.summary.security         # doctest: +SKIP

The command line calls these functions; it adds only flags, printing, files and exit codes.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from robustprop.export.onnx_export import torch_to_onnx
from robustprop.lazy import load as load_heavy
from robustprop.properties import Domain, PGDConfig, Property, References
from robustprop.properties.errors import InputError
from robustprop.verify.engine.attack import batched_attack
from robustprop.verify.engine.backends.base import BackendName
from robustprop.verify.engine.network import InputNormalization, softmax_hint
from robustprop.verify.engine.verdict import Status, Verdict
from robustprop.verify.run.config import RunConfig
from robustprop.verify.run.model import ModelBytes
from robustprop.verify.run.points import Points, PointSelection
from robustprop.verify.run.progress import ProgressBar
from robustprop.verify.run.result import PointResult, RunResult
from robustprop.verify.run.reuse import ALL_STATUSES
from robustprop.verify.run.runner import run
from robustprop.verify.run.stages import Executor, Strategy
from robustprop.verify.run.summary import METRICS
from robustprop.verify.run.vnnlib_check import VnnlibResult
from robustprop.verify.run.vnnlib_check import check_vnnlib as _check_vnnlib

if TYPE_CHECKING:
    import torch

__all__ = [
    "AttackResult",
    "Result",
    "attack",
    "check",
    "check_vnnlib",
    "decide",
    "for_property",
    "load",
]

log = logging.getLogger(__name__)

#: The result of :func:`check`: per-point verdicts, ``.summary``, ``.to_records()``.
Result = RunResult


def load(
    model: Any,
    example_input: Any = None,
    *,
    input_mean: float | Sequence[float] | None = None,
    input_std: float | Sequence[float] | None = None,
) -> ModelBytes:
    """The model as ONNX bytes, read (or exported) once.

    ``model``: a path to an ``.onnx`` file (its external data files, if any, are read from
    its folder and inlined), the file's bytes (self-contained), a :class:`ModelBytes`, or a
    ``torch.nn.Module`` with ``example_input`` (a tensor of one input's shape, batch first),
    exported with ``torch.onnx.export(..., dynamo=False)``.

    ``input_mean`` / ``input_std`` (one value, or one per channel): the model expects
    ``(x − mean) / std`` of a pixel-space ``x``; that step is put in front of it, so points,
    regions and witnesses stay in pixel space (:meth:`ModelBytes.normalized`).
    """
    loaded = _load(model, example_input)
    if input_mean is not None or input_std is not None:
        norm = InputNormalization(
            _stats(0.0 if input_mean is None else input_mean),
            _stats(1.0 if input_std is None else input_std),
        )
        loaded = loaded.normalized(norm)
    return loaded


def for_property(model: ModelBytes, prop: Property) -> ModelBytes:
    """``model`` ready for ``prop``: a final Softmax is dropped for CR (the argmax is
    unchanged; a note is logged) and refused with a hint for SR, LR and SCR (they need the
    logits)."""
    dropped = model.without_final_softmax()
    if dropped is None:
        return model
    if prop.name != "cr":
        raise InputError(f"{model.source}: {softmax_hint(dropped.dropped)}")
    log.warning(
        "%s: its final %s is dropped for cr (the argmax is unchanged); the logits are checked",
        model.source,
        dropped.dropped,
    )
    return dropped


def _load(model: Any, example_input: Any) -> ModelBytes:
    if isinstance(model, ModelBytes):
        return model
    if isinstance(model, str | Path):
        return ModelBytes.read(model)
    if isinstance(model, bytes | bytearray):
        return ModelBytes.of(bytes(model), "<onnx bytes>")
    torch = load_heavy("torch")
    if isinstance(model, torch.nn.Module):
        if example_input is None:
            raise InputError(
                f"load({type(model).__name__}): a torch module needs example_input "
                "(a tensor of one batch of inputs) to be exported to ONNX"
            )
        was_training = model.training
        model.eval()
        try:
            example = torch.as_tensor(_array(example_input), dtype=torch.float32)
            data = torch_to_onnx(model, example)
        finally:
            model.train(was_training)
        return ModelBytes(data, f"<torch {type(model).__name__}>")
    raise InputError(
        f"load: expected an ONNX path, bytes or a torch.nn.Module, got {type(model).__name__}"
    )


def _stats(value: float | Sequence[float]) -> tuple[float, ...]:
    values = np.atleast_1d(np.asarray(_array(value), dtype=np.float64)).reshape(-1)
    return tuple(float(v) for v in values)


def check(
    model: Any,
    prop: Property,
    x: Any = None,
    y: Any = None,
    *,
    data: str | Path | None = None,
    points: int = 100,
    split: str = "test",
    sample_seed: int | None = None,
    data_dir: Path | None = None,
    metrics: Sequence[str] = METRICS,
    timeout: float = 60.0,
    jobs: int = 1,
    store: str | Path | None = None,
    reuse: Iterable[Status | str] = ALL_STATUSES,
    trust_store: bool = False,
    max_time: float | None = None,
    progress: bool | Callable[[PointResult], None] = False,
    backend: BackendName | str = "auto",
    strategy: Strategy | str = Strategy.STAGED,
    tau: float = 1e-6,
    attack_config: PGDConfig | None = None,
    samples: int = 1000,
    seed: int = 0,
    domain: Domain | None = None,
    device: str = "cpu",
    executor: Executor | str = Executor.LOCAL,
    address: str | None = None,
    export_vnnlib: Path | None = None,
    input_mean: float | Sequence[float] | None = None,
    input_std: float | Sequence[float] | None = None,
    argv: Sequence[str] | None = None,
) -> RunResult:
    """Decide ``prop`` around each point; measure security and accuracy there too.

    Points: ``x`` (``(N, n)`` or ``(N, C, H, W)``, array or tensor, values in the model's
    input domain) with optional integer labels ``y``; or ``data`` (a dataset name or ``.npz``,
    its first ``points`` rows of ``split``, or a seeded sample with ``sample_seed``); or
    neither: the dataset recorded in the model's metadata.
    ``store``: a SQLite verdict cache (``None``: none), untrusted: a stored ``violated`` is
    reused when its witness replays, a stored ``holds`` / ``unknown`` only when its status is
    in ``reuse``; every reused verdict is marked (``PointResult.reused``, ``result.store``);
    ``trust_store`` records that the caller rests decisions on the unchecked ones.
    ``timeout``: wall time per point of the exact stage; ``max_time``: of the whole run (points
    left undecided are ``unknown``, "run time limit"). ``progress``: a bar on stderr, or a
    callable given each point's result as it is decided. ``input_mean`` / ``input_std``: the
    model's input normalisation (see :func:`load`); points stay in pixel space. A final
    Softmax is dropped for CR and refused for the other properties (:func:`for_property`).
    ``argv``: the command line to record in the run's document (default: ``sys.argv``).
    Raises :class:`~robustprop.verify.run.signals.Interrupted` (a KeyboardInterrupt) with
    ``.result``, what was decided, when interrupted.
    """
    loaded = for_property(load(model, input_mean=input_mean, input_std=input_std), prop)
    config = RunConfig(
        model=loaded,
        prop=prop,
        points=_points(loaded, x, y, data, split, points, sample_seed, data_dir),
        metrics=tuple(metrics),
        backend=str(getattr(backend, "value", backend)),
        timeout_s=timeout,
        jobs=jobs,
        tau=tau,
        attack=attack_config or PGDConfig.strong(),
        samples=samples,
        seed=seed,
        domain=domain,
        store_path=None if store is None else Path(store),
        reuse=_statuses(reuse),
        store_trusted=trust_store,
        max_time_s=max_time,
        strategy=Strategy(strategy),
        executor=Executor(executor),
        address=address,
        export_vnnlib=export_vnnlib,
        device=device,
        argv=tuple(sys.argv if argv is None else argv),
    )
    if progress is True:
        n = len(config.points.x) if isinstance(config.points, Points) else config.points.count
        bar = ProgressBar(n, label=f"{prop.name} eps={prop.eps:g}")
        try:
            return run(config, bar.update)
        finally:
            bar.close()
    return run(config, progress or None)


def decide(
    model: Any, prop: Property, x0: Any, y0: int | None = None, *, timeout: float = 60.0
) -> Verdict:
    """The satisfaction verdict at one point ``x0`` (``holds``, ``violated`` with a witness,
    or ``unknown`` with the reason)."""
    x = np.asarray(_array(x0), dtype=np.float64).reshape(1, -1)
    y = None if y0 is None else [y0]
    result = check(model, prop, x, y, metrics=("satisfaction",), timeout=timeout)
    verdict = result.points[0].verdict
    assert verdict is not None  # satisfaction was asked for
    return verdict


def check_vnnlib(
    onnx: str | Path,
    spec: str | Path,
    *,
    timeout: float = 60.0,
    backend: BackendName | str = "auto",
    strategy: Strategy | str = Strategy.STAGED,
    attack: bool = True,
) -> VnnlibResult:
    """One VNN-LIB instance: ``result.status`` is ``sat`` / ``unsat`` / ``unknown``;
    ``result.answer`` is VNN-COMP's word for it (``timeout`` where the time ran out)."""
    return _check_vnnlib(
        onnx, spec, backend=backend, timeout_s=timeout, strategy=strategy, attack=attack
    )


@dataclass(frozen=True, eq=False)
class AttackResult:
    """PGD's best point per input, the property's margin there, and whether it violates."""

    x: npt.NDArray[np.float64]
    margin: npt.NDArray[np.float64]
    violated: npt.NDArray[np.bool_]

    def __repr__(self) -> str:
        return f"<AttackResult {int(self.violated.sum())} of {len(self.violated)} violated>"


def attack(
    module: torch.nn.Module,
    prop: Property,
    x: Any,
    y: Any = None,
    *,
    config: PGDConfig | None = None,
    domain: Domain | None = None,
    seed: int = 0,
) -> AttackResult:
    """PGD on a torch module for ``prop`` around each row of ``x`` (the verifier's attack: the
    property's own objectives, random restarts). Not a proof of anything: a violation found
    here is real for ``module``; none found means none found."""
    torch = load_heavy("torch")
    centers = torch.as_tensor(_array(x), dtype=torch.float32).reshape(len(x), -1)
    labels = None if y is None else torch.as_tensor(np.asarray(y), dtype=torch.int64)
    with torch.no_grad():
        y0 = module(centers)
    refs: References = prop.references(y0, labels)
    generator = torch.Generator().manual_seed(seed)
    found = batched_attack(
        prop, module, centers, refs, domain or Domain(), config or PGDConfig.strong(), generator
    )
    margin = found.value.detach().double().numpy()
    return AttackResult(
        found.x.detach().double().numpy(),
        margin,
        prop.violated(found.value.detach()).numpy().astype(bool),
    )


def _statuses(values: Iterable[Status | str]) -> frozenset[Status]:
    out = set()
    for value in values:
        try:
            out.add(Status(value))
        except ValueError as err:
            choices = ", ".join(s.value for s in Status)
            raise InputError(f"reuse: unknown verdict {value!r} (choose from {choices})") from err
    return frozenset(out)


def _array(value: Any) -> npt.NDArray[Any]:
    """A numpy copy of an array-like or a (CPU or GPU) tensor."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _points(
    model: ModelBytes,
    x: Any,
    y: Any,
    data: str | Path | None,
    split: str,
    count: int,
    sample_seed: int | None,
    data_dir: Path | None,
) -> Points | PointSelection:
    if x is not None:
        if data is not None:
            raise InputError("check: give the points as x (and y) or as data, not both")
        xs = np.asarray(_array(x), dtype=np.float64)
        if xs.ndim < 2 or len(xs) == 0:
            raise InputError(f"check: x must hold N >= 1 points (N, n...), got shape {xs.shape}")
        xs = xs.reshape(len(xs), -1)
        if not np.all(np.isfinite(xs)):
            raise InputError("check: x contains NaN or infinite values")
        if y is None:
            ys = np.full(len(xs), -1, dtype=np.int64)  # no labels: --reference output only
        else:
            ys = np.asarray(_array(y)).reshape(-1)
            if ys.shape != (len(xs),) or not np.issubdtype(ys.dtype, np.integer):
                raise InputError(f"check: y must be {len(xs)} integer labels, got {ys.shape}")
            ys = ys.astype(np.int64)
        return Points(xs, ys, np.arange(len(xs), dtype=np.int64), "<arrays>")
    if data is None:
        meta = model.metadata()
        if "dataset" not in meta:
            raise InputError(
                f"data is needed: {model.source} has no 'dataset' in its metadata "
                "(not exported by robustprop); pass x or data"
            )
        if count < 1:
            raise InputError(f"points must be >= 1, got {count}")
        return PointSelection(meta["dataset"], split, count, sample_seed, data_dir, True)
    if count < 1:
        raise InputError(f"points must be >= 1, got {count}")
    return PointSelection(str(data), split, count, sample_seed, data_dir)
