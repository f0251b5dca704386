"""The model of a run, read once: its bytes, where they came from, their digest.

Every consumer of one run (the IR, the onnxruntime replayer, the metadata, each worker
process) gets these same bytes, so a file replaced on disk while a run is in progress cannot
split it between two models, and the store's key (the digest) names exactly what was checked.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from robustprop.export.metadata import metadata_from_bytes
from robustprop.properties.errors import InputError

__all__ = ["ModelBytes"]


@dataclass(frozen=True, repr=False, eq=False)
class ModelBytes:
    """An ONNX model's serialised bytes; ``source`` names it in messages and documents."""

    data: bytes
    source: str
    path: Path | None = None
    sha256: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha256", hashlib.sha256(self.data).hexdigest())

    @classmethod
    def read(cls, path: str | Path) -> ModelBytes:
        """The file at ``path``; a missing or unreadable file is an InputError naming it."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: no such ONNX file")
        try:
            data = path.read_bytes()
        except OSError as err:
            raise InputError(f"cannot read ONNX model {path}: {err.strerror or err}") from err
        return cls(data, str(path), path)

    def metadata(self) -> dict[str, str]:
        """The model's ``metadata_props`` (dataset, domain, training settings, ...)."""
        return metadata_from_bytes(self.data, self.source)

    def __repr__(self) -> str:
        return f"ModelBytes({self.source!r}, {len(self.data)} bytes, sha256 {self.sha256[:12]})"
