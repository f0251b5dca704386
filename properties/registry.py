"""The one table of properties, keyed by CLI token; CLI, training and tests read it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from types import MappingProxyType
from typing import Final

from robustprop.properties.base import Property
from robustprop.properties.cr import CR
from robustprop.properties.errors import InputError
from robustprop.properties.lr import LR
from robustprop.properties.scr import SCR
from robustprop.properties.sr import SR

PROPERTIES: Final[Mapping[str, type[Property]]] = MappingProxyType(
    {"sr": SR, "lr": LR, "cr": CR, "scr": SCR}
)


def make_property(name: str, **params: float | str) -> Property:
    """The property registered as ``name``, built from its own parameters only.

    Raises :class:`InputError` for an unknown name, a parameter the property does not have
    (e.g. ``delta`` for LR) or an invalid value.
    """
    cls = PROPERTIES.get(name)
    if cls is None:
        raise InputError(f"unknown property {name!r}; valid: {', '.join(PROPERTIES)}")
    allowed = {f.name for f in fields(cls)}
    extra = sorted(set(params) - allowed)
    if extra:
        raise InputError(
            f"property {name!r} has no parameter {', '.join(extra)}; "
            f"its parameters: {', '.join(sorted(allowed))}"
        )
    return cls(**params)  # type: ignore[arg-type]
