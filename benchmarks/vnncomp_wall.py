"""Issue #13's hard instances through the ``verify vnnlib`` command, wall time with start-up.

``benchmarks/vnncomp.py`` times :func:`check_vnnlib` inside one process (model load to answer);
the peers' figures are wall times of a fresh process per instance. This script runs
``verify vnnlib --net … --spec … --timeout T`` once per instance of :data:`vnncomp.PEERS` in a
fresh process (as a VNN-COMP run script would) and prints the answer, the wall seconds of the
whole process (Python start-up and imports included) and the peers' seconds side by side.
Each instance runs ``--repeat`` times (the median is printed: one run on a shared 2-core
machine varies by ±0.3 s), and a baseline measured in the same run, the median wall time of
``python -c 'import torch'`` (1.0 s on one day's machine, 1.9 s on another's), is printed
with the difference: what is ours beyond torch's import.

    .venv/bin/python benchmarks/vnncomp_wall.py [--timeout 116] [--filter 256x] [--repeat 3]

Exit code 1 if any answer contradicts the ground truth.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from vnncomp import PEERS, ROOT  # type: ignore[import-not-found]

VERIFY = Path(sys.executable).with_name("verify")


def _expected(suite: Path) -> dict[str, str]:
    with (suite / "ground_truth.csv").open() as f:
        rows = list(csv.DictReader(f))
    return {f"{Path(r['onnx']).stem}/{Path(r['vnnlib']).stem}": r["expected"] for r in rows}


def _wall(cmd: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    return time.monotonic() - start, done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=116.0)
    parser.add_argument("--filter", default="")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    wrong = 0
    print(f"command: vnncomp_wall.py --timeout {args.timeout:g} --repeat {args.repeat}; "
          "OMP_NUM_THREADS=1")  # fmt: skip
    torch_cmd = [sys.executable, "-c", "import torch"]
    baseline = statistics.median(_wall(torch_cmd, env)[0] for _ in range(max(3, args.repeat)))
    print(f"baseline: python -c 'import torch' {baseline:.2f} s (median)")
    print("| instance | expected | answer | wall s (with start-up, median) | beyond torch's import "
          "| α,β-CROWN | nnenum |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for name, (_, abcrown, nnenum) in PEERS.items():
        if args.filter not in name:
            continue
        suite = ROOT / ("acasxu" if name.startswith("ACAS") else "mnist_fc")
        net, prop = name.split("/")
        expected = _expected(suite).get(name, "?")
        cmd = [str(VERIFY), "vnnlib", "--net", str(suite / "onnx" / f"{net}.onnx"),
               "--spec", str(suite / "vnnlib" / f"{prop}.vnnlib"),
               "--timeout", f"{args.timeout:g}"]  # fmt: skip
        walls = []
        answers = set()
        for _ in range(args.repeat):
            seconds, done = _wall(cmd, env)
            lines = done.stdout.strip().splitlines()
            answer = lines[0] if lines else f"exit {done.returncode}"
            wrong += {answer, expected} == {"sat", "unsat"}
            walls.append(seconds)
            answers.add(answer)
        wall = statistics.median(walls)
        shown = "/".join(sorted(answers))
        print(f"| {name} | {expected} | {shown} | {wall:.1f} | {wall - baseline:.1f} | {abcrown} "
              f"| {nnenum} |", flush=True)  # fmt: skip
    print(f"\nwrong: {wrong}")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
