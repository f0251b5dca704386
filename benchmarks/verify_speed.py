"""Staged verification vs plain Marabou on one fixed query set, in one process run.

Query set: networks of the paper's architecture (784→100→10, clamp ±100) trained on
Fashion-MNIST by three regimes (baseline, adversarial, constraint SR; ``verify train`` with a
few epochs, cached under ``runs/bench/``), the first ``--points`` test points, properties CR,
SR (δ = 10) and LR (L = 10) at every ``--eps``. Each (network, property, ε) runs twice through
``verify run``'s pipeline (:func:`robustprop.verify.run.runner.run`, satisfaction only, no store):

- **plain**: every point straight to Marabou (``--strategy plain``), the baseline;
- **staged**: center, bound propagation, batched PGD, then the Marabou/MILP portfolio.

Printed per configuration and in total: holds / violated / unknown of each, wall time of each,
per-stage counts of the staged run, and disagreements (a point one calls holds and the other
violated). Goal: total plain time / staged time ≥ 20, at least as many decided, 0 disagreements.

    .venv/bin/python benchmarks/verify_speed.py [--quick] [--points 50] [--eps 0.01,0.03,0.1]
        [--props cr,sr,lr] [--regimes baseline,adversarial,constraint-sr] [--timeout 60]
        [--vnncomp [--vnncomp-filter mnist_fc]] [--stages-only --device cuda]

``--stages-only`` times just the batched bound and attack stages (no solver, no replay) on
``--device``: the GPU comparison of issue 6. ``--points-npz`` reads the points from an ``.npz``
(``x``, ``y``) instead of the dataset (``--save-points`` writes one), for machines without the
dataset. Exit code 1 if any disagreement was seen.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "runs" / "bench"

# verify train arguments per regime (epochs chosen to train in a few minutes on 2 CPU cores)
REGIMES: dict[str, list[str]] = {
    "baseline": ["--regime", "baseline", "--epochs", "20"],
    "adversarial": ["--regime", "adversarial", "--epochs", "4"],
    "constraint-sr": ["--regime", "constraint", "--property", "sr", "--epochs", "4"],
}


def ensure_network(regime: str) -> Path:
    """The regime's ONNX under runs/bench/, trained with ``verify train`` if missing."""
    path = BENCH / f"{regime}.onnx"
    if path.is_file():
        return path
    BENCH.mkdir(parents=True, exist_ok=True)
    cmd = [
        str(Path(sys.executable).with_name("verify")),
        "train",
        "--dataset",
        "fashion-mnist",
        *REGIMES[regime],
        "--device",
        "cpu",
        "--seed",
        "0",
        "--no-progress",
        "-o",
        str(path),
    ]
    print("training:", " ".join(cmd[1:]), flush=True)
    subprocess.run(cmd, check=True)
    return path


@dataclass
class Row:
    regime: str
    prop: str
    eps: float
    plain: dict[int, str]
    staged: dict[int, str]
    stages: dict[str, int]
    plain_s: float
    staged_s: float

    @property
    def disagreements(self) -> list[int]:
        return [
            i for i, v in self.plain.items() if {v, self.staged.get(i)} == {"holds", "violated"}
        ]


def _counts(verdicts: dict[int, str]) -> str:
    h = sum(v == "holds" for v in verdicts.values())
    v = sum(v == "violated" for v in verdicts.values())
    u = sum(v == "unknown" for v in verdicts.values())
    return f"{h:3d} {v:3d} {u:3d}"


def _decided(verdicts: dict[int, str]) -> int:
    return sum(v != "unknown" for v in verdicts.values())


def run_pair(net: Path, regime: str, prop_name: str, eps: float, args: argparse.Namespace) -> Row:
    import robustprop
    from robustprop.properties import make_property

    data = str(args.points_npz) if args.points_npz else "fashion-mnist"
    results = {}
    times = {}
    stages: dict[str, int] = {}
    for strategy in ("plain", "staged"):
        start = time.monotonic()
        result = robustprop.check(
            net,
            make_property(prop_name, eps=eps),
            data=data,
            points=args.points,
            metrics=("satisfaction",),
            backend="auto",
            timeout=args.timeout,
            jobs=1,
            strategy=strategy,
            store=None,
        )
        times[strategy] = time.monotonic() - start
        results[strategy] = {
            p.index: p.verdict.status.value for p in result.points if p.verdict is not None
        }
        if strategy == "staged":
            for p in result.points:
                if p.verdict is not None:
                    key = p.verdict.stage.value
                    stages[key] = stages.get(key, 0) + 1
    return Row(
        regime,
        prop_name,
        eps,
        results["plain"],
        results["staged"],
        stages,
        times["plain"],
        times["staged"],
    )


