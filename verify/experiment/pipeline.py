"""``verify experiment``: the paper's §4 and Appendix A, plus certified satisfaction.

Steps, each reusing what an earlier run already stored
(:mod:`robustprop.verify.experiment.grid` for the networks,
:mod:`robustprop.verify.experiment.measure` for the measurements):

1. :func:`train_grid`: train the seven regimes of Table 2 on every dataset (the bigger-network
   regimes on ``bigger`` datasets, and the regimes beyond the paper, ``grid.BEYOND``, when the
   grid defines them), or reuse the finished networks; ``regimes`` restricts the cells;
2. :func:`measure_grid`, per network (``jobs`` networks at a time, each in its own process):
   constraint security (PGD) and accuracy (sampling) for the SR, LR and SCR attacks at every
   ε of ``curve_eps`` on the first ``curve_points`` test points (E1–E4); satisfaction decided
   exactly on the first ``cert_points`` test points for ``cert_props`` at every ε of
   ``cert_eps``, next to security and accuracy on the same points; and, when LR is among
   them, what its counterexamples look like (:mod:`robustprop.verify.experiment.lipschitz`);
3. check the paper's claims (:mod:`robustprop.verify.experiment.claims`) and write the report
   (:mod:`robustprop.verify.experiment.report`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from robustprop.properties.errors import InputError
from robustprop.training.data import load_dataset
from robustprop.verify.experiment import grid as grid_module
from robustprop.verify.experiment.claims import check_claims
from robustprop.verify.experiment.grid import (
    BIGGER,
    REGIMES,
    GridConfig,
    RegimeSpec,
    TrainedNet,
    ensure_network,
)
from robustprop.verify.experiment.lipschitz import LipschitzFinding
from robustprop.verify.experiment.measure import ATTACKS, Measure, Row
from robustprop.verify.experiment.parallel import NetworkJob, measure_networks
from robustprop.verify.experiment.report import ReportInput, write_report
from robustprop.verify.formats.output_file import write_output

__all__ = [
    "DATASETS",
    "ExperimentConfig",
    "beyond",
    "cells",
    "measure_grid",
    "quick",
    "run_experiment",
    "train_grid",
]

DATASETS = ("fashion-mnist", "gtsrb")


@dataclass(frozen=True)
class ExperimentConfig:
    """What to train and measure; defaults are the full run (the paper's training preset)."""

    datasets: tuple[str, ...] = DATASETS
    grid: GridConfig = field(default_factory=GridConfig)
    bigger: tuple[str, ...] = ("fashion-mnist",)
    curve_eps: tuple[float, ...] = (0.01, 0.025, 0.05, 0.075, 0.1)
    curve_points: int = 500
    samples: int = 200
    cert_points: int = 100
    cert_eps: tuple[float, ...] = (0.01, 0.03, 0.05, 0.1)  # the paper trains and attacks at 0.1
    cert_props: tuple[str, ...] = ("cr", "sr", "scr", "lr")
    timeout_s: float = 10.0
    out: Path = field(default_factory=lambda: Path("results"))
    jobs: int = 1  # networks measured at the same time, each in its own process
    regimes: tuple[str, ...] | None = None  # only these cells (keys); None: all

    def __post_init__(self) -> None:
        for name in ("curve_points", "cert_points", "samples"):
            value = getattr(self, name)
            if value < 0 or (name == "samples" and value < 1):
                raise InputError(f"{name} must be >= {1 if name == 'samples' else 0}, got {value}")
        for name in ("curve_eps", "cert_eps"):
            for e in getattr(self, name):
                if not 0 < e <= 1:
                    raise InputError(f"{name}: every ε must be in (0, 1], got {e}")
        if self.timeout_s <= 0:
            raise InputError(f"timeout must be > 0, got {self.timeout_s}")
        if self.jobs < 1:
            raise InputError(f"jobs must be >= 1, got {self.jobs}")
        known = {s.key for s in REGIMES + BIGGER + beyond()}
        bad = [r for r in self.regimes or () if r not in known]
        if bad or self.regimes == ():
            raise InputError(
                f"regimes: unknown {', '.join(bad) or 'empty list'}; "
                f"valid: {', '.join(sorted(known))}"
            )
        unknown = [d for d in self.bigger if d not in self.datasets]
        if unknown:
            raise InputError(f"bigger: {', '.join(unknown)} is not among the datasets")


def beyond() -> tuple[RegimeSpec, ...]:
    """The regimes beyond the paper's (``grid.BEYOND``; none when the grid has none)."""
    return tuple(getattr(grid_module, "BEYOND", ()))


def quick(
    out: Path,
    work_dir: Path,
    data_dir: Path | None = None,
    *,
    jobs: int = 1,
    regimes: tuple[str, ...] | None = None,
) -> ExperimentConfig:
    """The whole pipeline at toy size (about a minute): for tests and a first look.

    ``jobs`` and ``regimes`` apply on top of the toy sizes."""
    return ExperimentConfig(
        datasets=("fashion-mnist-slice", "gtsrb"),
        grid=GridConfig(epochs=1, lr=1e-3, train_limit=256, work_dir=work_dir, data_dir=data_dir),
        bigger=("fashion-mnist-slice",),
        curve_eps=(0.1,),
        curve_points=8,
        samples=20,
        cert_points=4,
        cert_eps=(0.01,),
        cert_props=("sr", "scr"),
        timeout_s=5.0,
        out=out,
        jobs=jobs,
        regimes=regimes,
    )


def run_experiment(
    config: ExperimentConfig, say: Callable[[str], None] = lambda _: None, command: str = ""
) -> Path:
    """Steps 1-3 of the module docstring; returns the report's path."""
    start = time.monotonic()
    nets = train_grid(config, say)
    curves, certified, lipschitz, measure_wall = measure_grid(config, nets, say)
    extra = {s.key for s in beyond()}
    claims = check_claims(curves, config.datasets)
    report = ReportInput(
        [n for n in nets if n.spec.key not in extra],
        curves,
        certified,
        claims,
        _settings(config, command, measure_wall),
        time.monotonic() - start,
        beyond=[n for n in nets if n.spec.key in extra],
        lipschitz=lipschitz,
    )
    try:
        config.out.mkdir(parents=True, exist_ok=True)
        return write_report(config.out, report)
    except OSError as err:
        raise InputError(f"{config.out}: cannot write the report ({err})") from err


def measure_grid(
    config: ExperimentConfig, nets: list[TrainedNet], say: Callable[[str], None] = lambda _: None
) -> tuple[list[Row], list[Row], list[LipschitzFinding], float]:
    """Step 2 for every network, ``config.jobs`` at a time: (curve rows, certified rows,
    LR findings, wall seconds of this step)."""
    start = time.monotonic()
    points_files = {ds: _points_file(ds, config) for ds in config.datasets}
    curve_measures = tuple(
        Measure(a, e, config.curve_points, ("security", "accuracy"), "paper", config.samples)
        for a in ATTACKS
        for e in config.curve_eps
    )
    cert_measures = tuple(
        Measure(
            p,
            e,
            config.cert_points,
            ("satisfaction", "security", "accuracy"),
            "strong",
            config.samples,
            config.timeout_s,
        )
        for p in config.cert_props
        for e in config.cert_eps
    )
    lr_eps = config.cert_eps if "lr" in config.cert_props and config.cert_points else ()
    jobs = []
    for net in nets:
        certify = net.spec.arch == "mlp" and config.cert_points > 0
        jobs.append(
            NetworkJob(
                net=net.path,
                dataset=net.dataset,
                regime=net.spec.key,
                data=str(points_files[net.dataset]),
                curves=curve_measures if config.curve_points else (),
                certified=cert_measures if certify else (),
                lipschitz_eps=lr_eps if certify else (),
                lipschitz_points=config.cert_points,
                timeout_s=config.timeout_s,
                store=config.grid.work_dir / "verdicts.sqlite",
            )
        )
    done = measure_networks(jobs, config.jobs, say)
    curves = [r for d in done for r in d.curves]
    certified = [r for d in done for r in d.certified]
    lipschitz = [f for d in done for f in d.lipschitz]
    return curves, certified, lipschitz, time.monotonic() - start


def _settings(config: ExperimentConfig, command: str, measure_wall: float) -> dict[str, str]:
    grid = config.grid
    extra = beyond()
    return {
        "command": command or "verify experiment",
        "datasets": ", ".join(config.datasets),
        "training": (
            f"paper preset (Adam, batch 128, α = 1, β = 0.2, ε = 0.1, PGD 50 steps) with "
            f"{grid.epochs} epochs (paper: 100), learning rate {grid.lr:g} (paper: 1e-4), "
            f"training rows: {'all' if grid.train_limit is None else grid.train_limit}, "
            f"seed {grid.seed}, device {grid.device}"
        ),
        "regimes": "all" if config.regimes is None else ", ".join(config.regimes),
        "curves": (
            f"attacks {', '.join(a.upper() for a in ATTACKS)} at ε ∈ "
            f"{{{', '.join(f'{e:g}' for e in config.curve_eps)}}}, first {config.curve_points} "
            f"test points, the paper's PGD, {config.samples} uniform samples per point"
        ),
        "certified": (
            f"{', '.join(p.upper() for p in config.cert_props)} at ε ∈ "
            f"{{{', '.join(f'{e:g}' for e in config.cert_eps)}}}, first {config.cert_points} "
            "test points, staged verifier (attack, CROWN bounds, branch and bound, "
            f"Marabou/MILP portfolio), timeout {config.timeout_s:g} s per query"
        ),
        "measurements": (
            f"{config.jobs} network(s) at a time (--jobs), {measure_wall / 60:.1f} min wall "
            "in this invocation"
        ),
        "bigger network": (
            f"{', '.join(config.bigger)}: baseline, augment FGSM and constraint SR on "
            "mlp-deep (784-256-128-10; the paper used an 18-layer CNN)"
            if config.bigger
            else "not run"
        ),
        "beyond the paper": (
            ", ".join(s.key for s in extra) if extra else "no such regimes in the grid"
        ),
    }


def cells(config: ExperimentConfig) -> list[tuple[str, RegimeSpec]]:
    """(dataset, regime) of every network of the grid, in the report's order: Table 2's
    rows, the bigger networks on ``bigger`` datasets, then the regimes beyond the paper;
    only ``config.regimes`` when given."""
    out = [
        (ds, spec)
        for ds in config.datasets
        for spec in REGIMES + (BIGGER if ds in config.bigger else ()) + beyond()
    ]
    if config.regimes is not None:
        out = [(ds, spec) for ds, spec in out if spec.key in config.regimes]
    return out


def train_grid(
    config: ExperimentConfig, say: Callable[[str], None] = lambda _: None
) -> list[TrainedNet]:
    """Step 1: every network of the grid, trained (or resumed) where not already finished.

    Cells are trained cheapest first (the regimes without a PGD-driven loss before the
    constraint regimes), so an interrupted grid has as many finished networks as possible;
    the list comes back in the report's order (dataset, then Table 2's rows).
    """
    todo = cells(config)
    done: dict[tuple[str, str], TrainedNet] = {}
    for ds, spec in sorted(todo, key=lambda c: c[1].regime == "constraint"):
        done[(ds, spec.key)] = ensure_network(spec, ds, config.grid, say)
    return [done[(ds, spec.key)] for ds, spec in todo]


def _points_file(dataset: str, config: ExperimentConfig) -> Path:
    """The first test points of ``dataset`` as an ``.npz`` (loaded once, not per run)."""
    n = max(config.curve_points, config.cert_points, 1)
    folder = config.grid.work_dir / "points"
    path = folder / f"{dataset}-test-first{n}.npz"
    if path.is_file():
        return path
    ds = load_dataset(dataset, "test", config.grid.data_dir)

    def write(handle: IO[bytes]) -> None:
        np.savez_compressed(handle, x=ds.x[:n], y=ds.y[:n], n_classes=np.int64(ds.n_classes))

    write_output(path, "points file", write)
    return path
