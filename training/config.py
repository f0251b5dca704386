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
===============  ================  ========================================================

The paper's preset (:meth:`TrainConfig.paper`): Adam, lr 1e-4, 100 epochs, batch 128, α=1,
β=0.2, ε=0.1, PGD 50 sign steps of 0.01 from a uniform start (:meth:`PGDConfig.paper`); the
property parameters δ=10, L=10, η=0.52 are the property classes' own defaults.
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

__all__ = ["REGIMES", "SAMPLERS", "Regime", "Sampler", "TrainConfig"]

Regime = Literal["baseline", "augment", "adversarial", "constraint"]
Sampler = Literal["uniform", "fgsm", "pgd"]

#: The samplers each regime accepts; the first one is its default.
SAMPLERS: Final[Mapping[str, tuple[Sampler, ...]]] = MappingProxyType(
    {
        "baseline": (),
        "augment": ("uniform", "fgsm"),
        "adversarial": ("fgsm", "pgd"),
        "constraint": ("pgd",),
    }
)
REGIMES: Final[tuple[Regime, ...]] = ("baseline", "augment", "adversarial", "constraint")


@dataclass(frozen=True)
class TrainConfig:
    """Every hyper-parameter of a training run.

    ``eps`` is the radius of the sampling ball of ``augment`` and ``adversarial``; for
    ``constraint`` it must equal ``prop.eps`` (the property's region is the ball). ``pgd`` is
    used by the PGD sampler. ``sampler=None`` picks the regime's default. Invalid values and
    regime/sampler/property mismatches raise :class:`InputError`.
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
        if self.regime != "constraint":
            if prop is not None:
                raise InputError(
                    f"a property ({prop.name}) is trained only by the constraint regime, "
                    f"not by {self.regime}"
                )
            return
        if prop is None:
            raise InputError("the constraint regime needs a property: sr, lr or scr")
        if not prop.has_loss:
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
        return cls(
            regime=regime,
            epochs=100,
            batch_size=128,
            lr=1e-4,
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
        return {
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
        return meta


def _check_count(name: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