def main_grid(args: argparse.Namespace) -> int:
    regimes = args.regimes.split(",")
    props = args.props.split(",")
    eps_values = [float(e) for e in args.eps.split(",")]
    nets = {r: ensure_network(r) for r in regimes}
    print(
        f"query set: regimes {regimes}, properties {props}, eps {eps_values}, "
        f"{args.points} test points each, timeout {args.timeout:g} s, jobs 1"
    )
    print(
        f"{'config':28} {'plain H   V   U':>16} {'time':>8} | {'staged H   V   U':>17} "
        f"{'time':>8} {'ratio':>7}  stages"
    )
    rows: list[Row] = []
    for regime in regimes:
        for prop in props:
            for eps in eps_values:
                row = run_pair(nets[regime], regime, prop, eps, args)
                rows.append(row)
                stages = ", ".join(f"{k} {v}" for k, v in sorted(row.stages.items()))
                flag = f"  DISAGREE {row.disagreements}" if row.disagreements else ""
                print(
                    f"{regime:14} {prop:3} eps={eps:<6g} {_counts(row.plain):>16} "
                    f"{row.plain_s:7.1f}s | {_counts(row.staged):>17} {row.staged_s:7.1f}s "
                    f"{row.plain_s / max(row.staged_s, 1e-9):6.1f}x  {stages}{flag}",
                    flush=True,
                )
    plain_s = sum(r.plain_s for r in rows)
    staged_s = sum(r.staged_s for r in rows)
    plain_decided = sum(_decided(r.plain) for r in rows)
    staged_decided = sum(_decided(r.staged) for r in rows)
    total = sum(len(r.plain) for r in rows)
    disagreements = sum(len(r.disagreements) for r in rows)
    stage_totals: dict[str, int] = {}
    for r in rows:
        for k, v in r.stages.items():
            stage_totals[k] = stage_totals.get(k, 0) + v
    print()
    print(f"queries: {total} ({len(rows)} configurations)")
    print(f"plain Marabou: wall {plain_s:.1f} s, decided {plain_decided}")
    print(f"staged:        wall {staged_s:.1f} s, decided {staged_decided}")
    print(f"ratio plain / staged wall time: {plain_s / max(staged_s, 1e-9):.1f}x")
    print(f"disagreements: {disagreements}")
    print(
        "staged, decided by stage: "
        + ", ".join(f"{k} {v}" for k, v in sorted(stage_totals.items()))
    )
    only_plain = sum(
        1
        for r in rows
        for i, v in r.plain.items()
        if v != "unknown" and r.staged.get(i) == "unknown"
    )
    only_staged = sum(
        1
        for r in rows
        for i, v in r.staged.items()
        if v != "unknown" and r.plain.get(i) == "unknown"
    )
    print(f"decided by plain only: {only_plain}; by staged only: {only_staged}")
    return 1 if disagreements else 0


# --------------------------------------------------------------------------------------------
# VNN-COMP instances through both strategies


def main_vnncomp(args: argparse.Namespace) -> int:
    import conformance as conf  # benchmarks/conformance.py, beside this script (sys.path[0])

    from robustprop.properties.errors import RobustpropError
    from robustprop.verify.run.vnnlib_check import check_vnnlib

    instances = [
        i
        for i in conf.load_instances()
        if i.suite in ("vnncomp/mnist_fc", "vnncomp/acasxu") and args.vnncomp_filter in str(i.onnx)
    ]
    print(f"\nVNN-COMP: {len(instances)} instances (MNIST-FC, ACAS Xu), timeout {args.timeout:g} s")
    totals = {"plain": [0.0, 0, 0], "staged": [0.0, 0, 0]}  # time, decided, disagree
    for inst in instances:
        line = f"{inst.suite:17} {inst.name:48} expected {inst.expected:5}"
        for strategy in ("plain", "staged"):
            start = time.monotonic()
            try:
                result = check_vnnlib(
                    inst.onnx,
                    inst.vnnlib,
                    backend="auto",
                    timeout_s=args.timeout,
                    strategy=strategy,
                )
                status: str = result.status
            except RobustpropError as err:
                status = f"error ({err})"[:40]
            elapsed = time.monotonic() - start
            agg = totals[strategy]
            agg[0] += elapsed
            if status in ("sat", "unsat"):
                agg[1] += 1
                agg[2] += int(status != inst.expected)
            line += f" | {strategy} {status:7} {elapsed:6.1f}s"
        print(line, flush=True)
    for strategy, (t, decided, bad) in totals.items():
        print(f"{strategy:7} wall {t:.1f} s, decided {decided}/{len(instances)}, disagree {bad}")
    ratio = totals["plain"][0] / max(totals["staged"][0], 1e-9)
    print(f"ratio plain / staged wall time: {ratio:.1f}x")
    return 1 if totals["plain"][2] or totals["staged"][2] else 0


