"""Runs reproducible from their record (issue #15, item 4): the run JSON holds the command
line, every setting that changes a number, the versions, the time and the host; ``--json -``
keeps standard output valid JSON; ``--export-vnnlib`` writes a movable folder."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from robustprop.verify.cli.main import cli
from robustprop.verify.run.vnnlib_check import check_vnnlib
from tests.verify.tiny_onnx import mlp_bytes


def _net(folder: Path) -> tuple[Path, Path]:
    """A 2 -> 3 -> 2 network with outputs clipped, and three labelled points."""
    w1 = np.array([[1.0, 0.5], [-1.0, 1.0], [0.5, -1.0]])
    w2 = np.array([[1.0, -1.0, 0.5], [-1.0, 1.0, 0.5]])
    net = folder / "net.onnx"
    net.write_bytes(mlp_bytes([(w1, np.zeros(3)), (w2, np.zeros(2))], clip=(-100.0, 100.0)))
    data = folder / "d.npz"
    x = np.array([[0.2, 0.7], [0.9, 0.1], [0.5, 0.45]], dtype=np.float32)
    np.savez(data, x=x, y=np.array([1, 0, 0]))
    return net, data


def test_the_run_document_records_command_line_settings_versions_time_and_host(
    tmp_path: Path,
) -> None:
    net, data = _net(tmp_path)
    args = ["run", "--property", "sr", "--eps", "0.05", "--delta", "2", "--net", str(net)]
    args += ["--data", str(data), "--points", "3", "--timeout", "7", "--tau", "1e-5"]
    args += ["--attack", "paper", "--attack-steps", "9", "--seed", "3", "--samples", "50"]
    args += ["--input-mean", "0.1", "--input-std", "0.5", "--no-cache", "--json", "-"]
    out = subprocess.run(
        [sys.executable, "-m", "robustprop", *args, "--no-progress"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)  # the whole of standard output is the document
    assert not (tmp_path / "-").exists()
    assert "holds / violated / unknown" in out.stderr  # the summary went to stderr
    run = doc["run"]
    assert run["argv"][1:] == [*args, "--no-progress"]
    started = datetime.fromisoformat(run["started"])
    assert started.utcoffset() is not None and started.utcoffset().total_seconds() == 0
    assert datetime.fromisoformat(run["finished"]) >= started
    assert run["host"]
    settings = doc["settings"]
    assert settings["attack"]["preset"] == "custom" and settings["attack"]["steps"] == 9
    assert settings["attack"]["step_size"] == 0.01  # the paper preset's, kept
    assert (settings["seed"], settings["samples"], settings["tau"]) == (3, 50, 1e-5)
    assert (settings["timeout_s"], settings["strategy"], settings["backend"]) == (
        7,
        "staged",
        "auto",
    )
    assert settings["domain"] == {"lower": 0.0, "upper": 1.0, "from": "default"}
    assert settings["input_normalization"] == {"mean": [0.1], "std": [0.5]}
    assert doc["property"]["params"]["delta"] == 2 and doc["property"]["params"]["eps"] == 0.05
    versions = doc["versions"]
    for name in ("python", "robustprop", "torch", "onnxruntime", "maraboupy", "z3-solver"):
        assert versions[name], name
    assert "highspy" in versions


def test_export_vnnlib_writes_relative_paths_so_the_folder_can_move(tmp_path: Path) -> None:
    first = tmp_path / "a"
    first.mkdir()
    net, data = _net(first)
    base = ["run", "--property", "cr", "--eps", "0.3", "--net", str(net), "--data", str(data)]
    base += ["--points", "2", "--no-cache", "--no-progress", "--metrics", "satisfaction"]
    result = CliRunner().invoke(cli, [*base, "--export-vnnlib", str(first / "specs")])
    assert result.exit_code == 0, result.output
    # normalised: the specs are about the model with its normalisation, written beside them
    result = CliRunner().invoke(
        cli,
        [*base, "--input-mean", "0.5", "--input-std", "2", "--export-vnnlib", str(first / "n")],
    )
    assert result.exit_code == 0, result.output
    moved = tmp_path / "b"
    shutil.move(first, moved)
    rows = (moved / "specs" / "instances.csv").read_text().strip().splitlines()
    for row in rows:
        onnx_path, spec, _ = row.split(",")
        assert not Path(onnx_path).is_absolute() and onnx_path == "../net.onnx"
        assert (moved / "specs" / onnx_path).resolve().samefile(moved / "net.onnx")
        assert (moved / "specs" / spec).is_file()
    onnx_path, spec, _ = (moved / "n" / "instances.csv").read_text().splitlines()[0].split(",")
    assert onnx_path == "net-checked.onnx"
    status = check_vnnlib(moved / "n" / onnx_path, moved / "n" / spec, timeout_s=20).status
    plain = check_vnnlib(moved / "net.onnx", moved / "specs" / spec, timeout_s=20).status
    assert status in ("sat", "unsat") and plain in ("sat", "unsat")
