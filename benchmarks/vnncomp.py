"""The shared VNN-COMP instances through ``verify vnnlib``'s batch mode, with issue #13's peers.

Runs ``acasxu``, ``mnist_fc`` and ``test`` of ``../shared/benchmarks/vnncomp`` (each folder's
``instances.csv`` and ``ground_truth.csv``) with :func:`robustprop.verify.run.vnnlib_check.
check_instances` — the code behind ``verify vnnlib --instances`` — at the instances' own
timeouts, capped by ``--timeout``. Printed per instance: result, expected, the stage that
decided, wall time; per suite and in all: decided / wrong / wall; then the 11 instances issue
#13 measured against α,β-CROWN and nnenum (116 s, same 2-core machine), side by side.

    .venv/bin/python benchmarks/vnncomp.py [--timeout 30] [--suites acasxu,mnist_fc,test]
        [--filter 5_3] [--strategy staged|plain]

Exit code 1 if any answer contradicts the expected one (a soundness bug), else 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import time
from pathlib import Path

from robustprop.verify.cli.vnnlib import TABLE_HEADER, summary_lines, table_line
from robustprop.verify.formats.vnncomp import read_expected, read_instances
from robustprop.verify.run.vnnlib_check import InstanceResult, check_instances

ROOT = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "vnncomp"

#: Issue #13's measurements (wall seconds at 116 s, or "unknown"): instance -> (robustprop at
#: the issue's commit, α,β-CROWN Dec 2025 on CPU, nnenum 1.0.1).
PEERS: dict[str, tuple[str, str, str]] = {
    "ACASXU_run2a_2_7_batch_2000/prop_1": ("unknown", "59", "12"),
    "ACASXU_run2a_4_9_batch_2000/prop_1": ("unknown", "41", "23"),
    "ACASXU_run2a_5_3_batch_2000/prop_2": ("unknown", "6", "2"),
    "ACASXU_run2a_1_1_batch_2000/prop_2": ("60", "18", "2"),
    "ACASXU_run2a_1_8_batch_2000/prop_2": ("unknown", "19", "6"),
    "ACASXU_run2a_1_1_batch_2000/prop_3": ("unknown", "12", "3"),
    "ACASXU_run2a_1_1_batch_2000/prop_6": ("unknown", "65", "18"),
    "ACASXU_run2a_1_9_batch_2000/prop_7": ("unknown", "5", "unknown"),
    "ACASXU_run2a_4_5_batch_2000/prop_10": ("unknown", "16", "2"),
    "mnist-net_256x2/prop_10_0.05": ("43", "11", "45"),
    "mnist-net_256x4/prop_3_0.05": ("111", "16", "74"),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timeout", type=float, default=None, help="cap on each timeout (s)")
    parser.add_argument("--suites", default="acasxu,mnist_fc,test")
    parser.add_argument("--filter", default="", help="only instances whose name contains this")
    parser.add_argument("--strategy", default="staged", choices=("staged", "plain"))
    parser.add_argument("--root", type=Path, default=ROOT)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(f"command: {' '.join([Path(sys.argv[0]).name, *sys.argv[1:]])}")
    print(
        f"machine: {platform.node()}, {os.cpu_count()} cores, load average "
        f"{os.getloadavg()[0]:.1f} at start; strategy {args.strategy}"
    )
    rows: list[InstanceResult] = []
    start = time.monotonic()
    for suite in args.suites.split(","):
        folder = args.root / suite
        expected = read_expected(folder / "ground_truth.csv")
        listed = [
            i for i in read_instances(folder / "instances.csv", expected) if args.filter in i.name
        ]
        if not listed:
            continue
        print(f"\n## {suite}: {len(listed)} instances\n")
        print(TABLE_HEADER)
        done = check_instances(
            listed,
            max_timeout_s=args.timeout,
            strategy=args.strategy,
            on_result=lambda r: print(table_line(r), flush=True),
        )
        for line in summary_lines(done):
            print(line)
        rows += done
    print(f"\n## all suites ({time.monotonic() - start:.0f} s of wall time in all)\n")
    for line in summary_lines(rows):
        print(line)
    by_name = {r.instance.name: r for r in rows}
    print("\n## issue #13's hard instances (peers at 116 s on the same kind of machine)\n")
    print("| instance | expected | now | limit | issue #13 | α,β-CROWN | nnenum |")
    print("|---|---|---|---|---|---|---|")
    for name, (before, abcrown, nnenum) in PEERS.items():
        row = by_name.get(name)
        if row is None:
            continue
        now = f"{row.answer} {row.time_s:.1f}" if row.decided else row.answer
        print(
            f"| {name} | {row.instance.expected} | {now} | {row.timeout_s:g} | {before} | "
            f"{abcrown} | {nnenum} |"
        )
    return 1 if any(r.wrong for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
