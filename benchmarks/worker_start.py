"""Start-up cost of what every worker and every user pays: importing the namespace and the
property classes, and starting an exact-stage pool worker until it has loaded the model.

    .venv/bin/python benchmarks/worker_start.py [--net tests/corpus/ok.onnx] [--workers 3]

Prints one line per measurement. The baseline (before the namespace/forkserver change) was
measured with the same steps on the previous layout; its numbers are in
benchmarks/results/worker_start.txt.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _import_time(statement: str) -> tuple[float, bool]:
    """Seconds to run ``statement`` in a fresh interpreter, and whether torch got imported."""
    code = (
        "import sys, time; t = time.perf_counter(); "
        f"{statement}; "
        "print(time.perf_counter() - t, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    seconds, torch = out.stdout.split()
    return float(seconds), torch == "True"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--net", type=Path, default=ROOT / "tests" / "corpus" / "ok.onnx")
    parser.add_argument("--workers", type=int, default=3)
    args = parser.parse_args()
    for statement in (
        "import robustprop",
        "from robustprop import SR, LR, CR, SCR; SR(eps=0.1)",
        "import robustprop.properties.errors",
    ):
        seconds, torch = _import_time(statement)
        print(f"{statement!r}: {seconds:.2f} s, torch imported: {torch}")

    from robustprop.verify.run.model import ModelBytes
    from robustprop.verify.run.pool import WorkerSpec, _Worker, worker_context

    spec = WorkerSpec(ModelBytes.read(args.net), "z3")
    ctx = worker_context()
    for k in range(args.workers):
        t = time.perf_counter()
        worker = _Worker(ctx, spec)
        elapsed = time.perf_counter() - t
        worker.stop()
        note = " (includes starting the fork server)" if k == 0 else ""
        print(f"pool worker {k}: ready after {elapsed:.2f} s{note}")


if __name__ == "__main__":
    main()
