"""Training configuration: one frozen dataclass of hyper-parameters, validated on creation.

Regimes (DESIGN.md §5, paper §2 and §4 "Settings"), with the samplers each accepts
(the first is the default):

===============  ================  ========================================================
``baseline``     —                 cross-entropy on softmax of the clamped scores
``augment``      ``uniform|fgsm``  ``extra_points`` more points per image in its ε-ball,
                                   same label; mean cross-entropy over all points
``adversarial``  ``fgsm|pgd``      ``α·CE(x̂) + β·CE(x′)``, ``x′`` maximising CE in the ball
``constraint``   ``pgd``           ``α·CE(x̂) + β·mean L_C(x′)``, ``x′`` maximising the
                                   property's margin in its region (needs ``prop``)
``certified``    —                 ``κ·CE(x̂) + (1 − κ)·L_cert``, ``L_cert`` on a sound IBP /
                                   CROWN-IBP bound of the margin of ``prop`` (cr, sr, scr)
                                   over its region, ε and κ on a schedule
                                   (:class:`CertifiedConfig`, :mod:`.certified`)
``lipschitz``    —                 ``CE(x̂)``; after every step each linear layer is projected
                                   so that ``∏ ‖W_i‖∞ ≤ L`` (:class:`LipschitzConfig`)
===============  ================  ========================================================

The paper's preset (:meth:`TrainConfig.paper`): Adam, lr 1e-4, 100 epochs, batch 128, α=1,
β=0.2, ε=0.1, PGD 50 sign steps of 0.01 from a uniform start (:meth:`PGDConfig.paper`); the
property parameters δ=10, L=10, η=0.52 are the property classes' own defaults.

The certified preset (``TrainConfig.preset("certified", ...)``, beyond the paper): Adam, lr 1e-3,
30 epochs, batch 128; certified: CROWN-IBP, 1 warm-up epoch at ε = 0, ε ramped linearly to the
property's ε over the next 10 epochs while κ goes from 1 to 0.5 (and CROWN-IBP's weight from 1
to 0); lipschitz: L = 10, row projection, cross-entropy of 10·f(x).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Literal

from robustprop.properties import Domain, PGDConfig, Property
from robustprop.properties.checks import check_number, check_positive
from robustprop.properties.errors import InputError
from robustprop.training.models import ARCHITECTURES

__all__ = [
    "BOUND_METHODS",
    "CERTIFIED_PROPERTIES",
    "CONFIG_PRESETS",
    "PROJECTIONS",
    "REGIMES",
    "SAMPLERS",
    "Bound",
    "CertifiedConfig",
    "LipschitzConfig",
    "Projection",
    "Regime",
    "Sampler",
    "TrainConfig",
]

Regime = Literal["baseline", "augment", "adversarial", "constraint", "certified", "lipschitz"]
Sampler = Literal["uniform", "fgsm", "pgd"]
Bound = Literal["ibp", "crown-ibp"]
Projection = Literal["rows", "matrix"]

BOUND_METHODS: Final[tuple[Bound, ...]] = ("crown-ibp", "ibp")
PROJECTIONS: Final[tuple[Projection, ...]] = ("rows", "matrix")
#: The properties the certified regime trains (LR: the lipschitz regime).
CERTIFIED_PROPERTIES: Final[tuple[str, ...]] = ("cr", "sr", "scr")
#: Named starting points of a configuration (:meth:`TrainConfig.preset`).
CONFIG_PRESETS: Final[tuple[str, ...]] = ("paper", "certified")


@dataclass(frozen=True)
class CertifiedConfig:
    """The certified regime's schedule (defaults: the certified preset).

    Epochs ``1..warmup_epochs`` train at ε = 0 (cross-entropy only); over the next
    ``ramp_epochs`` epochs ε grows linearly (per step) to the property's ε, κ (the weight of
    the clean cross-entropy) goes from ``kappa_start`` to ``kappa_end`` and, for
    ``bound="crown-ibp"``, the weight of the CROWN-IBP bound against the plain IBP bound from
    1 to 0 (Zhang et al. 2020); after the ramp everything stays at its final value.
    """

    bound: Bound = "crown-ibp"
    warmup_epochs: int = 1
    ramp_epochs: int = 10
    kappa_start: float = 1.0
    kappa_end: float = 0.5

    def __post_init__(self) -> None:
        if self.bound not in BOUND_METHODS:
            raise InputError(
                f"unknown bound method {self.bound!r}; valid: {', '.join(BOUND_METHODS)}"
            )
        _check_count("warmup_epochs", self.warmup_epochs, minimum=0)
        _check_count("ramp_epochs", self.ramp_epochs, minimum=1)
        for name in ("kappa_start", "kappa_end"):
            value = check_number(name, getattr(self, name))
            if not 0.0 <= value <= 1.0:
                raise InputError(f"{name} must lie in [0, 1], got {value}")
            object.__setattr__(self, name, value)

    def describe(self) -> dict[str, object]:
        return {
            "bound": self.bound,
            "warmup_epochs": self.warmup_epochs,
            "ramp_epochs": self.ramp_epochs,
            "kappa_start": self.kappa_start,
            "kappa_end": self.kappa_end,
        }


@dataclass(frozen=True)
class LipschitzConfig:
    """The lipschitz regime: the global L∞ Lipschitz bound ``L`` and how layers are projected.

    Each of the ``k`` linear layers gets the budget ``λ = L^(1/k)`` on its ∞-operator norm
    (largest row ℓ1 norm); ``rows`` rescales each row whose ℓ1 norm exceeds ``λ`` onto it,
    ``matrix`` rescales the whole matrix. (The split is no restriction: ReLU is positively
    homogeneous, so any split with the same product gives the same functions.) The loss is the
    cross-entropy of ``logit_scale·f(x)``: the scores of such a network span at most ``L`` over
    the whole input box, and a scale above 1 keeps the loss from saturating on them (argmax,
    and so accuracy and every property of ``f``, are unchanged by it).
    """

    bound: float = 10.0
    projection: Projection = "rows"
    logit_scale: float = 10.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "bound", check_positive("lipschitz", self.bound))
        object.__setattr__(self, "logit_scale", check_positive("logit_scale", self.logit_scale))
        if self.projection not in PROJECTIONS:
            raise InputError(
                f"unknown projection {self.projection!r}; valid: {', '.join(PROJECTIONS)}"
            )

    def describe(self) -> dict[str, object]:
        return {
            "bound": self.bound,
            "projection": self.projection,
            "logit_scale": self.logit_scale,
        }


#: The samplers each regime accepts; the first one is its default.
SAMPLERS: Final[Mapping[str, tuple[Sampler, ...]]] = MappingProxyType(
    {
        "baseline": (),
        "augment": ("uniform", "fgsm"),
        "adversarial": ("fgsm", "pgd"),
        "constraint": ("pgd",),
        "certified": (),
        "lipschitz": (),
    }
)
REGIMES: Final[tuple[Regime, ...]] = (
    "baseline",
    "augment",
    "adversarial",
    "constraint",
    "certified",
    "lipschitz",
)
#: The regimes that train a property (and need ``prop``).
_WITH_PROPERTY: Final = ("constraint", "certified")


@dataclass(frozen=True)
class TrainConfig:
    """Every hyper-parameter of a training run.

    ``eps`` is the radius of the sampling ball of ``augment`` and ``adversarial``; for
    ``constraint`` it must equal ``prop.eps`` (the property's region is the ball). ``pgd`` is
    used by the PGD sampler. ``sampler=None`` picks the regime's default. Invalid values and
    regime/sampler/property mismatches raise :class:`InputError`. ``certified`` (needs a
    :class:`CertifiedConfig`, default one if ``None``) and ``lipschitz`` (a
    :class:`LipschitzConfig`) are set only for their regime.
    """

    regime: Regime
    epochs: int
    batch_size: int
    lr: float
    alpha: float
    beta: float
    eps: float
    pgd: PGDConfig
    prop: Property | None = None
    sampler: Sampler | None = None
    arch: str = "mlp"
    seed: int = 0
    extra_points: int = 2
    domain: Domain = field(default_factory=Domain)
    certified: CertifiedConfig | None = None
    lipschitz: LipschitzConfig | None = None

    def __post_init__(self) -> None:
        if self.regime not in REGIMES:
            raise InputError(f"unknown regime {self.regime!r}; valid: {', '.join(REGIMES)}")
        for name in ("epochs", "batch_size", "extra_points"):
            _check_count(name, getattr(self, name), minimum=1)
        _check_count("seed", self.seed, minimum=0)
        object.__setattr__(self, "lr", check_positive("lr", self.lr))
        object.__setattr__(self, "eps", check_positive("eps", self.eps))
        for name in ("alpha", "beta"):
            value = check_number(name, getattr(self, name))
            if value < 0:
                raise InputError(f"{name} must be >= 0, got {value}")
            object.__setattr__(self, name, value)
        if self.arch not in ARCHITECTURES:
            raise InputError(
                f"unknown architecture {self.arch!r}: choose one of {', '.join(ARCHITECTURES)}"
            )
        self._check_sampler()
        self._check_property()
        self._check_regime_settings()

    def _check_regime_settings(self) -> None:
        for name, kind, owner in (
            ("certified", CertifiedConfig, "certified"),
            ("lipschitz", LipschitzConfig, "lipschitz"),
        ):
            value = getattr(self, name)
            if self.regime != owner:
                if value is not None:
                    raise InputError(
                        f"{name} settings are for the {owner} regime, not {self.regime}"
                    )
                continue
            if value is None:
                object.__setattr__(self, name, kind())
            elif not isinstance(value, kind):
                raise InputError(f"{name} must be a {kind.__name__}, got {value!r}")

    def _check_sampler(self) -> None:
        allowed = SAMPLERS[self.regime]
        if self.sampler is None:
            object.__setattr__(self, "sampler", allowed[0] if allowed else None)
        elif not allowed:
            raise InputError(f"regime {self.regime} takes no sampler, got {self.sampler!r}")
        elif self.sampler not in allowed:
            raise InputError(
                f"regime {self.regime} samples with {' or '.join(allowed)}, got {self.sampler!r}"
            )

    def _check_property(self) -> None:
        prop = self.prop
        if self.regime not in _WITH_PROPERTY:
            if prop is not None:
                raise InputError(
                    f"a property ({prop.name}) is trained only by the constraint regime or the "
                    f"certified regime, not by {self.regime}"
                )
            return
        if self.regime == "certified":
            if prop is None or prop.name not in CERTIFIED_PROPERTIES:
                got = "none" if prop is None else prop.name
                raise InputError(
                    f"the certified regime needs a property: cr, sr or scr (got {got}; "
                    "for lr use the lipschitz regime)"
                )
        elif prop is None:
            raise InputError("the constraint regime needs a property: sr, lr or scr")
        elif not prop.has_loss:
            raise InputError(
                f"{prop.name.upper()} has no differentiable loss (it is defined by argmax), so "
                "it cannot be trained as a constraint; use scr (strong classification "
                "robustness, softmax(f(x))_c ≥ η, which implies CR for η > 0.5)"
            )
        if prop.eps != self.eps:
            raise InputError(f"the property's eps={prop.eps} differs from the run's eps={self.eps}")

    @classmethod
    def paper(
        cls,
        regime: Regime,
        *,
        prop: Property | None = None,
        sampler: Sampler | None = None,
        arch: str = "mlp",
        seed: int = 0,
    ) -> TrainConfig:
        """The paper's settings (module docstring) for ``regime``."""
        return cls.preset("paper", regime, prop=prop, sampler=sampler, arch=arch, seed=seed)

    @classmethod
    def preset(
        cls,
        name: str,
        regime: Regime,
        *,
        prop: Property | None = None,
        sampler: Sampler | None = None,
        arch: str = "mlp",
        seed: int = 0,
    ) -> TrainConfig:
        """The preset ``name`` (one of :data:`CONFIG_PRESETS`) for ``regime``."""
        if name not in CONFIG_PRESETS:
            raise InputError(f"unknown preset {name!r}; valid: {', '.join(CONFIG_PRESETS)}")
        fast = name == "certified"
        return cls(
            regime=regime,
            epochs=30 if fast else 100,
            batch_size=128,
            lr=1e-3 if fast else 1e-4,
            alpha=1.0,
            beta=0.2,
            eps=0.1 if prop is None else prop.eps,
            pgd=PGDConfig.paper(),
            prop=prop,
            sampler=sampler,
            arch=arch,
            seed=seed,
        )

    def describe(self) -> dict[str, object]:
        """Every field as JSON-compatible data (for checkpoints, logs and reports)."""
        prop = None if self.prop is None else {"name": self.prop.name, **self.prop.params()}
        described: dict[str, object] = {
            "regime": self.regime,
            "sampler": self.sampler,
            "property": prop,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "alpha": self.alpha,
            "beta": self.beta,
            "eps": self.eps,
            "pgd": {
                "steps": self.pgd.steps,
                "step_size": self.pgd.step_size,
                "restarts": self.pgd.restarts,
                "random_start": self.pgd.random_start,
                "relative_step": self.pgd.relative_step,
                "center_first": self.pgd.center_first,
            },
            "arch": self.arch,
            "seed": self.seed,
            "extra_points": self.extra_points,
            "domain": [self.domain.lower, self.domain.upper],
        }
        # Only for the regimes beyond the paper: the paper's regimes serialise as before, so
        # networks trained before these regimes existed are still recognised and reused.
        if self.certified is not None:
            described["certified"] = self.certified.describe()
        if self.lipschitz is not None:
            described["lipschitz"] = self.lipschitz.describe()
        return described

    def metadata(self) -> dict[str, str]:
        """String metadata for the checkpoint and the ONNX file (keys of
        ``robustprop.export.metadata``)."""
        meta = {
            "regime": self.regime,
            "arch": self.arch,
            "seed": str(self.seed),
            "domain": json.dumps([self.domain.lower, self.domain.upper]),
            "training": json.dumps(self.describe(), sort_keys=True),
        }
        if self.sampler is not None:
            meta["sampler"] = self.sampler
        if self.prop is not None:
            meta["property"] = self.prop.name
            meta["property_params"] = json.dumps(self.prop.params(), sort_keys=True)
        settings = self.certified or self.lipschitz
        if settings is not None:
            meta["regime_params"] = json.dumps(settings.describe(), sort_keys=True)
        return meta


def _check_count(name: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
