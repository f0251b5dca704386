"""The options of ``verify run`` as one frozen record, and what they mean as library values."""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path

from robustprop.properties import Domain, PGDConfig, Property, make_property
from robustprop.properties.errors import InputError
from robustprop.verify.engine.network import parse_stats
from robustprop.verify.run.config import ATTACK_PRESETS

__all__ = ["RunFlags", "eps_list"]


@dataclass(frozen=True)
class RunFlags:
    """The command line of ``verify run``, as click parsed it (one field per option)."""

    prop_name: str
    net: Path
    data: str | None
    data_dir: Path | None
    split: str
    points: int
    point_seed: int | None
    eps: str
    delta: float | None
    lipschitz: float | None
    eta: float | None
    reference: str
    metrics: str
    backend: str
    strategy: str
    device: str
    timeout_s: float
    max_time_s: float | None
    jobs: int
    tau: float
    attack_preset: str
    attack_steps: int | None
    restarts: int | None
    samples: int
    seed: int
    min_satisfaction: float | None
    require: str | None
    gate_on: str
    min_security: float | None
    json_out: Path | None
    junit_out: Path | None
    store: Path | None
    no_cache: bool
    trust_store: bool
    executor: str
    address: str | None
    export_vnnlib: Path | None
    input_mean: str | None
    input_std: str | None
    domain_text: str | None
    progress: bool | None

    def show_progress(self) -> bool:
        """``--progress`` / ``--no-progress``, else whether stderr is a terminal."""
        return sys.stderr.isatty() if self.progress is None else self.progress

    def stats(self, name: str) -> tuple[float, ...] | None:
        """``--input-mean`` or ``--input-std`` as numbers (None: not given)."""
        text = getattr(self, f"input_{name}")
        return None if text is None else parse_stats(text, f"--input-{name}")

    def domain(self) -> Domain | None:
        """``--domain LO,HI`` (None: the model's metadata, else [0, 1])."""
        values = () if self.domain_text is None else parse_stats(self.domain_text, "--domain")
        if self.domain_text is not None and len(values) != 2:
            raise InputError(f"--domain: expected LO,HI, got {self.domain_text!r}")
        return Domain(*values) if values else None

    def properties(self) -> list[Property]:
        """One property per ε of ``--eps`` with the other parameters given."""
        props = []
        for e in eps_list(self.eps):
            params: dict[str, float | str] = {"eps": e, "reference": self.reference}
            for name in ("delta", "lipschitz", "eta"):
                value = getattr(self, name)
                if value is not None:
                    params[name] = value
            try:
                props.append(make_property(self.prop_name, **params))
            except InputError as err:
                raise InputError(f"--property {self.prop_name}: {err}") from err
        return props

    def pgd(self) -> PGDConfig:
        """The attack preset with ``--attack-steps`` / ``--restarts`` applied."""
        pgd = ATTACK_PRESETS[self.attack_preset]()
        if self.attack_steps is not None:
            pgd = replace(pgd, steps=self.attack_steps)
        if self.restarts is not None:
            pgd = replace(pgd, restarts=self.restarts)
        return pgd


def eps_list(raw: str) -> list[float]:
    values = []
    for item in raw.split(","):
        try:
            values.append(float(item))
        except ValueError as err:
            raise InputError(f"--eps: {item.strip()!r} is not a number") from err
    if not values:
        raise InputError("--eps: give at least one value")
    return values
