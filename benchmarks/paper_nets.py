"""Certified satisfaction on the paper's Fashion-MNIST networks: how many point queries the
staged pipeline decides in 10 s, and whether ``--strategy plain`` ever disagrees.

Issue #13's second benchmark: the committed networks under results/networks/fashion-mnist/
(784-100-10 regimes and the bigger 784-256-128-10 ones), each property (CR, SR, LR, SCR at
their paper parameters) at each ε, over the first ``--points`` test points, ``--timeout``
seconds per exact query, one process, through :func:`robustprop.check` (what ``verify run``
calls). Per cell it prints holds / violated / unknown, the decided share and the wall time,
and the deciding stages; then the totals. With ``--plain N`` the first N points of every
cell are decided again with ``--strategy plain`` (every point straight to the solver) and
every point where both decide and disagree is counted (the goal is 0).

    .venv/bin/python benchmarks/paper_nets.py [--points 100] [--eps 0.03,0.1] \\
        [--nets baseline,adversarial,constraint-sr,big-baseline,big-augment-fgsm] \\
        [--props cr,sr,lr,scr] [--timeout 10] [--plain 10]

Exit code 1 on a disagreement.
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import time
from pathlib import Path

import torch

import robustprop
from robustprop.properties.registry import make_property

ROOT = Path(__file__).resolve().parents[1]
NETS = ROOT / "results" / "networks" / "fashion-mnist"
DATA = ROOT.parent / "shared" / "data"


def _cell(net: Path, prop: str, eps: float, points: int, timeout: float, strategy: str):  # type: ignore[no-untyped-def]
    return robustprop.check(
        str(net),
        make_property(prop, eps=eps),
        data="fashion-mnist",
        data_dir=DATA,
        points=points,
        metrics=("satisfaction",),
        timeout=timeout,
        strategy=strategy,
        argv=["paper_nets.py"],
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100)
    parser.add_argument("--eps", default="0.03,0.1")
    parser.add_argument(
        "--nets", default="baseline,adversarial,constraint-sr,big-baseline,big-augment-fgsm"
    )
    parser.add_argument("--props", default="cr,sr,lr,scr")
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--plain", type=int, default=0)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    torch.set_num_threads(1)
    print(f"command: paper_nets.py --points {args.points} --eps {args.eps} --nets {args.nets} "
          f"--props {args.props} --timeout {args.timeout:g} --plain {args.plain}; "
          f"{os.cpu_count()} cores, torch threads 1")  # fmt: skip
    print("| net | property | ε | holds | violated | unknown | decided | wall s | stages |")
    print("|---|---|---|---|---|---|---|---|---|")
    totals: collections.Counter[str] = collections.Counter()
    disagreements = 0
    compared = 0
    for net in args.nets.split(","):
        path = NETS / f"{net}.onnx"
        for prop in args.props.split(","):
            for eps in (float(e) for e in args.eps.split(",")):
                start = time.monotonic()
                result = _cell(path, prop, eps, args.points, args.timeout, "staged")
                wall = time.monotonic() - start
                verdicts = [p.verdict for p in result.points if p.verdict is not None]
                count = collections.Counter(v.status.value for v in verdicts)
                stages = collections.Counter(v.stage.value for v in verdicts)
                totals.update(count)
                decided = count["holds"] + count["violated"]
                shown = " ".join(f"{k} {n}" for k, n in sorted(stages.items()))
                print(f"| {net} | {prop} | {eps:g} | {count['holds']} | {count['violated']} | "
                      f"{count['unknown']} | {decided / max(1, len(verdicts)):.0%} | "
                      f"{wall:.1f} | {shown} |", flush=True)  # fmt: skip
                if args.plain:
                    plain = _cell(path, prop, eps, args.plain, args.timeout, "plain")
                    for a, b in zip(result.points, plain.points, strict=False):
                        if a.verdict is None or b.verdict is None:
                            continue
                        pair = {a.verdict.status.value, b.verdict.status.value}
                        if "unknown" not in pair:
                            compared += 1
                        if pair == {"holds", "violated"}:
                            disagreements += 1
                            ours, theirs = a.verdict.status.value, b.verdict.status.value
                            print(f"  DISAGREEMENT at point {a.index}: {ours} vs plain {theirs}")
    queries = sum(totals.values())
    decided = totals["holds"] + totals["violated"]
    print(f"\ntotal: {queries} queries, {totals['holds']} holds, {totals['violated']} violated, "
          f"{totals['unknown']} unknown: {decided / max(1, queries):.1%} decided")  # fmt: skip
    if args.plain:
        print(f"plain comparison: {compared} points decided by both, "
              f"{disagreements} disagreements")  # fmt: skip
    return 1 if disagreements else 0


if __name__ == "__main__":
    raise SystemExit(main())
