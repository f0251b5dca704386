"""Constraint-training throughput on one GPU: a plain reference loop vs robustprop's step.

Run from the repository root (no install needed; needs torch with CUDA and numpy)::

    python benchmarks/train_gpu.py --data-dir DIR            # DIR holds the Fashion-MNIST
                                                              # IDX .gz files (or fashion_mnist/)
    python benchmarks/train_gpu.py --data-dir DIR --device cpu --batches 3 --pgd-steps 5

Both sides do the paper's constraint training (SR, ε=0.1, δ=10, α=1, β=0.2, Adam lr 1e-4,
batch 128, PGD 50 sign steps of 0.01 from a uniform start) on the same Fashion-MNIST rows
for a fixed number of batches, timed in alternating rounds after untimed warm-up batches:

- reference: the straightforward loop of the paper's DL2 code: per batch a Python loop over
  the PGD steps, each recomputing f(x̂) and f(z) and calling ``backward()`` through the whole
  network (parameter gradients included), then the training step; returns the last iterate.
- robustprop: ``robustprop.training.steps.StepRunner`` with the constraint regime (what ``verify
train``
  runs): PGD on the property's margin batched over the batch, best iterate kept; on CUDA the
  whole step (PGD loop, loss, backward, Adam) is captured once in a CUDA graph and replayed.

It also trains a few batches from the same start with CUDA graphs on and off and prints the
largest weight difference (same semantics: expect float32 round-off at most) and prints
images/s of each side and their ratio. Takes well under a minute on an H100.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from robustprop.properties import make_property
from robustprop.training.config import TrainConfig
from robustprop.training.data import load_dataset
from robustprop.training.models import build_model
from robustprop.training.regimes import make_regime
from robustprop.training.steps import WARMUP, StepRunner

Step = Callable[[Tensor, Tensor], None]


def reference_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    eps: float = 0.1,
    delta: float = 10.0,
    steps: int = 50,
    step_size: float = 0.01,
    alpha: float = 1.0,
    beta: float = 0.2,
) -> Step:
    """One step of SR constraint training as the paper's DL2 code does it, unfused."""

    def step(x: Tensor, y: Tensor) -> None:
        lower = (x - eps).clamp(0.0, 1.0)
        upper = (x + eps).clamp(0.0, 1.0)
        u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        z = lower + (upper - lower) * u
        for _ in range(steps):
            z = z.detach().requires_grad_(True)
            distance = (model(z) - model(x)).abs().amax(dim=1)
            # DL2 minimises the loss of the negated constraint ‖f(z) − f(x̂)‖ > δ.
            negated = torch.clamp(delta - distance, min=0.0).mean()
            torch.autograd.backward(negated)
            assert z.grad is not None
            z = torch.min(torch.max(z - step_size * z.grad.sign(), lower), upper)
        optimizer.zero_grad()
        out = model(x)
        ce = F.cross_entropy(out, y)
        constraint = torch.clamp((model(z.detach()) - out).abs().amax(dim=1) - delta, min=0.0)
        torch.autograd.backward(alpha * ce + beta * constraint.mean())
        optimizer.step()

    return step


def _model(device: torch.device, seed: int) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model("mlp", 784, 10).to(device).train()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Ours:
    """robustprop's constraint-regime step on the rows ``x``, ``y`` (on the device)."""

    def __init__(
        self,
        config: TrainConfig,
        x: Tensor,
        y: Tensor,
        device: torch.device,
        graphs: bool,
        compile_model: bool = False,
    ) -> None:
        self.model = _model(device, config.seed)
        net: nn.Module = self.model
        if compile_model:
            compiled = torch.compile(self.model)
            assert isinstance(compiled, nn.Module)
            net = compiled
        capturable = graphs and device.type == "cuda"
        if capturable:
            optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr, capturable=True)
        else:
            optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        generator = torch.Generator(device=device).manual_seed(config.seed)
        self.runner = StepRunner(
            net,
            optimizer,
            make_regime(config),
            x,
            y,
            generator,
            batch_size=config.batch_size,
            graphs=graphs,
        )
        self.batch = config.batch_size

    def run(self, first: int, count: int) -> None:
        for i in range(first, first + count):
            rows = torch.arange(i * self.batch, (i + 1) * self.batch, device=self.runner.x.device)
            self.runner.step(rows)


