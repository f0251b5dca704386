"""Resumable training state: a robustprop checkpoint plus what ``--resume`` needs.

The file is a regular checkpoint of :mod:`robustprop.training.checkpoint` (same format tag and
fields, so
``verify export`` and :func:`robustprop.training.checkpoint.load_checkpoint` read it) with one more
entry,
``"training"``::

    {"format": "robustprop-training-state", "version": 1,
     "config": JSON of TrainConfig.describe(), "dataset": str, "train_rows": int,
     "epochs_done": int, "optimizer": optimizer.state_dict(),
     "shuffle_rng": ByteTensor, "sampling_rng": ByteTensor, "sampling_device": str,
     "history": JSON list of the per-epoch log records}

Everything in it loads with ``torch.load(weights_only=True)``; it is written atomically, so an
interrupted run keeps the previous epoch's file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import torch
from torch import nn

from robustprop.properties.errors import InputError
from robustprop.training.checkpoint import FORMAT, VERSION, field, read_payload, write_payload

__all__ = ["TrainingState", "load_training_state", "save_training_state"]

STATE_FORMAT: Final = "robustprop-training-state"
STATE_VERSION: Final = 1


@dataclass(frozen=True, eq=False)
class TrainingState:
    """A training run after ``epochs_done`` epochs (tensors on the CPU)."""

    arch: str
    n_inputs: int
    n_classes: int
    model_state: dict[str, torch.Tensor]
    metadata: dict[str, str]
    config: dict[str, object]
    dataset: str
    train_rows: int
    epochs_done: int
    optimizer_state: dict[str, Any]
    shuffle_rng: torch.Tensor
    sampling_rng: torch.Tensor
    sampling_device: str
    history: tuple[dict[str, object], ...]


def _cpu(value: Any) -> Any:
    """``value`` with every tensor inside (dicts, lists, tuples) copied to the CPU."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, dict):
        return {k: _cpu(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_cpu(v) for v in value)
    return value


def save_training_state(path: Path, model: nn.Module, state: TrainingState) -> None:
    """Write ``model``'s weights and ``state`` (its ``model_state`` is ignored) to ``path``."""
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "arch": state.arch,
        "n_inputs": state.n_inputs,
        "n_classes": state.n_classes,
        "state_dict": _cpu(model.state_dict()),
        "metadata": dict(state.metadata),
        "training": {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "config": json.dumps(state.config, sort_keys=True),
            "dataset": state.dataset,
            "train_rows": state.train_rows,
            "epochs_done": state.epochs_done,
            "optimizer": _cpu(state.optimizer_state),
            "shuffle_rng": state.shuffle_rng.cpu().clone(),
            "sampling_rng": state.sampling_rng.cpu().clone(),
            "sampling_device": state.sampling_device,
            "history": json.dumps(list(state.history)),
        },
    }
    write_payload(path, payload)


def _get(raw: dict[str, Any], key: str, kind: type, path: Path) -> Any:
    return field(raw, key, kind, path, "training state")


def load_training_state(path: Path) -> TrainingState:
    """Read a file written by :func:`save_training_state`; :class:`InputError` if it is not one."""
    if not path.is_file():
        raise InputError(f"{path}: no checkpoint to resume from")
    raw = read_payload(path)
    if not isinstance(raw, dict) or raw.get("format") != FORMAT or raw.get("version") != VERSION:
        raise InputError(f"{path}: not a robustprop checkpoint")
    training = raw.get("training")
    if not isinstance(training, dict) or training.get("format") != STATE_FORMAT:
        raise InputError(
            f"{path}: a checkpoint without training state (not written by verify train); "
            "it cannot be resumed"
        )
    if training.get("version") != STATE_VERSION:
        raise InputError(f"{path}: unsupported training state version {training.get('version')!r}")
    try:
        config = json.loads(_get(training, "config", str, path))
        history = json.loads(_get(training, "history", str, path))
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: damaged training state ({err})") from err
    if not isinstance(config, dict) or not isinstance(history, list):
        raise InputError(f"{path}: damaged training state (config or history)")
    return TrainingState(
        arch=_get(raw, "arch", str, path),
        n_inputs=_get(raw, "n_inputs", int, path),
        n_classes=_get(raw, "n_classes", int, path),
        model_state=_get(raw, "state_dict", dict, path),
        metadata=_get(raw, "metadata", dict, path),
        config=config,
        dataset=_get(training, "dataset", str, path),
        train_rows=_get(training, "train_rows", int, path),
        epochs_done=_get(training, "epochs_done", int, path),
        optimizer_state=_get(training, "optimizer", dict, path),
        shuffle_rng=_get(training, "shuffle_rng", torch.Tensor, path),
        sampling_rng=_get(training, "sampling_rng", torch.Tensor, path),
        sampling_device=_get(training, "sampling_device", str, path),
        history=tuple(history),
    )
