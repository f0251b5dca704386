"""SIGKILL during ``verify train``, then ``--resume``: the same final weights, bit for bit.

A real process is killed (no Python handler runs) at a random moment after its first
checkpoint exists: in an epoch, while writing a checkpoint or the log, or while exporting.
Resuming with the same flags must give exactly the weights, training log and ONNX initializers
of an uninterrupted run. The moment is drawn from ``$ROBUSTPROP_FAULT_SEED`` when set, else at
random; a failure prints the seed and the delay so that it can be replayed.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import onnx
from onnx import numpy_helper

from robustprop.training.checkpoint import load_checkpoint

EPOCHS = 12
# One thread: the same float reductions in every process.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _command(out: Path, *extra: str) -> list[str]:
    return [
        str(Path(sys.executable).with_name("verify")), "train",
        "--dataset", "fashion-mnist-slice", "--train-limit", "256", "--regime", "constraint",
        "--property", "sr", "--pgd-steps", "3", "--epochs", str(EPOCHS), "--device", "cpu",
        "--seed", "5", "--no-progress", "-o", str(out), *extra,
    ]  # fmt: skip


def _train(out: Path, *extra: str) -> None:
    done = subprocess.run(
        _command(out, *extra), capture_output=True, text=True, env=ENV, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr


def _start(out: Path) -> tuple[subprocess.Popen[bytes], float]:
    """Start a run; return it once its first checkpoint exists, with that moment."""
    proc = subprocess.Popen(
        _command(out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV
    )
    ckpt = out.with_suffix(".ckpt")
    deadline = time.monotonic() + 120
    while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    return proc, time.monotonic()


def _weights(ckpt: Path) -> dict[str, bytes]:
    state = load_checkpoint(ckpt).state_dict
    return {k: v.numpy().tobytes() for k, v in sorted(state.items())}


def _log(path: Path) -> list[dict[str, object]]:
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("seconds", "images_per_s")} for r in records]


def _initializers(model: Path) -> dict[str, bytes]:
    graph = onnx.load(str(model)).graph
    return {t.name: numpy_helper.to_array(t).tobytes() for t in graph.initializer}


def test_sigkill_then_resume_gives_bit_identical_weights(tmp_path: Path) -> None:
    seed = int(os.environ.get("ROBUSTPROP_FAULT_SEED", random.randrange(2**32)))
    straight = tmp_path / "straight" / "m.onnx"
    proc, checkpointed = _start(straight)
    assert proc.wait(timeout=300) == 0
    span = time.monotonic() - checkpointed  # from the first checkpoint to the exit
    delay = random.Random(seed).uniform(0.0, 0.7 * span)
    where = f"(ROBUSTPROP_FAULT_SEED={seed}, killed {delay:.2f} s after the first checkpoint)"

    cut = tmp_path / "cut" / "m.onnx"
    ckpt = cut.with_suffix(".ckpt")
    proc, _ = _start(cut)
    try:
        time.sleep(delay)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        code = proc.wait()
    assert code == -signal.SIGKILL, f"the run ended before the kill {where}"
    assert ckpt.exists(), f"no checkpoint before the kill {where}"
    load_checkpoint(ckpt)  # whatever the moment, the checkpoint on disk is whole

    _train(cut, "--resume")
    assert _weights(ckpt) == _weights(straight.with_suffix(".ckpt")), where
    assert _log(cut.with_suffix(".log.jsonl")) == _log(straight.with_suffix(".log.jsonl")), where
    assert _initializers(cut) == _initializers(straight), where
