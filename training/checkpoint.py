"""Checkpoints: a trained network plus what is needed to rebuild it and describe it.

On disk (``torch.save``, read back with ``weights_only=True``) a checkpoint is a dict::

    {"format": "robustprop-checkpoint", "version": 1, "arch": str, "n_inputs": int,
     "n_classes": int, "state_dict": {name: tensor}, "metadata": {str: str}}

``metadata`` carries the training facts that ``verify export`` copies into the ONNX file
(dataset, regime, property parameters, seed, ...; see :mod:`robustprop.export.metadata`).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import torch
from torch import nn

from robustprop.properties.errors import InputError
from robustprop.training.cache import atomic_write
from robustprop.training.models import build_model

__all__ = [
    "Checkpoint",
    "field",
    "load_checkpoint",
    "read_payload",
    "save_checkpoint",
    "write_payload",
]

FORMAT: Final = "robustprop-checkpoint"
VERSION: Final = 1


@dataclass(frozen=True, eq=False)
class Checkpoint:
    """A loaded checkpoint; :meth:`build` turns it back into a network in eval mode."""

    arch: str
    n_inputs: int
    n_classes: int
    state_dict: dict[str, torch.Tensor]
    metadata: dict[str, str]
    path: Path

    def build(self) -> nn.Module:
        """The network of ``arch`` with these weights (CPU, eval mode)."""
        try:
            model = build_model(self.arch, self.n_inputs, self.n_classes)
        except InputError as err:  # unknown arch or sizes: name the file they came from
            raise InputError(f"{self.path}: {err}") from err
        try:
            model.load_state_dict(self.state_dict, strict=True)
        except RuntimeError as err:  # missing/unexpected keys or shape mismatches
            summary = " ".join(str(err).split())
            raise InputError(
                f"{self.path}: weights do not fit architecture {self.arch!r} "
                f"({self.n_inputs} -> {self.n_classes}): {summary}"
            ) from err
        return model.eval()


def save_checkpoint(
    path: Path,
    model: nn.Module,
    arch: str,
    n_inputs: int,
    n_classes: int,
    metadata: Mapping[str, str],
) -> None:
    """Write ``model``'s weights (moved to CPU) and its description atomically to ``path``."""
    bad = {k: v for k, v in metadata.items() if not isinstance(k, str) or not isinstance(v, str)}
    if bad:
        raise InputError(f"checkpoint metadata must map str to str; bad entries: {bad!r}")
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "arch": arch,
        "n_inputs": int(n_inputs),
        "n_classes": int(n_classes),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "metadata": dict(metadata),
    }
    write_payload(path, payload)


def write_payload(path: Path, payload: Mapping[str, Any]) -> None:
    """``torch.save`` ``payload`` to ``path`` atomically (the previous file survives a crash)."""
    buffer = io.BytesIO()
    torch.save(dict(payload), buffer)

    def write(handle: IO[bytes]) -> None:
        handle.write(buffer.getbuffer())

    if not path.parent.is_dir():
        raise InputError(f"{path}: directory {path.parent} does not exist")
    try:
        atomic_write(path, write)
    except OSError as err:
        raise InputError(f"{path}: cannot write checkpoint ({err})") from err


def read_payload(path: Path) -> Any:
    """``torch.load`` with ``weights_only=True``; any failure is an InputError naming ``path``."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    # torch.load raises many types on foreign or damaged bytes (UnpicklingError,
    # RuntimeError from the zip reader, EOFError, UnicodeDecodeError, ...); none of them is a
    # fault of ours, so every one is reported as a bad input file.
    except Exception as err:
        summary = " ".join(str(err).split())[:300]
        raise InputError(f"{path}: not a readable robustprop checkpoint ({summary})") from err


def field(
    raw: Mapping[str, Any], key: str, kind: type, path: Path, what: str = "checkpoint"
) -> Any:
    """``raw[key]`` if it is a ``kind`` (bools are not ints), else an InputError naming it."""
    value = raw.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise InputError(
            f"{path}: {what} field {key!r} must be {kind.__name__}, got {type(value).__name__}"
        )
    return value


def load_checkpoint(path: Path) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint` (no code is unpickled)."""
    if not path.is_file():
        raise InputError(f"{path}: no such checkpoint file")
    raw = read_payload(path)
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise InputError(f"{path}: not a robustprop checkpoint (no format tag {FORMAT!r})")
    if raw.get("version") != VERSION:
        raise InputError(f"{path}: unsupported checkpoint version {raw.get('version')!r}")
    state = field(raw, "state_dict", dict, path)
    metadata = field(raw, "metadata", dict, path)
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(f"{path}: checkpoint state_dict holds non-tensor values")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise InputError(f"{path}: checkpoint metadata must map str to str")
    return Checkpoint(
        arch=field(raw, "arch", str, path),
        n_inputs=field(raw, "n_inputs", int, path),
        n_classes=field(raw, "n_classes", int, path),
        state_dict=state,
        metadata=metadata,
        path=path,
    )
