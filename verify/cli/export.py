"""`verify export`: a training checkpoint → an ONNX file checked against torch on real data."""

from __future__ import annotations

import json
from pathlib import Path

import click

from robustprop.export.onnx_export import export_onnx
from robustprop.properties.errors import InputError
from robustprop.training.checkpoint import load_checkpoint
from robustprop.training.data import load_dataset
from robustprop.verify.cli.options import FILE, data_dir_option, data_option, output_file_option
from robustprop.verify.experiment.train_job import PARITY_POINTS

__all__ = ["command"]


@click.command("export")
@click.argument("checkpoint", type=FILE)
@output_file_option(required=True, help="ONNX file to write (replaced atomically).")
@data_option(
    "Dataset whose test split feeds the parity check (default: the checkpoint's).", default=None
)
@data_dir_option()
def command(checkpoint: Path, output: Path, dataset: str | None, data_dir: Path | None) -> None:
    """Export CHECKPOINT to ONNX (opset >= 13, clamp as Clip, training metadata).

    Under onnxruntime the ONNX model must match the torch model on the first 256 test points
    of the dataset: max abs difference <= 1e-5 * max(1, largest |score|).
    """
    ckpt = load_checkpoint(checkpoint)
    name = dataset or ckpt.metadata.get("dataset")
    if not name:
        raise InputError(f"{checkpoint}: no 'dataset' in its metadata; pass --data NAME")
    data = load_dataset(name, "test", data_dir)
    if data.n_inputs != ckpt.n_inputs:
        raise InputError(
            f"dataset {data.name} has {data.n_inputs} inputs per point but {checkpoint} "
            f"expects {ckpt.n_inputs}"
        )
    metadata = {
        "dataset": data.name,
        "input_shape": json.dumps(list(data.input_shape)),
        "domain": json.dumps([0.0, 1.0]),
        **ckpt.metadata,
        "arch": ckpt.arch,
        "n_inputs": str(ckpt.n_inputs),
        "n_classes": str(ckpt.n_classes),
    }
    report = export_onnx(ckpt.build(), output, ckpt.n_inputs, metadata, data.x[:PARITY_POINTS])
    click.echo(
        f"wrote {report.path}: opset {report.opset}, max abs diff {report.max_abs_diff:.2e} "
        f"vs torch on {report.n_checked} {data.name} test points"
    )
