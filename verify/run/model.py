"""The model of a run, read once: its bytes, where they came from, their digest.

Every consumer of one run (the IR, the onnxruntime replayer, the metadata, each worker
process) gets these same bytes, so a file replaced on disk while a run is in progress cannot
split it between two models, and the store's key (the digest) names exactly what was checked.

A model saved with *external data* (tensors in side files such as ``weights.bin``) is made
self-contained when it is read: each side file is resolved against the model's own folder
(never the current directory), must lie inside that folder (no absolute path, no ``..``, no
symbolic link pointing out of it), and its bytes are inlined into the model. The digest is
the digest of those inlined bytes, so it changes whenever a side file does. Models without
external data keep their bytes (and digest) exactly as they are on disk.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePath

import onnx
from onnx.external_data_helper import ExternalDataInfo

from robustprop.export.metadata import metadata_from_bytes
from robustprop.properties.errors import InputError

__all__ = ["ModelBytes", "self_contained"]


@dataclass(frozen=True, repr=False, eq=False)
class ModelBytes:
    """An ONNX model's serialised, self-contained bytes; ``source`` names it in messages and
    documents; ``external``: the side files inlined into ``data`` (relative to the folder)."""

    data: bytes
    source: str
    path: Path | None = None
    external: tuple[str, ...] = ()
    sha256: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha256", hashlib.sha256(self.data).hexdigest())

    @classmethod
    def read(cls, path: str | Path) -> ModelBytes:
        """The file at ``path`` with its external data inlined; a missing or unreadable file
        (the model or a side file) is an InputError naming it."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: no such ONNX file")
        try:
            raw = path.read_bytes()
        except OSError as err:
            raise InputError(f"cannot read ONNX model {path}: {err.strerror or err}") from err
        data, files = self_contained(raw, str(path), path.parent)
        return cls(data, str(path), path, files)

    @classmethod
    def of(cls, data: bytes, source: str) -> ModelBytes:
        """Bytes held in memory: they must not refer to external data (there is no folder to
        resolve it against)."""
        data, _ = self_contained(data, source, None)
        return cls(data, source)

    def metadata(self) -> dict[str, str]:
        """The model's ``metadata_props`` (dataset, domain, training settings, ...)."""
        return metadata_from_bytes(self.data, self.source)

    def __repr__(self) -> str:
        return f"ModelBytes({self.source!r}, {len(self.data)} bytes, sha256 {self.sha256[:12]})"


def self_contained(data: bytes, source: str, folder: Path | None) -> tuple[bytes, tuple[str, ...]]:
    """``data`` with every external tensor's bytes read from ``folder`` and inlined, and the
    side files read. Bytes that do not parse as ONNX are returned unchanged (the consumers
    report them); bytes without external data are returned as they are."""
    try:
        model = onnx.load_model_from_string(data)
    except Exception:  # not ONNX: the IR reader says so, naming the file
        return data, ()
    external = [t for t in _tensors(model) if t.data_location == onnx.TensorProto.EXTERNAL]
    if not external:
        return data, ()
    if folder is None:
        raise InputError(
            f"{source}: tensor {external[0].name!r} keeps its data in an external file "
            f"({ExternalDataInfo(external[0]).location!r}); load the model from its path"
        )
    files: dict[str, bytes] = {}
    for tensor in external:
        info = ExternalDataInfo(tensor)
        if info.location not in files:
            files[info.location] = _read_side_file(source, folder, tensor.name, info.location)
        blob = files[info.location]
        offset = max(0, int(info.offset or 0))
        end = (
            len(blob) if info.length is None or int(info.length) < 0 else offset + int(info.length)
        )
        if end > len(blob) or offset > len(blob):
            raise InputError(
                f"{source}: tensor {tensor.name!r}: external data file {info.location!r} has "
                f"{len(blob)} bytes, the tensor needs bytes {offset} to {end}"
            )
        tensor.raw_data = blob[offset:end]
        tensor.data_location = onnx.TensorProto.DEFAULT
        del tensor.external_data[:]
    return model.SerializeToString(), tuple(sorted(files))


def _read_side_file(source: str, folder: Path, tensor: str, location: str) -> bytes:
    """The bytes of one external data file, which must lie inside ``folder``."""
    where = f"{source}: tensor {tensor!r}: external data file {location!r}"
    relative = PurePath(location)
    if not location or relative.is_absolute() or location.startswith(("/", "\\")):
        raise InputError(f"{where}: an absolute path (only files beside the model are read)")
    if ".." in relative.parts or ".." in location.replace("\\", "/").split("/"):
        raise InputError(f"{where}: '..' leaves the model's folder {folder}")
    root = os.path.realpath(folder)
    real = os.path.realpath(folder / relative)
    if os.path.commonpath([root, real]) != root:
        raise InputError(f"{where}: a symbolic link out of the model's folder {folder}")
    if not os.path.isfile(real):
        raise InputError(f"{where}: no such file in {folder}")
    try:
        return Path(real).read_bytes()
    except OSError as err:
        raise InputError(f"{where}: cannot read ({err.strerror or err})") from err


def _tensors(model: onnx.ModelProto) -> Iterator[onnx.TensorProto]:
    """Every tensor of the model: initializers and attribute tensors, in subgraphs too."""
    yield from _graph_tensors(model.graph)
    for function in model.functions:
        for node in function.node:
            yield from _node_tensors(node)


def _graph_tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        yield from _node_tensors(node)


def _node_tensors(node: onnx.NodeProto) -> Iterator[onnx.TensorProto]:
    for attr in node.attribute:
        if attr.HasField("t"):
            yield attr.t
        yield from attr.tensors
        if attr.HasField("sparse_tensor"):
            yield attr.sparse_tensor.values
            yield attr.sparse_tensor.indices
        for sparse in attr.sparse_tensors:
            yield sparse.values
            yield sparse.indices
        if attr.HasField("g"):
            yield from _graph_tensors(attr.g)
        for graph in attr.graphs:
            yield from _graph_tensors(graph)
