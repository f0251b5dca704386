"""`verify experiment`: reproduce the paper's experiments and add certified satisfaction."""

from __future__ import annotations

import shlex
import sys
from dataclasses import replace
from pathlib import Path
from typing import Final

import click
from click.core import ParameterSource

from robustprop.properties import PROPERTIES
from robustprop.properties.errors import InputError
from robustprop.training.data import DATASET_NAMES
from robustprop.verify.cli.options import (
    FOLDER,
    data_dir_option,
    progress_option,
    show_progress,
    shown,
    threads_option,
    use_threads,
)
from robustprop.verify.cli.param_types import CommaSeparated, OldNames
from robustprop.verify.engine.backends.registry import require_backend
from robustprop.verify.experiment.grid import BIGGER, REGIMES, GridConfig
from robustprop.verify.experiment.pipeline import (
    ExperimentConfig,
    beyond,
    run_experiment,
    train_grid,
)
from robustprop.verify.experiment.pipeline import quick as quick_config

__all__ = ["command"]

#: The full run's settings: the defaults of the options below.
_FULL: Final = ExperimentConfig()

#: The parameters ``--quick`` reads; every other one given with it would be ignored.
#: (``--jobs``, ``--threads`` and ``--regimes`` apply on top of the quick sizes.)
_QUICK_READS: Final = frozenset(
    {"out", "work_dir", "data_dir", "quick", "train_only", "jobs", "threads", "regimes", "progress"}
)


#: Every regime key ``--regimes`` accepts (the paper's, the bigger networks', beyond).
_REGIME_KEYS: Final = tuple(s.key for s in REGIMES + BIGGER + beyond())


