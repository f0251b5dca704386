"""Conformance: run ``verify vnnlib``'s decision procedure on every external benchmark instance.

Instances and expected answers come from ``../shared/benchmarks`` (see its README): the VNN-COMP
suites (``instances.csv`` + ``ground_truth.csv`` in ``vnncomp/{acasxu,mnist_fc,test}``) and
Marabou's own cases (``marabou/answers.csv``; the ONNX + VNN-LIB files, not the ``.nnet``
originals). Per instance one line: suite, network, property, expected, ours, seconds, what plain
Marabou 2.0.0 gave in ``local_runs_maraboupy_2.0.0.csv``. Then the counts (agree, disagree,
unknown, error), the total time, and the instances that plain Marabou decided and we did not.

    .venv/bin/python benchmarks/conformance.py --timeout 60 [--filter acasxu] [--backend marabou]

Exit code 1 if any instance disagrees with its expected answer (a soundness bug), else 0.
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "benchmarks"


@dataclass(frozen=True)
class Instance:
    """One benchmark instance; ``marabou_local`` is plain Marabou's answer in our local run."""

    suite: str
    onnx: Path
    vnnlib: Path
    expected: str
    marabou_local: str

    @property
    def name(self) -> str:
        return f"{self.onnx.stem}/{self.vnnlib.stem}"


def load_instances(root: Path = DEFAULT_ROOT) -> list[Instance]:
    """Every instance with its expected answer, in the order of the CSV files."""
    local: dict[tuple[str, str, str], str] = {}
    with (root / "local_runs_maraboupy_2.0.0.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            local[(row["suite"], row["onnx"], row["vnnlib"])] = row["marabou_result"]
    out: list[Instance] = []
    for suite in ("test", "acasxu", "mnist_fc"):
        folder = root / "vnncomp" / suite
        with (folder / "ground_truth.csv").open(newline="") as f:
            for row in csv.DictReader(f):
                key = (f"vnncomp/{suite}", row["onnx"], row["vnnlib"])
                out.append(
                    Instance(
                        f"vnncomp/{suite}",
                        folder / row["onnx"],
                        folder / row["vnnlib"],
                        row["expected"],
                        local.get(key, "?"),
                    )
                )
    folder = root / "marabou"
    with (folder / "answers.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            out.append(
                Instance(
                    "marabou",
                    folder / row["onnx"],
                    folder / row["vnnlib"],
                    row["expected"],
                    local.get(("marabou", row["onnx"], row["vnnlib"]), "?"),
                )
            )
    return out


@dataclass(frozen=True)
class Outcome:
    instance: Instance
    ours: str  # sat / unsat / unknown / error
    time_s: float
    reason: str

    @property
    def verdict(self) -> str:
        if self.ours in ("sat", "unsat"):
            return "agree" if self.ours == self.instance.expected else "DISAGREE"
        return self.ours


def run_instance(instance: Instance, timeout_s: float, backend: str, attack: bool) -> Outcome:
    from robustprop.properties.errors import RobustpropError
    from robustprop.verify.engine.backends.base import BackendName
    from robustprop.verify.run.vnnlib_check import check_vnnlib

    start = time.monotonic()
    try:
        result = check_vnnlib(
            instance.onnx,
            instance.vnnlib,
            backend=BackendName(backend),
            timeout_s=timeout_s,
            attack=attack,
        )
    except RobustpropError as err:
        return Outcome(instance, "error", time.monotonic() - start, str(err))
    return Outcome(instance, result.status, time.monotonic() - start, result.reason)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per instance")
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="benchmark folder")
    parser.add_argument("--filter", default="", help="only instances whose path contains this")
    parser.add_argument("--backend", default="marabou", choices=["marabou", "z3"])
    parser.add_argument("--no-attack", action="store_true", help="solver only, no PGD search")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")

    instances = [
        i for i in load_instances(args.root) if args.filter in f"{i.suite}/{i.onnx}/{i.vnnlib}"
    ]
    print(
        f"{len(instances)} instances, timeout {args.timeout:g} s, backend {args.backend}, "
        f"PGD search {'off' if args.no_attack else 'on'}"
    )
    start = time.monotonic()
    outcomes: list[Outcome] = []
    for inst in instances:
        out = run_instance(inst, args.timeout, args.backend, not args.no_attack)
        outcomes.append(out)
        line = (
            f"{inst.suite:17} {inst.name:48} expected {inst.expected:5} ours {out.ours:7} "
            f"{out.time_s:7.2f} s  {out.verdict:8} (plain marabou: {inst.marabou_local})"
        )
        if out.ours not in ("sat", "unsat"):
            line += f"  [{out.reason[:160]}]"
        print(line, flush=True)
    total = time.monotonic() - start

    counts = {k: sum(o.verdict == k for o in outcomes) for k in ("agree", "DISAGREE")}
    unknown = sum(o.ours == "unknown" for o in outcomes)
    errors = sum(o.ours == "error" for o in outcomes)
    print(
        f"\nagree {counts['agree']}, disagree {counts['DISAGREE']}, unknown {unknown}, "
        f"error {errors} of {len(outcomes)}; total {total:.1f} s at timeout {args.timeout:g} s"
    )
    for suite in sorted({o.instance.suite for o in outcomes}):
        mine = [o for o in outcomes if o.instance.suite == suite]
        decided = sum(o.verdict == "agree" for o in mine)
        plain = sum(o.instance.marabou_local in ("sat", "unsat") for o in mine)
        print(f"  {suite:17} decided {decided}/{len(mine)} (plain Marabou, 60 s: {plain})")
    missed = [
        o
        for o in outcomes
        if o.instance.marabou_local in ("sat", "unsat") and o.ours not in ("sat", "unsat")
    ]
    print(f"decided by plain Marabou but not by us: {len(missed)}")
    for o in missed:
        print(f"  {o.instance.suite} {o.instance.name} (plain Marabou: {o.instance.marabou_local})")
    extra = [
        o
        for o in outcomes
        if o.verdict == "agree" and o.instance.marabou_local not in ("sat", "unsat")
    ]
    print(f"decided by us but not by plain Marabou: {len(extra)}")
    return 1 if counts["DISAGREE"] else 0


if __name__ == "__main__":
    sys.exit(main())
