"""The training loop: epochs of Adam steps, per-epoch log and checkpoint, resume.

:func:`train` runs ``config.epochs`` epochs of the regime over the training set and, after
each epoch, measures test accuracy, writes the resumable checkpoint
(:mod:`robustprop.training.state`,
atomically) and rewrites the JSON-lines log from the run's history (so the log always
matches the checkpoint). An initial checkpoint (epoch 0) is written before the first step,
so an interrupted run always leaves one; Ctrl-C raises :class:`TrainingInterrupted`.

Determinism: the network is initialised under ``torch.manual_seed(seed)`` (in a forked RNG,
the global one is left alone); batches are shuffled by a CPU ``torch.Generator`` seeded with
``seed``; samplers draw from a generator on the device seeded from ``seed``. On the CPU the
same seed, data and configuration give bit-identical weights, and resuming from the epoch-k
checkpoint continues exactly as the uninterrupted run (the optimizer and both generators are
saved).

Per-epoch record (one JSON object per line): ``epoch``, ``ce`` (mean cross-entropy at the
images), ``constraint_loss`` (mean ``L_C`` at the PGD points; constraint regime),
``sample_ce`` (mean cross-entropy at the sampled points; augment, adversarial),
``train_acc`` (on the training batches, before each step), ``test_acc``, ``sat_fraction``
(fraction of sampled points satisfying the property, see :mod:`robustprop.training.regimes`),
``seconds`` and ``images_per_s``. Entries a regime does not have are ``null``.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor, nn
from tqdm import tqdm

from robustprop.properties.errors import InputError
from robustprop.training.cache import atomic_write
from robustprop.training.config import TrainConfig
from robustprop.training.data import Dataset
from robustprop.training.models import build_model
from robustprop.training.regimes import STATS, Regime, make_regime
from robustprop.training.state import TrainingState, load_training_state, save_training_state
from robustprop.training.steps import StepRunner

__all__ = [
    "RunFiles",
    "RunOptions",
    "TrainResult",
    "TrainingInterrupted",
    "evaluate_accuracy",
    "resolve_device",
    "train",
]

logger = logging.getLogger(__name__)

#: Mixed into the seed of the sampling generator, so it differs from the shuffling one.
_SAMPLING_SEED_OFFSET: Final = 0x5EED_5A3D_1E5
_EVAL_CHUNK: Final = 2048
_POSTFIX_EVERY_S: Final = 0.5


@dataclass(frozen=True)
class RunFiles:
    """Where a run keeps its checkpoint and its per-epoch log."""

    checkpoint: Path
    log: Path

    @classmethod
    def beside(cls, output: Path) -> RunFiles:
        """``model.ckpt`` and ``model.log.jsonl`` beside ``model.onnx``."""
        stem = output.with_suffix("") if output.suffix == ".onnx" else output
        return cls(stem.with_name(stem.name + ".ckpt"), stem.with_name(stem.name + ".log.jsonl"))


@dataclass(frozen=True)
class RunOptions:
    """How to run (not what to train): device, resume, progress bar, CUDA graphs."""

    device: torch.device
    resume: bool = False
    progress: bool = False
    cuda_graphs: bool = True


@dataclass(frozen=True, eq=False)
class TrainResult:
    """The trained network (CPU, eval mode) and the run's history."""

    model: nn.Module
    history: tuple[dict[str, object], ...]
    epochs_done: int
    resumed_from: int
    step_mode: str


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training; ``checkpoint`` holds the last finished epoch."""

    def __init__(self, epochs_done: int, checkpoint: Path) -> None:
        super().__init__(f"interrupted after {epochs_done} epochs; checkpoint {checkpoint}")
        self.epochs_done = epochs_done
        self.checkpoint = checkpoint


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise InputError(
                f"device {name!r}: CUDA is not available here (torch {torch.__version__}); "
                "use --device cpu or auto"
            )
        return torch.device(name)
    raise InputError(f"unknown device {name!r}: choose auto, cpu or cuda")


def _as_tensor(array: npt.NDArray[Any], device: torch.device) -> Tensor:
    # torch.from_numpy warns on read-only arrays (np.load gives those); copy them.
    writable = array if array.flags.writeable else np.array(array)
    return torch.from_numpy(writable).to(device)


def evaluate_accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    """Fraction of rows of ``x`` whose highest score is their label ``y``."""
    if len(y) == 0:
        return float("nan")
    was_training = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=x.device)
    with torch.no_grad():
        for start in range(0, len(y), _EVAL_CHUNK):
            out = model(x[start : start + _EVAL_CHUNK])
            correct += (out.argmax(dim=1) == y[start : start + _EVAL_CHUNK]).sum()
    model.train(was_training)
    return int(correct) / len(y)


def _record(
    epoch: int, totals: list[float], regime: Regime, seconds: float, test_acc: float
) -> dict[str, object]:
    t = dict(zip(STATS, totals, strict=True))
    points, sampled = t["points"], t["sampled"]

    def mean(key: str, over: float) -> float | None:
        return t[key] / over if key in regime.reports and over > 0 else None

    return {
        "epoch": epoch,
        "ce": t["ce"] / points if points else None,
        "constraint_loss": mean("constraint_loss", points),
        "sample_ce": mean("sample_ce", sampled),
        "train_acc": t["correct"] / points if points else None,
        "test_acc": test_acc,
        "sat_fraction": mean("satisfied", sampled),
        "seconds": round(seconds, 3),
        "images_per_s": round(points / seconds, 1) if seconds > 0 else None,
    }


def _postfix(totals: Tensor, regime: Regime) -> dict[str, str]:
    t = dict(zip(STATS, totals.tolist(), strict=True))
    points = max(t["points"], 1.0)
    shown = {"ce": f"{t['ce'] / points:.4f}"}
    if "constraint_loss" in regime.reports:
        shown["lc"] = f"{t['constraint_loss'] / points:.4f}"
    if "sample_ce" in regime.reports:
        shown["ce'"] = f"{t['sample_ce'] / max(t['sampled'], 1.0):.4f}"
    shown["acc"] = f"{t['correct'] / points:.3f}"
    if "satisfied" in regime.reports:
        shown["sat"] = f"{t['satisfied'] / max(t['sampled'], 1.0):.3f}"
    return shown


def _write_log(path: Path, history: list[dict[str, object]]) -> None:
    text = "".join(json.dumps(record) + "\n" for record in history)

    def write(handle: IO[bytes]) -> None:
        handle.write(text.encode())

    try:
        atomic_write(path, write)
    except OSError as err:
        raise InputError(f"{path}: cannot write the training log ({err})") from err


def _adam(model: nn.Module, lr: float, capturable: bool) -> torch.optim.Adam:
    if capturable:
        return torch.optim.Adam(model.parameters(), lr=lr, capturable=True)
    return torch.optim.Adam(model.parameters(), lr=lr)


def _set_capturable(optimizer: torch.optim.Optimizer, capturable: bool) -> None:
    """After ``load_state_dict``: the ``capturable`` flag and step tensors of this run.

    A checkpoint from a CUDA-graph run carries ``capturable=True`` and device step counters;
    one from an eager run the opposite. Adam keeps the step on the parameter's device exactly
    when capturable.
    """
    for group in optimizer.param_groups:
        group["capturable"] = capturable
        for param in group["params"]:
            state = optimizer.state.get(param, {})
            step = state.get("step")
            if isinstance(step, Tensor):
                where = param.device if capturable else torch.device("cpu")
                state["step"] = step.to(where, torch.float32)


def _check_resumable(
    state: TrainingState, config: TrainConfig, data: Dataset, n_classes: int, path: Path
) -> None:
    wanted = config.describe()
    differ = sorted(
        key
        for key in set(wanted) | set(state.config)
        if key != "epochs" and wanted.get(key) != state.config.get(key)
    )
    if differ:
        shown = "; ".join(
            f"{k}: checkpoint {json.dumps(state.config.get(k))}, now {json.dumps(wanted.get(k))}"
            for k in differ
        )
        raise InputError(f"{path}: cannot resume with different settings ({shown})")
    if state.dataset != data.name or state.train_rows != len(data):
        raise InputError(
            f"{path}: cannot resume: trained on {state.train_rows} rows of {state.dataset}, "
            f"now {len(data)} rows of {data.name}"
        )
    if (state.n_inputs, state.n_classes) != (data.n_inputs, n_classes):
        raise InputError(
            f"{path}: cannot resume: network {state.n_inputs} -> {state.n_classes}, "
            f"data {data.n_inputs} -> {n_classes}"
        )
    if state.epochs_done > config.epochs:
        raise InputError(
            f"{path}: the checkpoint already holds {state.epochs_done} epochs, "
            f"more than the {config.epochs} asked for"
        )


def train(
    config: TrainConfig,
    train_data: Dataset,
    test_data: Dataset,
    files: RunFiles,
    options: RunOptions,
    metadata: Mapping[str, str] | None = None,
) -> TrainResult:
    """Train a network on ``train_data`` as ``config`` says (module docstring).

    ``metadata`` (e.g. dataset, input shape) is stored in the checkpoint with the config's
    own (:meth:`TrainConfig.metadata`) and the number of finished epochs.

    Raises:
        InputError: unwritable files; with ``options.resume``, a missing checkpoint or one
            trained with other settings or data.
        TrainingInterrupted: on Ctrl-C (the checkpoint holds the last finished epoch).
    """
    device = options.device
    n_classes = max(train_data.n_classes, test_data.n_classes)
    if test_data.n_inputs != train_data.n_inputs:
        raise InputError(
            f"test data has {test_data.n_inputs} inputs per point, training data "
            f"{train_data.n_inputs}"
        )
    if len(train_data) == 0:
        raise InputError(f"dataset {train_data.name} has no training points")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = build_model(config.arch, train_data.n_inputs, n_classes)
    model = model.to(device).train()
    graphs = options.cuda_graphs and device.type == "cuda"
    optimizer = _adam(model, config.lr, capturable=graphs)
    shuffle = torch.Generator().manual_seed(config.seed)
    sampling = torch.Generator(device=device).manual_seed(config.seed + _SAMPLING_SEED_OFFSET)
    history: list[dict[str, object]] = []
    start = 0
    if options.resume:
        state = load_training_state(files.checkpoint)
        _check_resumable(state, config, train_data, n_classes, files.checkpoint)
        model.load_state_dict(state.model_state)
        optimizer.load_state_dict(state.optimizer_state)
        _set_capturable(optimizer, graphs)
        shuffle.set_state(state.shuffle_rng)
        if state.sampling_device == device.type:
            sampling.set_state(state.sampling_rng)
        else:
            logger.warning(
                "checkpoint sampled on %s, resuming on %s: sampling restarts from a seed "
                "(the run will not be bit-identical to an uninterrupted one)",
                state.sampling_device,
                device.type,
            )
            sampling.manual_seed(config.seed + _SAMPLING_SEED_OFFSET + state.epochs_done)
        history = list(state.history)
        start = state.epochs_done
        logger.info("resuming %s after epoch %d", files.checkpoint, start)

    meta = {**(metadata or {}), **config.metadata(), "train_rows": str(len(train_data))}

    def save(done: int) -> None:
        snapshot = TrainingState(
            arch=config.arch,
            n_inputs=train_data.n_inputs,
            n_classes=n_classes,
            model_state={},
            metadata={**meta, "epochs": str(done)},
            config=config.describe(),
            dataset=train_data.name,
            train_rows=len(train_data),
            epochs_done=done,
            optimizer_state=optimizer.state_dict(),
            shuffle_rng=shuffle.get_state(),
            sampling_rng=sampling.get_state(),
            sampling_device=device.type,
            history=tuple(history),
        )
        save_training_state(files.checkpoint, model, snapshot)
        _write_log(files.log, history)

    regime = make_regime(config)
    if not options.resume:
        regime.constrain(model)  # the lipschitz regime starts inside its constraint
        if files.checkpoint.exists():
            logger.warning(
                "starting afresh over the existing checkpoint %s (resume to continue it instead)",
                files.checkpoint,
            )
        save(0)
    x_train = _as_tensor(train_data.x, device)
    y_train = _as_tensor(train_data.y, device)
    x_test = _as_tensor(test_data.x, device)
    y_test = _as_tensor(test_data.y, device)
    runner = StepRunner(
        model,
        optimizer,
        regime,
        x_train,
        y_train,
        sampling,
        batch_size=config.batch_size,
        graphs=graphs,
    )
    n, b = len(train_data), config.batch_size
    n_batches = (n + b - 1) // b
    done = start
    try:
        for epoch in range(start + 1, config.epochs + 1):
            runner.reset_totals()
            regime.start_epoch(epoch, n_batches)
            order = torch.randperm(n, generator=shuffle).to(device)
            began = time.perf_counter()
            with tqdm(
                total=n_batches,
                desc=f"epoch {epoch}/{config.epochs}",
                unit="batch",
                file=sys.stderr,
                disable=not options.progress,
                leave=False,
                dynamic_ncols=True,
            ) as bar:
                shown = began
                for i in range(n_batches):
                    runner.step(order[i * b : (i + 1) * b])
                    bar.update(1)
                    now = time.perf_counter()
                    if options.progress and now - shown >= _POSTFIX_EVERY_S:
                        bar.set_postfix(_postfix(runner.totals, regime), refresh=False)
                        shown = now
            totals = runner.totals.tolist()  # waits for the device
            seconds = time.perf_counter() - began
            record = _record(
                epoch, totals, regime, seconds, evaluate_accuracy(model, x_test, y_test)
            )
            history.append(record)
            save(epoch)
            done = epoch
            logger.info("epoch %d: %s", epoch, json.dumps(record))
    except KeyboardInterrupt as err:
        raise TrainingInterrupted(done, files.checkpoint) from err
    trained = model.to("cpu").eval()
    return TrainResult(trained, tuple(history), done, start, runner.mode)