def _floats(flag: str, text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError as err:
        raise InputError(f"{flag}: expected comma-separated numbers, got {text!r}") from err
    if not values:
        raise InputError(f"{flag}: expected at least one number, got {text!r}")
    return values


def _names(flag: str, text: str, valid: tuple[str, ...]) -> tuple[str, ...]:
    names = tuple(v.strip() for v in text.split(",") if v.strip())
    bad = [n for n in names if n not in valid]
    if bad or (not names and flag != "--bigger"):
        raise InputError(
            f"{flag}: unknown {', '.join(bad) or repr(text)}; valid: {', '.join(valid)}"
        )
    return names


def _listed(values: tuple[float, ...] | tuple[str, ...]) -> str:
    return ",".join(f"{v:g}" if isinstance(v, float) else v for v in values)


def _refuse_ignored_by_quick(ctx: click.Context) -> None:
    """``--quick`` sets every size itself: refuse flags it would silently ignore."""
    ignored = [
        next(o for o in param.opts if o.startswith("--"))
        for param in ctx.command.params
        if param.name is not None
        and param.name not in _QUICK_READS
        and ctx.get_parameter_source(param.name) is ParameterSource.COMMANDLINE
    ]
    if ignored:
        raise InputError(
            f"--quick sets its own sizes and would ignore {', '.join(ignored)}; "
            "drop them or drop --quick"
        )


@click.command("experiment")
@shown(
    "-o",
    "--output",
    "--out",
    "out",
    cls=OldNames,
    old=("--out",),
    type=click.Path(path_type=Path, dir_okay=True, file_okay=False),
    default=_FULL.out,
    help="Folder for the report.",
)
@shown(
    "--work-dir",
    type=FOLDER,
    default=_FULL.grid.work_dir,
    help="Trained networks and cached measurements (reused by later runs).",
)
@data_dir_option("Folder with fashion_mnist/ and gtsrb/ (default: ../shared/data).")
@click.option(
    "--quick",
    is_flag=True,
    help="Toy size (1 epoch on 256 rows, a few points): the whole pipeline in ~1 min; "
    "refuses the size flags below.",
)
@shown(
    "--data",
    "--datasets",
    "datasets",
    cls=OldNames,
    old=("--datasets",),
    type=CommaSeparated(DATASET_NAMES),
    default=_listed(_FULL.datasets),
    help="Datasets to train and measure, comma-separated.",
)
@shown("--epochs", type=int, default=_FULL.grid.epochs, help="Training epochs (paper: 100).")
@shown("--lr", type=float, default=_FULL.grid.lr, help="Adam learning rate (paper: 1e-4).")
@click.option(
    "--train-limit",
    type=int,
    default=None,
    help="Train on the first N training rows (default: all).",
)
@shown(
    "--bigger",
    type=CommaSeparated(DATASET_NAMES),
    default=_listed(_FULL.bigger),
    help="Datasets that also get the bigger-network regimes ('' for none).",
)
@shown(
    "--points",
    "curve_points",
    type=int,
    default=_FULL.curve_points,
    help="Test points for the security/accuracy curves.",
)
@shown(
    "--eps",
    "curve_eps",
    default=_listed(_FULL.curve_eps),
    help="ε values of the security/accuracy curves, comma-separated.",
)
@shown(
    "--samples",
    type=int,
    default=_FULL.samples,
    help="Uniform samples per point for constraint accuracy.",
)
@shown(
    "--cert-points",
    type=int,
    default=_FULL.cert_points,
    help="Test points whose satisfaction is decided exactly.",
)
@shown(
    "--cert-eps",
    default=_listed(_FULL.cert_eps),
    help="ε values of the certified satisfaction, comma-separated.",
)
@shown(
    "--cert-props",
    type=CommaSeparated(PROPERTIES),
    default=_listed(_FULL.cert_props),
    help="Properties whose satisfaction is decided, comma-separated.",
)
@shown("--timeout", type=float, default=_FULL.timeout_s, help="Seconds per exact query.")
@shown("--device", default=_FULL.grid.device, help="Training device: auto, cpu or cuda[:N].")
@shown(
    "--seed",
    type=int,
    default=_FULL.grid.seed,
    help="Seed of training (initialisation, order, samples).",
)
@shown(
    "--jobs",
    type=int,
    default=_FULL.jobs,
    help="Networks measured at the same time, each in its own process.",
)
@threads_option(
    "Torch intra-op threads of this process: training, and measuring with --jobs 1 (default: "
    "torch's own, one per core); 1 is often much faster on a loaded machine."
)
@click.option(
    "--regimes",
    type=CommaSeparated(_REGIME_KEYS),
    metavar="KEY[,...]",
    default=None,
    help="Only these cells of the grid (regime keys, comma-separated), e.g. the networks "
    "already trained; default: every regime.",
)
@click.option(
    "--train-only",
    is_flag=True,
    help="Train (or resume) the grid's networks under --work-dir and stop: no measurements.",
)
@progress_option("Progress bars on stderr (default: when stderr is a terminal).")
@click.pass_context
def command(
    ctx: click.Context,
    out: Path,
    work_dir: Path,
    data_dir: Path | None,
    quick: bool,
    datasets: str,
    epochs: int,
    lr: float,
    train_limit: int | None,
    bigger: str,
    curve_points: int,
    curve_eps: str,
    samples: int,
    cert_points: int,
    cert_eps: str,
    cert_props: str,
    timeout: float,
    device: str,
    seed: int,
    jobs: int,
    threads: int | None,
    regimes: str | None,
    train_only: bool,
    progress: bool | None,
) -> None:
    """Train the paper's seven regimes on Fashion-MNIST and GTSRB, measure security and
    accuracy against SR/LR/SCR attacks over ε (E1–E4), decide certified satisfaction on a
    fixed subset, check the paper's claims, and write report.md, CSVs and PNGs to --output.

    Networks and measurements are cached under --work-dir: a rerun measures only what is
    missing. Defaults are the paper's training preset (100 epochs, lr 1e-4).
    """
    if quick:
        _refuse_ignored_by_quick(ctx)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a directory (--output)")
    if jobs < 1:
        raise InputError(f"--jobs must be >= 1, got {jobs}")
    chosen = None if regimes is None else _names("--regimes", regimes, _REGIME_KEYS)
    show = show_progress(progress)
    if quick:
        config = quick_config(out, work_dir, data_dir, jobs=jobs, regimes=chosen)
        config = replace(config, grid=replace(config.grid, progress=show))
    else:
        names = _names("--data", datasets, tuple(DATASET_NAMES))
        for flag, value, low in (
            ("--epochs", epochs, 1),
            ("--points", curve_points, 0),
            ("--cert-points", cert_points, 0),
            ("--samples", samples, 1),
            ("--seed", seed, 0),
        ):
            if value < low:
                raise InputError(f"{flag} must be >= {low}, got {value}")
        if train_limit is not None and train_limit < 1:
            raise InputError(f"--train-limit must be >= 1, got {train_limit}")
        if lr <= 0:
            raise InputError(f"--lr must be > 0, got {lr}")
        config = ExperimentConfig(
            datasets=names,
            grid=GridConfig(epochs, lr, train_limit, seed, data_dir, work_dir, device, show),
            bigger=_names("--bigger", bigger, names),
            curve_eps=_floats("--eps", curve_eps),
            curve_points=curve_points,
            samples=samples,
            cert_points=cert_points,
            cert_eps=_floats("--cert-eps", cert_eps),
            cert_props=_names("--cert-props", cert_props, tuple(PROPERTIES)),
            timeout_s=timeout,
            out=out,
            jobs=jobs,
            regimes=chosen,
        )
    use_threads(threads)
    if not train_only and config.cert_points > 0:
        require_backend("auto")  # certified satisfaction needs a solver: say so before training
    if train_only:
        nets = train_grid(config, lambda line: click.echo(line, err=True))
        click.echo(f"{len(nets)} networks trained under {config.grid.work_dir}")
        return
    command_line = "verify " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    report = run_experiment(config, lambda line: click.echo(line, err=True), command_line)
    click.echo(f"wrote {report} (with CSV tables and figures/ beside it)")
