"""``verify vnnlib`` by VNN-COMP's conventions, on the shared VNN-COMP instances: the result
file (a sat witness re-run with onnxruntime meets the spec), exit 0 on sat, ``timeout``, the
batch over an instances.csv, and the competition's ``run_instance.sh``."""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from click.testing import CliRunner

from robustprop.verify.cli.main import cli
from robustprop.verify.formats.vnnlib import read_vnnlib

ROOT = Path(__file__).resolve().parents[3]
VNNCOMP = ROOT.parent / "shared" / "benchmarks" / "vnncomp"
TEST = VNNCOMP / "test"
ACAS = VNNCOMP / "acasxu"

pytestmark = pytest.mark.skipif(not VNNCOMP.is_dir(), reason="../shared/benchmarks is absent")


def expected(folder: Path, onnx: str, vnnlib: str) -> str:
    for line in (folder / "ground_truth.csv").read_text().splitlines()[1:]:
        cells = line.split(",")
        if cells[0] == onnx and cells[1] == vnnlib:
            return cells[2]
    raise AssertionError(f"{onnx},{vnnlib} not in {folder}/ground_truth.csv")


def run(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["vnnlib", *args])
    return result.exit_code, result.output


def check_witness(text: str, onnx: Path, spec: Path) -> None:
    """The result file's counterexample lies in the spec's input box and, re-run with
    onnxruntime, meets its output constraints; the Y values written are onnxruntime's."""
    values = dict(re.findall(r"\(([XY]_\d+) (\S+?)\)", text))
    x = np.array([float(values[f"X_{i}"]) for i in range(sum(k[0] == "X" for k in values))])
    y_written = np.array([float(values[f"Y_{j}"]) for j in range(sum(k[0] == "Y" for k in values))])
    session = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in feed.shape]
    y = session.run(None, {feed.name: x.astype(np.float32).reshape(shape)})[0].reshape(-1)
    np.testing.assert_allclose(y_written, y, rtol=0, atol=1e-7)
    negation = read_vnnlib(spec, x.size, y.size).negation
    assert negation is not None and negation.is_satisfied_by(x, y.astype(np.float64))


@pytest.mark.parametrize(
    ("folder", "onnx", "vnnlib"),
    [
        (TEST, "onnx/test_sat.onnx", "vnnlib/test_prop.vnnlib"),
        (TEST, "onnx/test_unsat.onnx", "vnnlib/test_prop.vnnlib"),
        (ACAS, "onnx/ACASXU_run2a_1_9_batch_2000.onnx", "vnnlib/prop_7.vnnlib"),
        (ACAS, "onnx/ACASXU_run2a_1_6_batch_2000.onnx", "vnnlib/prop_3.vnnlib"),
    ],
)
def test_results_file_matches_ground_truth(
    tmp_path: Path, folder: Path, onnx: str, vnnlib: str
) -> None:
    out = tmp_path / "result.txt"
    net, spec = folder / onnx, folder / vnnlib
    code, output = run(["--net", str(net), "--spec", str(spec), "--results-file", str(out)])
    assert code == 0, output  # sat exits 0 too: a result was written
    text = out.read_text()
    answer = expected(folder, onnx, vnnlib)
    assert text.splitlines()[0] == answer
    assert output.startswith(text)  # stdout carries the same text
    if answer == "sat":
        check_witness(text, net, spec)
    else:
        assert text == "unsat\n"


def test_gzip_instance_and_old_exit_codes(tmp_path: Path) -> None:
    net = tmp_path / "n.onnx.gz"
    spec = tmp_path / "p.vnnlib.gz"
    net.write_bytes(gzip.compress((TEST / "onnx/test_sat.onnx").read_bytes()))
    spec.write_bytes(gzip.compress((TEST / "vnnlib/test_prop.vnnlib").read_bytes()))
    out = tmp_path / "r.txt"
    args = ["--net", str(net), "--spec", str(spec), "--results-file", str(out)]
    code, _ = run([*args, "--exit-codes", "verdict"])
    assert code == 1 and out.read_text().startswith("sat\n")
    check_witness(out.read_text(), TEST / "onnx/test_sat.onnx", TEST / "vnnlib/test_prop.vnnlib")


def test_an_instance_out_of_time_reports_timeout(tmp_path: Path) -> None:
    out = tmp_path / "r.txt"
    # hard unsat (α,β-CROWN needs 16 s, nnenum 74 s): open after 1 s
    net = VNNCOMP / "mnist_fc/onnx/mnist-net_256x4.onnx"
    spec = VNNCOMP / "mnist_fc/vnnlib/prop_3_0.05.vnnlib"
    args = ["--net", str(net), "--spec", str(spec), "--timeout", "1", "--results-file", str(out)]
    code, output = run(args)
    assert code == 0, output
    assert out.read_text() == "timeout\n"


def test_bad_input_writes_error_and_exits_two(tmp_path: Path) -> None:
    out = tmp_path / "r.txt"
    spec = tmp_path / "p.vnnlib"
    spec.write_text("(declare-const X_0 Real)\n(assert (>= X_9 0))\n")
    args = ["--net", str(TEST / "onnx/test_nano.onnx"), "--spec", str(spec)]
    code, output = run([*args, "--results-file", str(out)])
    assert code == 2 and "p.vnnlib" in output
    assert out.read_text() == "error\n"


def test_batch_over_the_test_instances() -> None:
    code, output = run(["--instances", str(TEST / "instances.csv"), "--timeout", "30"])
    assert code == 0, output
    lines = [line.split() for line in output.splitlines() if line.startswith("test_")]
    assert len(lines) == 5
    assert all(cells[1] == cells[2] for cells in lines), output  # result == expected
    assert "decided 5 of 5; wrong 0 (of 5 with an expected answer)" in output


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is absent")
def test_run_instance_script(tmp_path: Path) -> None:
    scripts = ROOT / "scripts" / "vnncomp"
    net, spec = TEST / "onnx/test_sat.onnx", TEST / "vnnlib/test_prop.vnnlib"
    prepared = subprocess.run(
        [scripts / "prepare_instance.sh", "v1", "test", net, spec], capture_output=True, text=True
    )
    assert prepared.returncode == 0, prepared.stderr
    out = tmp_path / "results.txt"
    done = subprocess.run(
        [scripts / "run_instance.sh", "v1", "test", net, spec, out, "60"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert out.read_text().startswith("sat\n")
    check_witness(out.read_text(), net, spec)
    wrong = subprocess.run([scripts / "run_instance.sh", "v2"], capture_output=True, text=True)
    assert wrong.returncode == 1 and "usage" in wrong.stderr
