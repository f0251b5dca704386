"""Training throughput per regime on Fashion-MNIST (CPU), next to a plain reference loop.

    .venv/bin/python benchmarks/train_throughput.py [--data-dir DIR] [--batches 20]

Each regime runs the paper's settings (batch 128, PGD 50 sign steps of 0.01, ε=0.1, δ=10,
L=10, η=0.52) through ``robustprop.training.steps.StepRunner`` (what ``verify train`` runs) for a
fixed
number of batches of the Fashion-MNIST training set. The reference is the straightforward
loop of the paper's DL2 code (``reference_step`` in ``train_gpu.py``: per-batch PGD with a
Python loop over 50 steps, each recomputing f(x̂) and f(z) and back-propagating through the
whole network). The reference is timed in the same process, batch by batch beside each
regime, so that load from other processes on this shared machine slows both sides alike; each
ratio is against the reference batches timed beside that regime. Goal: constraint SR / reference
>= 1.0.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from robustprop.properties import make_property
from robustprop.training.config import TrainConfig
from robustprop.training.data import load_dataset
from robustprop.training.regimes import make_regime
from robustprop.training.steps import StepRunner

_GPU_SCRIPT = Path(__file__).resolve().parent / "train_gpu.py"
_spec = importlib.util.spec_from_file_location("train_gpu", _GPU_SCRIPT)
assert _spec is not None and _spec.loader is not None
train_gpu = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(train_gpu)

REGIMES: tuple[tuple[str, TrainConfig], ...] = (
    ("baseline", TrainConfig.paper("baseline")),
    ("augment uniform", TrainConfig.paper("augment", sampler="uniform")),
    ("augment fgsm", TrainConfig.paper("augment", sampler="fgsm")),
    ("adversarial fgsm", TrainConfig.paper("adversarial", sampler="fgsm")),
    ("adversarial pgd", TrainConfig.paper("adversarial", sampler="pgd")),
    ("constraint sr", TrainConfig.paper("constraint", prop=make_property("sr"))),
    ("constraint lr", TrainConfig.paper("constraint", prop=make_property("lr"))),
    ("constraint scr", TrainConfig.paper("constraint", prop=make_property("scr"))),
)


def _runner(config: TrainConfig, x: torch.Tensor, y: torch.Tensor) -> StepRunner:
    model = train_gpu._model(torch.device("cpu"), config.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed)
    return StepRunner(
        model, optimizer, make_regime(config), x, y, generator, batch_size=config.batch_size
    )


BatchStep = Callable[[int, int], None]


def _time_batches(step: BatchStep, first: int, count: int, batch: int) -> float:
    began = time.perf_counter()
    for i in range(first, first + count):
        step(i, batch)
    return time.perf_counter() - began


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    batch = 128
    warm = 2
    n_rows = (warm + args.batches) * batch
    data = load_dataset("fashion-mnist", "train", args.data_dir)
    x = torch.from_numpy(data.x[:n_rows].copy())
    y = torch.from_numpy(data.y[:n_rows].copy())
    images = args.batches * batch
    print(
        f"Fashion-MNIST, {args.batches} batches of {batch} per regime "
        f"({warm} warm-up batches untimed), torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )

    def runner_step(runner: StepRunner) -> BatchStep:
        def step(i: int, b: int) -> None:
            runner.step(torch.arange(i * b, (i + 1) * b))

        return step

    ref_model = train_gpu._model(torch.device("cpu"), 0)
    ref_optimizer = torch.optim.Adam(ref_model.parameters(), lr=1e-4)
    reference = train_gpu.reference_step(ref_model, ref_optimizer, torch.Generator().manual_seed(0))

    def ref_step(i: int, b: int) -> None:
        reference(x[i * b : (i + 1) * b], y[i * b : (i + 1) * b])

    results: dict[str, tuple[float, float]] = {}
    ref_total = 0.0
    _time_batches(ref_step, 0, warm, batch)
    for name, config in REGIMES:
        step = runner_step(_runner(config, x, y))
        _time_batches(step, 0, warm, batch)
        seconds = ref_seconds = 0.0
        # Alternate batch by batch with the reference: load from other processes on this
        # shared machine then slows both sides alike, and the ratio stays meaningful.
        for i in range(warm, warm + args.batches):
            ref_seconds += _time_batches(ref_step, i, 1, batch)
            seconds += _time_batches(step, i, 1, batch)
        results[name] = (images / seconds, images / ref_seconds)
        ref_total += ref_seconds
    print(f"{'regime':<20}{'images/s':>11}{'reference':>12}{'ratio':>9}")
    for name, (ips, ref_ips) in results.items():
        print(f"{name:<20}{ips:>11.1f}{ref_ips:>12.1f}{ips / ref_ips:>8.2f}x")
    ours, ref = results["constraint sr"]
    print(
        f"reference (DL2 loop, SR): {images * len(REGIMES) / ref_total:.1f} images/s over all "
        f"regimes; constraint sr / reference: {ours / ref:.2f}x"
    )


if __name__ == "__main__":
    main()