# --------------------------------------------------------------------------------------------
# the batched stages alone, on any device


def main_stages(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from robustprop.properties import Domain, PGDConfig, make_property
    from robustprop.properties.base import References
    from robustprop.verify.engine.attack import batched_attack
    from robustprop.verify.engine.bounds import bound_negations, compute_seeds
    from robustprop.verify.engine.crown import Crown
    from robustprop.verify.engine.network import load_network
    from robustprop.verify.engine.torch_net import to_torch
    from robustprop.verify.run.points import PointSelection, load_points

    device = args.device
    data = str(args.points_npz) if args.points_npz else "fashion-mnist"
    torch.set_num_threads(1)
    name = torch.cuda.get_device_name() if device.startswith("cuda") else "cpu (1 thread)"
    print(f"stages only on {device} ({name}); {args.points} points per configuration")
    grand = [0.0, 0.0]
    for regime in args.regimes.split(","):
        net_path = BENCH / f"{regime}.onnx"
        net = load_network(net_path)
        pts = load_points(PointSelection(data, "test", args.points), net.n)
        model = to_torch(net).to(device)
        crown = Crown(net, device)
        y = net.evaluate(pts.x)
        for prop_name in args.props.split(","):
            for eps in [float(e) for e in args.eps.split(",")]:
                prop = make_property(prop_name, eps=eps)
                refs = prop.references(torch.from_numpy(y), torch.from_numpy(pts.y))
                negs = [
                    prop.negation(pts.x[i], y[i], int(refs.classes[i]), Domain(), 1e-6)
                    for i in range(len(pts.x))
                ]
                _sync(device)
                t0 = time.monotonic()
                with torch.no_grad():
                    res = compute_seeds(net, bound_negations(net, negs, crown, centers_y=y), crown)
                _sync(device)
                t_bounds = time.monotonic() - t0
                open_rows = [i for i, r in enumerate(res) if not r.holds]
                t0 = time.monotonic()
                found = 0
                if open_rows:
                    idx = torch.as_tensor(open_rows)
                    centers = torch.from_numpy(pts.x[open_rows]).to(device, torch.float32)
                    sub = References(
                        refs.scores[idx].to(device, torch.float32), refs.classes[idx].to(device)
                    )
                    gen = torch.Generator(device=device).manual_seed(0)
                    out = batched_attack(
                        prop, model, centers, sub, Domain(), PGDConfig.strong(), gen
                    )
                    found = int(prop.violated(out.value).sum())
                _sync(device)
                t_attack = time.monotonic() - t0
                grand[0] += t_bounds
                grand[1] += t_attack
                print(
                    f"{regime:14} {prop_name:3} eps={eps:<6g} bounds {t_bounds:7.3f}s "
                    f"(proved {len(negs) - len(open_rows):3d})  attack {t_attack:7.3f}s "
                    f"(margin violated {found:3d} of {len(open_rows):3d})",
                    flush=True,
                )
    print(f"total: bounds {grand[0]:.2f} s, attack {grand[1]:.2f} s on {device}")
    del np
    return 0


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 points, eps 0.03 only")
    parser.add_argument("--points", type=int, default=50)
    parser.add_argument("--eps", default="0.01,0.03,0.1")
    parser.add_argument("--props", default="cr,sr,lr")
    parser.add_argument("--regimes", default=",".join(REGIMES))
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--vnncomp", action="store_true", help="also the VNN-COMP instances")
    parser.add_argument("--vnncomp-only", action="store_true")
    parser.add_argument("--vnncomp-filter", default="")
    parser.add_argument("--stages-only", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--points-npz", type=Path, default=None)
    parser.add_argument("--save-points", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.points, args.eps = 10, "0.03"
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    if args.save_points is not None:
        import numpy as np

        from robustprop.training.data import load_dataset

        ds = load_dataset("fashion-mnist", "test", None)
        np.savez_compressed(args.save_points, x=ds.x[: args.points], y=ds.y[: args.points])
        print(f"wrote {args.save_points}")
        return 0
    if args.stages_only:
        return main_stages(args)
    code = 0
    if not args.vnncomp_only:
        code |= main_grid(args)
    if args.vnncomp or args.vnncomp_only:
        code |= main_vnncomp(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
