"""What one run checks and how: :class:`RunConfig`, built at the edge (CLI or Python API)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from robustprop.properties import Domain, PGDConfig, Property
from robustprop.properties.errors import InputError
from robustprop.verify.engine.backends.base import BackendName
from robustprop.verify.engine.verdict import Status
from robustprop.verify.run.model import ModelBytes
from robustprop.verify.run.points import Points, PointSelection
from robustprop.verify.run.reuse import ALL_STATUSES
from robustprop.verify.run.stages import Executor, Strategy
from robustprop.verify.run.summary import METRICS

__all__ = ["ATTACK_PRESETS", "BACKEND_CHOICES", "RunConfig"]

#: ``--backend`` values: ``auto`` or an exact backend's name.
BACKEND_CHOICES: tuple[str, ...] = ("auto", *(b.value for b in BackendName))

#: ``--attack`` presets: the verifier's strong PGD and the paper's.
ATTACK_PRESETS: dict[str, Callable[[], PGDConfig]] = {
    "strong": PGDConfig.strong,
    "paper": PGDConfig.paper,
}


@dataclass(frozen=True, eq=False)
class RunConfig:
    """Everything one run needs. ``points``: a dataset selection or the points themselves.

    ``timeout_s``: wall time per point of the exact stage; ``max_time_s``: wall time of the
    whole run, after which undecided points are ``unknown`` (run time limit). ``reuse``: the
    stored statuses reused without evidence (a stored ``violated`` is reused when its witness
    replays); ``store_trusted``: the caller rests decisions on them (``--trust-store``).
    """

    model: ModelBytes
    prop: Property
    points: PointSelection | Points
    metrics: tuple[str, ...] = METRICS
    backend: str = "auto"
    timeout_s: float = 60.0
    jobs: int = 1
    tau: float = 1e-6
    attack: PGDConfig = field(default_factory=PGDConfig.strong)
    samples: int = 1000
    seed: int = 0
    domain: Domain | None = None  # None: from the model's metadata, else [0, 1]
    store_path: Path | None = None  # None: no store (``--no-cache``)
    reuse: frozenset[Status] = ALL_STATUSES
    store_trusted: bool = False
    max_time_s: float | None = None
    strategy: Strategy = Strategy.STAGED
    executor: Executor = Executor.LOCAL
    address: str | None = None  # Ray cluster address; None starts a local instance
    export_vnnlib: Path | None = None  # write each point's query as VNN-LIB (SR, CR)
    device: str = "cpu"  # where PGD and bound propagation run
    argv: tuple[str, ...] = ()  # the command line, recorded in the run's document

    def __post_init__(self) -> None:
        for metric in self.metrics:
            if metric not in METRICS:
                raise InputError(f"unknown metric {metric!r} (choose from {', '.join(METRICS)})")
        if not self.metrics:
            raise InputError("name at least one metric")
        if self.backend not in BACKEND_CHOICES:
            raise InputError(
                f"unknown backend {self.backend!r} (choose from {', '.join(BACKEND_CHOICES)})"
            )
        for name, value in (("timeout", self.timeout_s), ("samples", self.samples)):
            if not value > 0:
                raise InputError(f"{name} must be > 0, got {value}")
        if self.max_time_s is not None and not self.max_time_s > 0:
            raise InputError(f"max time must be > 0 seconds, got {self.max_time_s}")
        object.__setattr__(self, "reuse", frozenset(Status(s) for s in self.reuse))
        if not self.jobs >= 1:
            raise InputError(f"jobs must be >= 1, got {self.jobs}")
        if not self.tau >= 0:
            raise InputError(f"tau must be >= 0, got {self.tau}")
        for name, enum in (("strategy", Strategy), ("executor", Executor)):
            value = getattr(self, name)
            try:
                object.__setattr__(self, name, enum(value))
            except ValueError as err:
                choices = ", ".join(e.value for e in enum)
                raise InputError(f"unknown {name} {value!r} (choose from {choices})") from err

    def __repr__(self) -> str:
        return (
            f"RunConfig({self.model.source!r}, {self.prop!r}, metrics={self.metrics}, "
            f"strategy={self.strategy.value})"
        )
