"""``verify run --progress`` advances while the attack works through the points.

It used to report every row of a run without satisfaction only after the whole attack, all
within a few milliseconds, and tqdm (which redraws at most every 0.1 s) showed "1/N" until the
bar was closed. The runs here are real (a subprocess, the bundled Fashion-MNIST slice, PGD
and sampling on a small ONNX network), with the bar forced on and stderr captured.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from robustprop.verify.run.empirical import ATTACK_BATCH
from tests.verify.tiny_onnx import mlp_bytes

POINTS = 2 * ATTACK_BATCH + 6  # three attack batches, the last one short


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    layers = [
        (rng.normal(0, 0.05, (16, 784)), rng.normal(0, 0.1, 16)),
        (rng.normal(0, 0.5, (10, 16)), rng.normal(0, 0.1, 10)),
    ]
    path = tmp_path_factory.mktemp("progress") / "net.onnx"
    path.write_bytes(mlp_bytes(layers))
    return path


def _shown(net: Path, tmp_path: Path, metrics: str) -> tuple[list[int], dict[str, object]]:
    """The counts the bar showed (in order) and the run's JSON."""
    out = tmp_path / "run.json"
    args = [
        sys.executable, "-m", "robustprop.verify.cli.main", "run", "--property", "cr",
        "--eps", "0.05", "--net", str(net), "--data", "fashion-mnist-slice",
        "--points", str(POINTS), "--metrics", metrics, "--attack-steps", "3", "--restarts", "1",
        "--samples", "20", "--backend", "z3", "--timeout", "5", "--progress", "--no-cache",
        "--json", str(out),
    ]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    counts = [int(n) for n in re.findall(rf"\| *(\d+)/{POINTS} \[", done.stderr)]
    return counts, json.loads(out.read_text())


@pytest.mark.parametrize("metrics", ["security", "security,accuracy"])
def test_the_bar_advances_per_attack_batch_and_reaches_the_total(
    net: Path, tmp_path: Path, metrics: str
) -> None:
    counts, doc = _shown(net, tmp_path, metrics)
    assert counts[-1] == POINTS, counts
    assert counts == sorted(counts)
    for done in (ATTACK_BATCH, 2 * ATTACK_BATCH):  # shown after each full batch
        assert done in counts, counts
    summary = doc["summary"]
    assert isinstance(summary, dict) and summary["security"] is not None


def test_with_satisfaction_every_point_is_counted_once(net: Path, tmp_path: Path) -> None:
    counts, doc = _shown(net, tmp_path, "satisfaction,security")
    assert counts[-1] == POINTS, counts
    assert counts == sorted(counts)
    points = doc["points"]
    assert isinstance(points, list) and len(points) == POINTS
