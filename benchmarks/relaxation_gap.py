"""How far the root's linear relaxation is from the truth on the paper's Fashion-MNIST networks.

Why some point queries stay ``unknown`` at 10 s: per test point and disjunct of the negation
(CR and SR, one linear atom ``c·y ≥ r`` each), the upper bound of ``c·y − r`` over the ε-box
that α-CROWN proves at the root (``--alpha-steps`` steps; the disjunct is impossible where it
is ``< 0``) beside the largest value a PGD ascent finds (``--restarts`` uniform starts per
disjunct, ``--steps`` sign steps; ``≥ 0`` would be a violation). The difference is the *gap*
that ReLU splitting must close, sub-domain by sub-domain. Points the ascent violates are only
counted (and the unstable ReLUs at the root, median per hidden layer, for every point); the
table summarises the disjuncts of the others that the root leaves open: their
root bound, the ascent's value and the gap (medians, and the largest gap).

    .venv/bin/python benchmarks/relaxation_gap.py [--nets baseline,big-augment-fgsm] \\
        [--props cr,sr] [--eps 0.1] [--points 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

from robustprop import api
from robustprop.properties.ascent import Best, ascend
from robustprop.properties.registry import make_property
from robustprop.verify.engine.alpha import AlphaConfig, alpha_spec_lower
from robustprop.verify.engine.bab_common import GroupSpec
from robustprop.verify.engine.crown import Crown
from robustprop.verify.engine.network import Relu
from robustprop.verify.engine.torch_net import to_torch
from robustprop.verify.run.config import RunConfig
from robustprop.verify.run.points import PointSelection
from robustprop.verify.run.runner import prepare

ROOT = Path(__file__).resolve().parents[1]
NETS = ROOT / "results" / "networks" / "fashion-mnist"
DATA = ROOT.parent / "shared" / "data"


def _ascent_best(
    model: torch.nn.Module, spec: GroupSpec, restarts: int, steps: int
) -> torch.Tensor:
    """``(K,)``: the largest ``C_k·y − rhs_k`` met by ``restarts`` ascents per row ``k``."""
    rows = spec.rows
    gen = torch.Generator().manual_seed(0)
    lower = spec.lower.expand(rows * restarts, -1)
    upper = spec.upper.expand(rows * restarts, -1)
    x = lower + (upper - lower) * torch.rand(lower.shape, generator=gen, dtype=lower.dtype)
    C = spec.C.repeat_interleave(restarts, dim=0)
    rhs = spec.rhs.repeat_interleave(restarts)

    def objective(_: torch.Tensor):  # type: ignore[no-untyped-def]
        def climb(_x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            value = (y * C).sum(dim=1) - rhs
            return value, value

        return climb

    best = Best(x[::restarts])  # one point per row k, its restarts consecutive
    step = (upper[0] - lower[0]) * 0.05
    ascend(
        model, objective, best, x, lower, upper, step, steps, halve_at=(steps // 2, 3 * steps // 4)
    )
    return best.value


def _gaps(net: str, prop: str, args: argparse.Namespace) -> None:
    """One table row: ``net`` and ``prop`` at ``args.eps`` on the first ``args.points`` points."""
    eps, points = args.eps, args.points
    inputs = prepare(
        RunConfig(
            model=api.load(NETS / f"{net}.onnx"),
            prop=make_property(prop, eps=eps),
            points=PointSelection("fashion-mnist", count=points, data_dir=DATA),
            metrics=("satisfaction",),
        )
    )
    crown = Crown(inputs.network)
    model = to_torch(inputs.network, torch.float64)
    violated, bounds, values, gaps = 0, [], [], []
    disjuncts = 0
    unstable: list[list[int]] = []
    for negation in inputs.negations:
        if negation.distance is not None or any(len(d.atoms) != 1 for d in negation.disjuncts):
            raise SystemExit(f"{prop}: only properties of one atom per disjunct (cr, sr)")
        spec = GroupSpec.of(negation, inputs.network.m, crown.device)
        with torch.no_grad():
            root = crown.layer_bounds(spec.lower[None], spec.upper[None])
        unstable.append([
            int(((lo < 0) & (hi > 0)).sum())
            for lo, hi in (root.pre(j) for j, layer in enumerate(crown.network.layers)
                           if isinstance(layer, Relu))
        ])  # fmt: skip
        config = AlphaConfig(steps=args.alpha_steps, lr=0.1)
        bound = spec.slack(alpha_spec_lower(crown, root, spec.spec(1), config)[0].detach())[0]
        value = _ascent_best(model, spec, args.restarts, args.steps)
        if bool((value >= 0).any()):
            violated += 1
            continue
        disjuncts += spec.rows
        for b, v in zip(bound.tolist(), value.tolist(), strict=True):
            if b >= 0:
                bounds.append(b)
                values.append(v)
                gaps.append(b - v)
    med = statistics.median
    per_layer = "+".join(str(round(med(layer))) for layer in zip(*unstable, strict=True))
    row = [net, prop, str(eps), str(points), per_layer, str(violated)]
    row.append(f"{len(gaps)} of {disjuncts}")
    if gaps:
        row += [f"{med(bounds):.2f}", f"{med(values):.2f}", f"{med(gaps):.2f}", f"{max(gaps):.2f}"]
    else:
        row += ["-"] * 4
    print("| " + " | ".join(row) + " |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nets", default="baseline,adversarial,constraint-sr,big-augment-fgsm")
    parser.add_argument("--props", default="cr,sr")
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--points", type=int, default=20)
    parser.add_argument("--alpha-steps", type=int, default=50)
    parser.add_argument("--restarts", type=int, default=32)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    unknown = set(args.props.split(",")) - {"cr", "sr"}
    if unknown:  # LR's distance term and SCR's softmax are no linear atoms of the outputs
        parser.error(f"--props: only cr and sr, not {', '.join(sorted(unknown))}")
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    start = time.monotonic()
    print(
        f"α steps {args.alpha_steps}; ascent: {args.restarts} starts x {args.steps} steps per "
        "disjunct. Columns over the disjuncts the root leaves open, of the points the ascent "
        "does not violate: root bound, ascent value, gap (medians), largest gap."
    )
    print("| net | property | ε | points | unstable ReLUs (median per layer) | violated (ascent) "
          "| open at root | root bound | ascent | gap | largest gap |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for net in args.nets.split(","):
        for prop in args.props.split(","):
            _gaps(net, prop, args)
    print(f"wall {time.monotonic() - start:.0f} s")


if __name__ == "__main__":
    main()
