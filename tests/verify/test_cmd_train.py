"""`verify train` through click's CliRunner: every regime end to end, and bad input → exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import click
import onnx
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner, Result

from robustprop.export.metadata import read_metadata
from robustprop.properties import PROPERTIES
from robustprop.properties.base import REFERENCES
from robustprop.training.config import REGIMES
from robustprop.training.data import DATASET_NAMES, load_dataset
from robustprop.training.models import ARCHITECTURES
from robustprop.training.state import load_training_state
from robustprop.verify.cli.main import cli

torch.set_num_threads(1)

QUICK = [
    "--dataset",
    "fashion-mnist-slice",
    "--epochs",
    "1",
    "--train-limit",
    "256",
    "--pgd-steps",
    "3",
    "--device",
    "cpu",
]


def _train(out: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["train", *QUICK, "-o", str(out), *args])


@pytest.mark.parametrize(
    "args",
    [
        ["--regime", "baseline"],
        ["--regime", "augment", "--sampler", "uniform"],
        ["--regime", "augment", "--sampler", "fgsm"],
        ["--regime", "adversarial", "--sampler", "fgsm"],
        ["--regime", "adversarial", "--sampler", "pgd"],
        ["--regime", "constraint", "--property", "sr"],
        ["--regime", "constraint", "--property", "lr", "--lipschitz", "5"],
        ["--regime", "constraint", "--property", "scr", "--reference", "label"],
    ],
    ids=lambda args: "-".join(a for a in args if not a.startswith("--")),
)
def test_each_regime_trains_and_exports(tmp_path: Path, args: list[str]) -> None:
    out = tmp_path / "model.onnx"
    result = _train(out, *args)
    assert result.exit_code == 0, result.output
    assert "test accuracy" in result.stdout and str(out) in result.stdout
    assert len(result.stdout.strip().splitlines()) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "model.ckpt",
        "model.log.jsonl",
        "model.onnx",
    ]
    onnx.checker.check_model(onnx.load(str(out)), full_check=True)
    meta = read_metadata(out)
    assert meta["dataset"] == "fashion-mnist-slice" and meta["regime"] == args[1]
    assert meta["epochs"] == "1" and meta["train_rows"] == "256" and meta["seed"] == "0"
    assert meta["arch"] == "mlp" and json.loads(meta["input_shape"]) == [1, 28, 28]
    training = json.loads(meta["training"])
    assert training["pgd"]["steps"] == 3 and training["batch_size"] == 128
    if args[1] == "constraint":
        params = json.loads(meta["property_params"])
        assert meta["property"] == args[3] and params["eps"] == 0.1
    x = load_dataset("fashion-mnist-slice", "test").x[:5]
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (scores,) = session.run(None, {"input": x})
    assert scores.shape == (5, 10)
    log = [json.loads(line) for line in (tmp_path / "model.log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1]


def test_flags_override_the_preset(tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    result = _train(
        out,
        *["--regime", "constraint", "--property", "scr", "--eta", "0.7", "--eps", "0.05"],
        *["--alpha", "0.5", "--beta", "2", "--lr", "0.001", "--batch-size", "64"],
        *["--pgd-step-size", "0.005", "--pgd-restarts", "2", "--arch", "mlp-deep", "--seed", "3"],
    )
    assert result.exit_code == 0, result.output
    meta = read_metadata(out)
    training = json.loads(meta["training"])
    assert training["property"] == {"name": "scr", "eps": 0.05, "eta": 0.7, "reference": "output"}
    assert (training["alpha"], training["beta"], training["lr"]) == (0.5, 2.0, 0.001)
    assert training["batch_size"] == 64 and training["eps"] == 0.05
    assert training["pgd"] == {
        "steps": 3,
        "step_size": 0.005,
        "restarts": 2,
        "random_start": True,
        "relative_step": False,
        "center_first": False,
    }
    assert meta["arch"] == "mlp-deep" and meta["seed"] == "3"


def test_resume_from_the_cli(tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    args = ["--regime", "constraint", "--property", "sr"]
    assert _train(out, *args).exit_code == 0
    result = CliRunner().invoke(
        cli, ["train", *QUICK[:2], *QUICK[4:], "--epochs", "2", "-o", str(out), *args, "--resume"]
    )
    assert result.exit_code == 0, result.output
    assert load_training_state(tmp_path / "m.ckpt").epochs_done == 2
    assert read_metadata(out)["epochs"] == "2"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dataset", "mnist-digits"], "unknown dataset 'mnist-digits'"),
        (["--regime", "madry"], "unknown regime 'madry'"),
        (["--property", "sr"], "--property sr is trained only by --regime constraint"),
        (["--regime", "constraint"], "--regime constraint needs --property sr, lr or scr"),
        (["--regime", "constraint", "--property", "cr"], "CR has no differentiable loss"),
        (["--regime", "constraint", "--property", "xr"], "unknown property 'xr'"),
        (["--regime", "constraint", "--property", "scr", "--eta", "1.5"], "eta must lie in"),
        (["--regime", "constraint", "--property", "scr", "--eta", "0"], "eta must lie in"),
        (["--regime", "constraint", "--property", "sr", "--eps", "-0.1"], "--eps must be > 0"),
        (["--eps", "0"], "--eps must be > 0"),
        (["--regime", "constraint", "--property", "sr", "--eta", "0.6"], "has no parameter eta"),
        (["--delta", "5"], "--delta: property parameters need --regime constraint"),
        (["--sampler", "pgd"], "regime baseline takes no sampler"),
        (["--regime", "augment", "--sampler", "pgd"], "samples with uniform or fgsm"),
        (
            ["--regime", "constraint", "--property", "sr", "--reference", "x"],
            "unknown reference 'x'",
        ),
        (["--epochs", "0"], "epochs must be an integer >= 1"),
        (["--lr", "-1"], "lr must be > 0"),
        (["--pgd-steps", "-1"], "PGD steps must be >= 0"),
        (["--arch", "cnn"], "unknown architecture 'cnn'"),
        (["--device", "tpu"], "unknown device 'tpu'"),
        (["--resume"], "no checkpoint to resume from"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "m.onnx"
    base = ["--regime", "baseline"] if "--regime" not in args else []
    result = _train(out, *base, *args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("regime", tuple(REGIMES)),
        ("prop_name", tuple(PROPERTIES)),
        ("sampler", ("uniform", "fgsm", "pgd")),
        ("arch", tuple(ARCHITECTURES)),
        ("reference", REFERENCES),
        ("dataset", (*DATASET_NAMES, "")),  # and file names (the empty file item)
    ],
)
def test_options_complete_from_the_library_tables(option: str, expected: tuple[str, ...]) -> None:
    train = cli.get_command(click.Context(cli), "train")
    assert train is not None
    param = next(p for p in train.params if p.name == option)
    items = param.shell_complete(click.Context(train), "")
    assert tuple(item.value for item in items) == expected


def test_missing_files_exit_2(tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    runner = CliRunner()
    args = ["train", "--regime", "baseline", "-o", str(out), "--device", "cpu"]
    result = runner.invoke(cli, [*args, "--dataset", "fashion-mnist", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2 and "train-images-idx3-ubyte.gz: no such file" in result.stderr
    result = runner.invoke(cli, [*args, "--dataset", str(tmp_path / "absent.npz")])
    assert result.exit_code == 2 and "absent.npz" in result.stderr
    (tmp_path / "file").write_text("not a folder")
    result = runner.invoke(
        cli, ["train", *QUICK, "--regime", "baseline", "-o", str(tmp_path / "file" / "m.onnx")]
    )
    assert result.exit_code == 2 and "is not a directory" in result.stderr


def test_output_folder_is_created(tmp_path: Path) -> None:
    out = tmp_path / "new" / "deeper" / "m.onnx"
    result = CliRunner().invoke(cli, ["train", *QUICK, "--regime", "baseline", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_file()
