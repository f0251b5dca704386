"""Issue #13's hard instances through the ``verify vnnlib`` command, wall time with start-up.

``benchmarks/vnncomp.py`` times :func:`check_vnnlib` inside one process (model load to answer);
the peers' figures are wall times of a fresh process per instance. This script runs
``verify vnnlib --net … --spec … --timeout T`` once per instance of :data:`vnncomp.PEERS` in a
fresh process (as a VNN-COMP run script would) and prints the answer, the wall seconds of the
whole process (Python start-up and imports included) and the peers' seconds side by side.

    .venv/bin/python benchmarks/vnncomp_wall.py [--timeout 116] [--filter 256x]

Exit code 1 if any answer contradicts the ground truth.
"""

from __future__ import annotations

import argparse
import csv
import os
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=116.0)
    parser.add_argument("--filter", default="")
    args = parser.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    wrong = 0
    print(f"command: vnncomp_wall.py --timeout {args.timeout:g}; OMP_NUM_THREADS=1")
    print("| instance | expected | answer | wall s (with start-up) | α,β-CROWN | nnenum |")
    print("|---|---|---|---|---|---|")
    for name, (_, abcrown, nnenum) in PEERS.items():
        if args.filter not in name:
            continue
        suite = ROOT / ("acasxu" if name.startswith("ACAS") else "mnist_fc")
        net, prop = name.split("/")
        expected = _expected(suite).get(name, "?")
        cmd = [str(VERIFY), "vnnlib", "--net", str(suite / "onnx" / f"{net}.onnx"),
               "--spec", str(suite / "vnnlib" / f"{prop}.vnnlib"),
               "--timeout", f"{args.timeout:g}"]  # fmt: skip
        start = time.monotonic()
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        wall = time.monotonic() - start
        lines = done.stdout.strip().splitlines()
        answer = lines[0] if lines else f"exit {done.returncode}"
        if {answer, expected} == {"sat", "unsat"}:
            wrong += 1
        print(f"| {name} | {expected} | {answer} | {wall:.1f} | {abcrown} | {nnenum} |", flush=True)
    print(f"\nwrong: {wrong}")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
