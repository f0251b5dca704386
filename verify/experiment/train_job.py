"""Train one network and export it to ONNX: the body of ``verify train``, as a function.

``verify train`` and ``verify experiment`` both call :func:`train_to_onnx`; it loads the data,
trains (:func:`robustprop.training.loop.train`), exports with the training metadata and a
parity check against onnxruntime (:func:`robustprop.export.onnx_export.export_onnx`), and
returns what happened.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from robustprop.export.onnx_export import export_onnx
from robustprop.training.config import TrainConfig
from robustprop.training.data import load_dataset, subset
from robustprop.training.loop import RunFiles, RunOptions, train

__all__ = ["PARITY_POINTS", "PRESETS", "TrainJob", "TrainSummary", "train_to_onnx"]

#: Test points checked for parity between torch and onnxruntime after export.
PARITY_POINTS: Final = 256

#: The hyper-parameter presets a training run starts from (``paper``: :meth:`TrainConfig.paper`);
#: recorded as the ``preset`` metadata of the ONNX file.
PRESETS: Final[tuple[str, ...]] = ("paper",)


@dataclass(frozen=True)
class TrainJob:
    """Which data to train on and where the ONNX file goes."""

    dataset: str
    output: Path
    data_dir: Path | None = None
    train_limit: int | None = None  # N training rows (None: all)
    preset: str = "paper"
    limit_seed: int | None = None  # None: the first N rows; else a seeded sample of N rows


@dataclass(frozen=True)
class TrainSummary:
    """The outcome of one training run, for printing and for reports."""

    path: Path
    checkpoint: Path
    log: Path
    dataset: str
    train_rows: int
    epochs_done: int
    step_mode: str
    test_accuracy: float | None
    sat_fraction: float | None
    max_abs_diff: float


def train_to_onnx(config: TrainConfig, job: TrainJob, options: RunOptions) -> TrainSummary:
    """Train ``config`` on ``job.dataset`` and write ``job.output`` (module docstring).

    Raises:
        InputError: unknown or unreadable data, unwritable files, a bad resume.
        TrainingInterrupted: Ctrl-C (the checkpoint holds the last finished epoch).
    """
    train_data = load_dataset(job.dataset, "train", job.data_dir)
    test_data = load_dataset(job.dataset, "test", job.data_dir)
    if job.train_limit is not None:
        train_data = subset(train_data, job.train_limit, seed=job.limit_seed)
    files = RunFiles.beside(job.output)
    data_meta = {
        "dataset": train_data.name,
        "input_shape": json.dumps(list(train_data.input_shape)),
        "preset": job.preset,
    }
    result = train(config, train_data, test_data, files, options, data_meta)
    n_classes = max(train_data.n_classes, test_data.n_classes)
    metadata = {
        **data_meta,
        **config.metadata(),
        "arch": config.arch,
        "n_inputs": str(train_data.n_inputs),
        "n_classes": str(n_classes),
        "epochs": str(result.epochs_done),
        "train_rows": str(len(train_data)),
    }
    report = export_onnx(
        result.model, job.output, train_data.n_inputs, metadata, test_data.x[:PARITY_POINTS]
    )
    last = result.history[-1] if result.history else {}
    acc = last.get("test_acc")
    sat = last.get("sat_fraction")
    return TrainSummary(
        path=report.path,
        checkpoint=files.checkpoint,
        log=files.log,
        dataset=train_data.name,
        train_rows=len(train_data),
        epochs_done=result.epochs_done,
        step_mode=result.step_mode,
        test_accuracy=None if acc is None else float(str(acc)),
        sat_fraction=None if sat is None else float(str(sat)),
        max_abs_diff=report.max_abs_diff,
    )
