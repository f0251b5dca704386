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

Two changes of the model are made here, once, so that every consumer sees them:
:meth:`ModelBytes.normalized` puts an input normalisation ``(x − mean) / std`` in front of it
(:mod:`robustprop.verify.engine.network.normalize`), and
:meth:`ModelBytes.without_final_softmax` drops a classifier's final Softmax (for CR only).
Both change ``data`` and its digest; ``original_sha256`` keeps the digest of the model as given.
A Git LFS pointer file given in place of a model is refused with what to do.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePath

import onnx
from onnx.external_data_helper import ExternalDataInfo

from robustprop.export.metadata import metadata_from_bytes
from robustprop.properties.errors import InputError
from robustprop.verify.engine.network import (
    InputNormalization,
    drop_final_softmax,
    with_input_normalization,
)
from robustprop.verify.formats.text import printable

__all__ = ["LFS_POINTER", "ModelBytes", "self_contained"]

#: How a Git LFS pointer file starts (a checkout without ``git lfs pull``).
LFS_POINTER = b"version https://git-lfs.github.com/spec/"


@dataclass(frozen=True, repr=False, eq=False)
class ModelBytes:
    """An ONNX model's serialised, self-contained bytes; ``source`` names it in messages and
    documents; ``external``: the side files inlined into ``data`` (relative to the folder);
    ``normalization``: the input normalisation put in front of it; ``dropped``: the final op
    removed (``Softmax``), if any; ``original_sha256``: the digest before either change."""

    data: bytes
    source: str
    path: Path | None = None
    external: tuple[str, ...] = ()
    sha256: str = field(init=False)
    normalization: InputNormalization | None = None
    dropped: str = ""
    original_sha256: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha256", hashlib.sha256(self.data).hexdigest())
        if not self.original_sha256:
            object.__setattr__(self, "original_sha256", self.sha256)

    def normalized(self, norm: InputNormalization) -> ModelBytes:
        """This model taking pixel-space inputs: ``(x − mean) / std`` feeds its input."""
        if self.normalization is not None:
            raise InputError(f"{self.source}: its input normalisation is already set")
        data = with_input_normalization(self.data, norm, self.source)
        return dataclasses.replace(
            self, data=data, normalization=norm, original_sha256=self.original_sha256
        )

    def without_final_softmax(self) -> ModelBytes | None:
        """This model without its final Softmax/LogSoftmax, or None when it has none."""
        dropped = drop_final_softmax(self.data, self.source)
        if dropped is None:
            return None
        data, op = dropped
        return dataclasses.replace(
            self, data=data, dropped=op, original_sha256=self.original_sha256
        )

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
        _refuse_lfs_pointer(raw, str(path))
        data, files = self_contained(raw, str(path), path.parent)
        return cls(data, str(path), path, files)

    @classmethod
    def of(cls, data: bytes, source: str) -> ModelBytes:
        """Bytes held in memory: they must not refer to external data (there is no folder to
        resolve it against)."""
        _refuse_lfs_pointer(data, source)
        data, _ = self_contained(data, source, None)
        return cls(data, source)

    def final_op(self) -> str:
        """The op type producing the model's (first) output; empty when it cannot be told."""
        try:
            graph = onnx.load_model_from_string(self.data).graph
        except Exception:  # not ONNX: the IR reader says so, naming the file
            return ""
        if not graph.output:
            return ""
        out = graph.output[0].name
        return next((n.op_type for n in graph.node if out in n.output), "")

    def assumptions(self, domain_given: bool) -> str:
        """One line on what is assumed about a model robustprop did not export (no ``domain``
        metadata while no domain is given, no final Clip) and how to change it; empty for
        robustprop's own models."""
        said = []
        if not domain_given and "domain" not in self.metadata():
            how = "" if self.normalization else ", --input-mean/--input-std for normalised inputs"
            said.append(
                "its inputs are taken in [0, 1] (no 'domain' metadata; --domain LO,HI or "
                f"domain=Domain(lo, hi) to change it{how})"
            )
        if self.final_op() != "Clip":
            said.append("its scores are used unclamped (no final Clip)")
        return f"{self.source}: " + "; ".join(said) if said else ""

    def metadata(self) -> dict[str, str]:
        """The model's ``metadata_props`` (dataset, domain, training settings, ...)."""
        return metadata_from_bytes(self.data, self.source)

    def __repr__(self) -> str:
        return f"ModelBytes({self.source!r}, {len(self.data)} bytes, sha256 {self.sha256[:12]})"


def _refuse_lfs_pointer(data: bytes, source: str) -> None:
    """A Git LFS pointer (the text git keeps in place of a large file) is not a model."""
    if not data.startswith(LFS_POINTER):
        return
    fields = dict(
        line.split(" ", 1)
        for line in data[:1024].decode("ascii", "replace").splitlines()
        if " " in line
    )
    what = printable(", ".join(f"{k} {fields[k]}" for k in ("oid", "size") if k in fields))
    raise InputError(
        f"{source} is a Git LFS pointer file ({what}), not the ONNX model: fetch the file with "
        "`git lfs pull` (in GitHub Actions: `lfs: true` in the actions/checkout step)"
    )


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
