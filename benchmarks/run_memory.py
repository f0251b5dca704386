"""Peak memory of `verify run` against the number of points (issue 5: memory stays flat).

Runs the CLI in a subprocess for each point count on the same network and property and prints
the peak resident set size of the run (the largest process of its tree: the run itself or a
solver worker) next to the baseline of the smallest count, measured in the same invocation.

    python benchmarks/run_memory.py --net runs/m.onnx --data fashion-mnist --points 100,2000
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path


def measure(args: argparse.Namespace, points: int, workdir: Path) -> tuple[float, float]:
    cmd = [
        sys.executable, "-m", "robustprop.verify.cli.main", "run", "--property", args.property,
        "--net", str(args.net), "--data", args.data, "--points", str(points),
        "--eps", str(args.eps), "--timeout", str(args.timeout), "--samples", str(args.samples),
        "--no-cache", "--no-progress", "--json", str(workdir / f"run_{points}.json"),
    ]  # fmt: skip
    start = time.monotonic()
    # each count runs in a fresh child of a fresh helper, so ru_maxrss is that run's own peak
    probe = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:]); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, *cmd], capture_output=True, text=True, check=False
    )
    peak_kib = float(out.stdout.strip().splitlines()[-1])
    return peak_kib / 1024.0, time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--net", type=Path, required=True)
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--property", default="cr")
    parser.add_argument("--eps", type=float, default=0.002)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--points", default="100,2000")
    parser.add_argument("--workdir", type=Path, default=Path("runs/memory"))
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    counts = [int(p) for p in args.points.split(",")]
    print(f"verify run --property {args.property} --eps {args.eps} on {args.net} ({args.data})")
    base = None
    for n in counts:
        peak, wall = measure(args, n, args.workdir)
        base = base or peak
        print(f"{n:6d} points: peak RSS {peak:8.1f} MiB  ({peak / base:.2f}x)  wall {wall:7.1f} s")
    print(f"self check: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB here")


if __name__ == "__main__":
    main()
