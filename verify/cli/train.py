"""`verify train`: train a network in one of the paper's regimes and export it to ONNX.

Writes ``-o model.onnx`` (via ``export``, with the training metadata), and beside it the
resumable checkpoint ``model.ckpt`` (also readable by ``verify export``) and the per-epoch
log ``model.log.jsonl``. The names a flag accepts (regimes, samplers, properties, references,
architectures, presets, datasets) are click choices built from the library's own tables
(:mod:`robustprop.training.config`, :mod:`robustprop.properties`,
:mod:`robustprop.training.models`, …), so ``--help`` and shell completion list them.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import TypeVar, cast, get_args

import click

from robustprop.properties import PROPERTIES, PGDConfig, Property, make_property
from robustprop.properties.base import REFERENCES
from robustprop.properties.errors import InputError
from robustprop.training.config import (
    BOUND_METHODS,
    CONFIG_PRESETS,
    PROJECTIONS,
    REGIMES,
    SAMPLERS,
    Bound,
    CertifiedConfig,
    LipschitzConfig,
    Projection,
    Regime,
    Sampler,
    TrainConfig,
)
from robustprop.training.loop import RunOptions, TrainingInterrupted, resolve_device
from robustprop.training.models import ARCHITECTURES
from robustprop.verify.cli.options import (
    data_dir_option,
    data_option,
    output_file_option,
    progress_option,
    show_progress,
    shown,
    threads_option,
    use_threads,
)
from robustprop.verify.cli.param_types import TableChoice
from robustprop.verify.experiment.train_job import PRESETS, TrainJob, train_to_onnx

__all__ = ["command"]

T = TypeVar("T")

#: The presets ``--preset`` offers: the experiment's and the configuration's own.
_PRESETS = tuple(dict.fromkeys(PRESETS + CONFIG_PRESETS))
_WITH_PROPERTY = ("constraint", "certified")

_SAMPLERS_HELP = "; ".join(
    f"{regime}: {' | '.join(names)}" for regime, names in SAMPLERS.items() if names
)


def _property(
    name: str | None, regime: str, eps: float | None, params: dict[str, float | str | None]
) -> Property | None:
    given: dict[str, float | str] = {k: v for k, v in params.items() if v is not None}
    if name is None:
        if regime == "constraint":
            raise InputError("--regime constraint needs --property sr, lr or scr")
        if regime == "certified":
            raise InputError("--regime certified needs --property cr, sr or scr")
        if given:
            flags = ", ".join(f"--{k}" for k in sorted(given))
            raise InputError(
                f"{flags}: property parameters need --regime constraint|certified --property"
            )
        return None
    if regime not in _WITH_PROPERTY:
        raise InputError(
            f"--property {name} is trained only by --regime constraint or certified, "
            f"not by --regime {regime}"
        )
    if eps is not None:
        given["eps"] = eps
    return make_property(name, **given)


def _pick(value: T | None, default: T) -> T:
    return default if value is None else value


@dataclasses.dataclass(frozen=True)
class _Flags:
    """The hyper-parameter flags as given (``None``: take the preset's value)."""

    epochs: int | None
    batch_size: int | None
    lr: float | None
    alpha: float | None
    beta: float | None
    eps: float | None
    pgd_steps: int | None
    pgd_step_size: float | None
    pgd_restarts: int | None
    augment_points: int | None
    certified: dict[str, object]  # CertifiedConfig fields given
    lipschitz: dict[str, object]  # LipschitzConfig fields given


def _regime_settings(
    regime: Regime, flags: _Flags
) -> tuple[CertifiedConfig | None, LipschitzConfig | None]:
    """The certified / lipschitz settings from their flags (defaults for those not given)."""
    for owner, given in (("certified", flags.certified), ("lipschitz", flags.lipschitz)):
        if regime != owner and given:
            names = ", ".join(f"--{k.replace('_', '-')}" for k in sorted(given))
            raise InputError(f"{names}: only for --regime {owner}, not --regime {regime}")
    if regime == "certified":
        return CertifiedConfig(**flags.certified), None  # type: ignore[arg-type]
    if regime == "lipschitz":
        lipschitz = dict(flags.lipschitz)
        if "lipschitz" in lipschitz:
            lipschitz["bound"] = lipschitz.pop("lipschitz")
        return None, LipschitzConfig(**lipschitz)  # type: ignore[arg-type]
    return None, None


def _config(
    regime: Regime,
    prop: Property | None,
    sampler: str | None,
    arch: str,
    seed: int,
    flags: _Flags,
    preset: str = "paper",
) -> TrainConfig:
    # The sampler (per regime) and the architecture are checked by TrainConfig.
    base = TrainConfig.preset(
        preset, regime, prop=prop, sampler=cast(Sampler | None, sampler), arch=arch, seed=seed
    )
    certified, lipschitz = _regime_settings(regime, flags)
    pgd = PGDConfig(
        steps=_pick(flags.pgd_steps, base.pgd.steps),
        step_size=_pick(flags.pgd_step_size, base.pgd.step_size),
        restarts=_pick(flags.pgd_restarts, base.pgd.restarts),
        random_start=base.pgd.random_start,
        relative_step=base.pgd.relative_step,
        center_first=base.pgd.center_first,
    )
    return TrainConfig(
        regime=base.regime,
        epochs=_pick(flags.epochs, base.epochs),
        batch_size=_pick(flags.batch_size, base.batch_size),
        lr=_pick(flags.lr, base.lr),
        alpha=_pick(flags.alpha, base.alpha),
        beta=_pick(flags.beta, base.beta),
        eps=base.eps if prop is not None else _pick(flags.eps, base.eps),
        pgd=pgd,
        prop=prop,
        sampler=base.sampler,
        arch=base.arch,
        seed=base.seed,
        extra_points=_pick(flags.augment_points, base.extra_points),
        domain=base.domain,
        certified=certified,
        lipschitz=lipschitz,
    )


@click.command("train")
@data_option("A dataset name, or an .npz file with x, y (or x_train ... y_test).", required=True)
@data_dir_option()
@click.option(
    "--regime",
    required=True,
    type=TableChoice("regime", REGIMES),
    help="Training regime (see below).",
)
@click.option(
    "--property",
    "prop_name",
    type=TableChoice("property", PROPERTIES),
    default=None,
    help="constraint: the property whose loss is trained (sr, lr, scr); certified: the "
    "property whose margin bound is trained (cr, sr, scr).",
)
@click.option(
    "--sampler",
    type=TableChoice("sampler", get_args(Sampler)),
    default=None,
    help=f"Sampler of the regime, the first is its default: {_SAMPLERS_HELP}.",
)
@output_file_option(
    required=True,
    help="ONNX file to write; the checkpoint (.ckpt) and log (.log.jsonl) go beside it.",
)
@shown(
    "--preset",
    type=TableChoice("preset", _PRESETS),
    default="paper",
    help="Starting values of every hyper-parameter; the flags below override them "
    "(certified: 30 epochs, lr 1e-3).",
)
@click.option("--epochs", type=int, default=None, help="Epochs (paper: 100).")
@click.option("--batch-size", type=int, default=None, help="Batch size (paper: 128).")
@click.option("--lr", type=float, default=None, help="Adam learning rate (paper: 1e-4).")
@click.option("--alpha", type=float, default=None, help="Weight α of CE(x̂) (paper: 1).")
@click.option("--beta", type=float, default=None, help="Weight β of the second term (paper: 0.2).")
@click.option("--eps", type=float, default=None, help="Ball radius ε, L∞ (paper: 0.1).")
@click.option("--delta", type=float, default=None, help="SR: output bound δ (paper: 10).")
@click.option(
    "--lipschitz",
    type=float,
    default=None,
    help="LR: constant L (paper: 10); --regime lipschitz: the network's bound L (10).",
)
@click.option("--eta", type=float, default=None, help="SCR: probability η in (0, 1) (paper: 0.52).")
@click.option(
    "--reference",
    type=TableChoice("reference", REFERENCES),
    default=None,
    help="Property reference: output (r = f(x̂), c = argmax; default) or label (c = y).",
)
@click.option("--pgd-steps", type=int, default=None, help="PGD sign steps (paper: 50).")
@click.option("--pgd-step-size", type=float, default=None, help="PGD step length (paper: 0.01).")
@click.option("--pgd-restarts", type=int, default=None, help="PGD uniform restarts (paper: 1).")
@click.option(
    "--augment-points", type=int, default=None, help="augment: extra points per image (paper: 2)."
)
@click.option(
    "--bound",
    type=TableChoice("bound method", BOUND_METHODS),
    default=None,
    help="certified: bounds of the margin, crown-ibp (CROWN-IBP weight 1 -> 0 over the ramp, "
    "then IBP; default) or ibp.",
)
@click.option(
    "--warmup-epochs", type=int, default=None, help="certified: epochs at ε = 0 first (1)."
)
@click.option(
    "--ramp-epochs", type=int, default=None, help="certified: epochs ramping ε 0 -> ε (10)."
)
@click.option(
    "--kappa-start", type=float, default=None, help="certified: weight κ of CE(x̂) at first (1)."
)
@click.option("--kappa-end", type=float, default=None, help="certified: κ after the ramp (0.5).")
@click.option(
    "--projection",
    type=TableChoice("projection", PROJECTIONS),
    default=None,
    help="lipschitz: rescale the rows over the budget (rows; default) or the whole matrix.",
)
@click.option(
    "--logit-scale",
    type=float,
    default=None,
    help="lipschitz: train on the cross-entropy of s·f(x) (10; the scores span at most L).",
)
@shown(
    "--arch",
    type=TableChoice("architecture", ARCHITECTURES),
    default="mlp",
    help="Network architecture (mlp: the paper's n-100-m).",
)
@shown("--seed", type=int, default=0, help="Seed of init, order, samples.")
@shown("--device", default="auto", help="auto | cpu | cuda[:N].")
@click.option("--resume", is_flag=True, help="Continue from the checkpoint beside --output.")
@click.option(
    "--train-limit",
    type=click.IntRange(min=1),
    default=None,
    help="Use only the first N training rows (quick runs).",
)
@progress_option()
@threads_option(
    "Torch intra-op threads (default: torch's own, one per core); 1 is often much faster on "
    "a loaded machine."
)
@shown(
    "--cuda-graphs/--no-cuda-graphs",
    default=True,
    help="On CUDA, replay each training step from a captured CUDA graph.",
)
def command(
    dataset: str,
    data_dir: Path | None,
    regime: Regime,
    prop_name: str | None,
    sampler: str | None,
    output: Path,
    preset: str,
    epochs: int | None,
    batch_size: int | None,
    lr: float | None,
    alpha: float | None,
    beta: float | None,
    eps: float | None,
    delta: float | None,
    lipschitz: float | None,
    eta: float | None,
    reference: str | None,
    pgd_steps: int | None,
    pgd_step_size: float | None,
    pgd_restarts: int | None,
    augment_points: int | None,
    bound: Bound | None,
    warmup_epochs: int | None,
    ramp_epochs: int | None,
    kappa_start: float | None,
    kappa_end: float | None,
    projection: Projection | None,
    logit_scale: float | None,
    arch: str,
    seed: int,
    device: str,
    resume: bool,
    train_limit: int | None,
    progress: bool | None,
    threads: int | None,
    cuda_graphs: bool,
) -> None:
    """Train a network (paper preset unless overridden) and export it to ONNX.

    \b
    Regimes: baseline (cross-entropy); augment (2 extra points per image in the ε-ball,
    uniform or FGSM); adversarial (α·CE(x̂) + β·CE(x′), x′ by FGSM or PGD); constraint
    (α·CE(x̂) + β·L_C(x′), x′ by PGD on the property; --property sr, lr or scr);
    certified (κ·CE(x̂) + (1 − κ)·loss on a CROWN-IBP/IBP bound of the property's margin
    over its region, ε ramped up; --property cr, sr or scr); lipschitz (CE, each layer
    projected after every step so that the product of the ∞-norms stays ≤ --lipschitz).
    """
    if output.is_dir():
        raise InputError(f"{output}: is a directory, expected an output file name")
    if output.parent.exists() and not output.parent.is_dir():
        raise InputError(f"{output}: {output.parent} is not a directory")
    if eps is not None and eps <= 0:
        raise InputError(f"--eps must be > 0, got {eps}")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(
            f"{output}: cannot create {output.parent} ({err.strerror or err})"
        ) from err
    certified_flags: dict[str, object] = {
        k: v
        for k, v in (
            ("bound", bound),
            ("warmup_epochs", warmup_epochs),
            ("ramp_epochs", ramp_epochs),
            ("kappa_start", kappa_start),
            ("kappa_end", kappa_end),
        )
        if v is not None
    }
    lipschitz_flags: dict[str, object] = {
        k: v for k, v in (("projection", projection), ("logit_scale", logit_scale)) if v is not None
    }
    if regime == "lipschitz" and lipschitz is not None:
        lipschitz_flags["lipschitz"] = lipschitz  # the regime's L, not a property's
        lipschitz = None
    params = {"delta": delta, "lipschitz": lipschitz, "eta": eta, "reference": reference}
    prop = _property(prop_name, regime, eps, params)
    flags = _Flags(
        epochs,
        batch_size,
        lr,
        alpha,
        beta,
        eps,
        pgd_steps,
        pgd_step_size,
        pgd_restarts,
        augment_points,
        certified_flags,
        lipschitz_flags,
    )
    config = _config(regime, prop, sampler, arch, seed, flags, preset)
    use_threads(threads)
    options = RunOptions(
        device=resolve_device(device),
        resume=resume,
        progress=show_progress(progress),
        cuda_graphs=cuda_graphs,
    )
    job = TrainJob(dataset, output, data_dir, train_limit, preset)
    try:
        done = train_to_onnx(config, job, options)
    except TrainingInterrupted as stop:
        click.echo(
            f"interrupted: {stop.checkpoint} holds {stop.epochs_done} finished epochs; "
            "continue with the same flags and --resume, or export it with `verify export`",
            err=True,
        )
        sys.exit(130)
    what = config.regime if config.sampler is None else f"{config.regime} ({config.sampler})"
    if prop is not None:
        what += f" {prop.name} {json.dumps(prop.params())}"
    settings = config.certified or config.lipschitz
    if settings is not None:
        what += f" {json.dumps(settings.describe())}"
    click.echo(
        f"trained {config.arch} on {done.train_rows} {done.dataset} rows: {what}; "
        f"epochs: {done.epochs_done}, on {options.device} ({done.step_mode})"
    )
    if done.test_accuracy is not None:
        sat_text = (
            ""
            if done.sat_fraction is None
            else f", sampled points satisfying: {done.sat_fraction:.4f}"
        )
        click.echo(f"test accuracy {done.test_accuracy:.4f}{sat_text}")
    click.echo(
        f"wrote {done.path} (max abs diff {done.max_abs_diff:.2e} vs torch), "
        f"checkpoint {done.checkpoint}, log {done.log}"
    )