def _time(run: Callable[[], None], device: torch.device) -> float:
    _sync(device)
    began = time.perf_counter()
    run()
    _sync(device)
    return time.perf_counter() - began


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batches", type=int, default=200, help="timed batches per side")
    parser.add_argument("--rounds", type=int, default=2, help="alternating timing rounds")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--pgd-steps", type=int, default=50)
    parser.add_argument("--check-batches", type=int, default=8, help="graph vs eager check")
    parser.add_argument(
        "--no-compile",
        dest="compile",
        action="store_false",
        help="skip the extra measurement with the network under torch.compile (CUDA only)",
    )
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"CUDA is not available (torch {torch.__version__}); use --device cpu")
    warm = WARMUP + 2
    per_round = max(1, args.batches // args.rounds)
    rows = (warm + per_round * args.rounds) * args.batch_size
    began = time.perf_counter()
    data = load_dataset("fashion-mnist", "train", args.data_dir)
    if len(data) < rows:
        raise SystemExit(f"need {rows} training rows, the data has {len(data)}")
    x = torch.from_numpy(data.x[:rows].copy()).to(device)
    y = torch.from_numpy(data.y[:rows].copy()).to(device)
    print(f"data: {rows} rows of {data.name} in {time.perf_counter() - began:.1f} s")
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device: {device_name}, torch {torch.__version__}, threads {torch.get_num_threads()}")

    base = TrainConfig.paper("constraint", prop=make_property("sr"))
    config = TrainConfig(
        regime="constraint",
        epochs=1,
        batch_size=args.batch_size,
        lr=base.lr,
        alpha=base.alpha,
        beta=base.beta,
        eps=base.eps,
        pgd=type(base.pgd)(steps=args.pgd_steps, step_size=base.pgd.step_size),
        prop=base.prop,
    )

    # Same start, same batches, graphs on and off: the weights must agree to round-off.
    check = min(args.check_batches, rows // args.batch_size)
    graphed = Ours(config, x, y, device, graphs=True)
    eager = Ours(config, x, y, device, graphs=False)
    graphed.run(0, check)
    eager.run(0, check)
    diff = max(
        float((a.detach() - b.detach()).abs().max())
        for a, b in zip(graphed.model.parameters(), eager.model.parameters(), strict=True)
    )
    print(
        f"check: {check} batches, step mode {graphed.runner.mode}; "
        f"max |weight difference| graph vs eager = {diff:.3g}"
    )

    ours = Ours(config, x, y, device, graphs=True)
    ref_model = _model(device, config.seed)
    ref_optimizer = torch.optim.Adam(ref_model.parameters(), lr=config.lr)
    ref_generator = torch.Generator(device=device).manual_seed(config.seed)
    reference = reference_step(
        ref_model, ref_optimizer, ref_generator, steps=args.pgd_steps, delta=10.0
    )

    def ref_run(first: int, count: int) -> None:
        for i in range(first, first + count):
            sl = slice(i * args.batch_size, (i + 1) * args.batch_size)
            reference(x[sl], y[sl])

    ours.run(0, warm)  # warm-up, CUDA-graph capture included
    ref_run(0, warm)
    t_ours = t_ref = 0.0
    for r in range(args.rounds):
        first = warm + r * per_round
        t_ref += _time(partial(ref_run, first, per_round), device)
        t_ours += _time(partial(ours.run, first, per_round), device)
    images = per_round * args.rounds * args.batch_size
    ref_ips, ours_ips = images / t_ref, images / t_ours
    print(f"PGD {args.pgd_steps} steps, batch {args.batch_size}, {images} images per side")
    print(f"reference loop : {ref_ips:10.1f} images/s  ({t_ref:.2f} s)")
    print(f"robustprop     : {ours_ips:10.1f} images/s  ({t_ours:.2f} s, {ours.runner.mode})")
    print(f"ratio          : {ours_ips / ref_ips:.2f}x")
    epoch = 60000 / ours_ips
    print(f"=> a 60k-image epoch: {epoch:.1f} s (reference {60000 / ref_ips:.1f} s)")
    if args.compile and device.type == "cuda":
        _compiled(config, x, y, device, warm, per_round, args.rounds, images, ref_ips)


def _compiled(
    config: TrainConfig,
    x: Tensor,
    y: Tensor,
    device: torch.device,
    warm: int,
    per_round: int,
    rounds: int,
    images: int,
    ref_ips: float,
) -> None:
    """Extra: the same step with the network (forward and backward) under torch.compile."""
    began = time.perf_counter()
    try:
        ours = Ours(config, x, y, device, graphs=True, compile_model=True)
        ours.run(0, warm)  # compiles, warms up, captures
        setup = time.perf_counter() - began
        seconds = sum(
            _time(partial(ours.run, warm + r * per_round, per_round), device) for r in range(rounds)
        )
    # Anything from a missing compiler to an inductor bug: report it, the main result stands.
    except Exception as err:
        summary = " ".join(str(err).split())[:300]
        print(f"robustprop + torch.compile: failed ({type(err).__name__}: {summary})")
        return
    ips = images / seconds
    print(
        f"robustprop + torch.compile: {ips:10.1f} images/s ({seconds:.2f} s, "
        f"{ours.runner.mode}, setup {setup:.0f} s); ratio {ips / ref_ips:.2f}x"
    )


if __name__ == "__main__":
    main()
