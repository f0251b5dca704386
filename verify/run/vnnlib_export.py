"""``run --export-vnnlib``: each point's query as a VNN-LIB file, with an ``instances.csv``."""

from __future__ import annotations

import os
from pathlib import Path

from robustprop.properties.errors import InputError
from robustprop.properties.spec import Negation
from robustprop.verify.formats.vnnlib_write import write_vnnlib
from robustprop.verify.run.config import RunConfig
from robustprop.verify.run.points import Points

__all__ = ["export_vnnlib"]


def export_vnnlib(config: RunConfig, points: Points, negations: list[Negation]) -> None:
    """One VNN-LIB file per point and a VNN-COMP style ``instances.csv`` (onnx,vnnlib,timeout)
    whose paths are relative to the folder, so that it can be moved with the model beside it.

    A model changed for the run (input normalisation put in front, a final Softmax dropped)
    or held only in memory is written into the folder as ``<name>.onnx``: the specs are about
    that model, not the file given."""
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
    model = config.model
    if model.path is not None and model.sha256 == model.original_sha256 and not model.external:
        onnx_path = os.path.relpath(model.path.resolve(), folder.resolve())
    else:
        stem = model.path.stem if model.path is not None else "model"
        written = folder / f"{stem}-checked.onnx"
        try:
            written.write_bytes(model.data)
        except OSError as err:
            raise InputError(
                f"--export-vnnlib {folder}: cannot write {written.name} ({err.strerror or err})"
            ) from err
        onnx_path = written.name
    onnx_path = Path(onnx_path).as_posix()
    for i, negation in enumerate(negations):
        file = folder / f"{name}_eps{config.prop.eps:g}_point{int(points.indices[i])}.vnnlib"
        write_vnnlib(negation, file, f"robustprop {name} {config.prop.params()} point {i}")
        rows.append(f"{onnx_path},{file.name},{config.timeout_s:g}")
    (folder / "instances.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
