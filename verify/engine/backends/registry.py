"""The backend registry: a :class:`BackendName` to its backend, and ``auto`` resolved per network.

This module sits above every backend module (it imports them all); the backends themselves
import only :mod:`robustprop.verify.engine.backends.base`. Importing a backend module does not
import its solver package (that happens inside ``solve``). What can run is checked here, by
importing the solver packages (:data:`SOLVER_PACKAGES`): :func:`require_backend` before any work
(the CLI calls it right after parsing: a backend whose package is missing is an InputError naming
both and the ``pip install`` line), and :func:`choose_backend` for each network. ``auto`` and
``portfolio`` do without a missing package: ``auto`` takes the next backend in its order, a
portfolio missing one of its two solvers runs the other alone; each skipped package is logged
once per process (a warning), not an error.
"""

from __future__ import annotations

import functools
import importlib
import logging
from typing import Final

from robustprop.lazy import HEAVY
from robustprop.properties.errors import InputError
from robustprop.verify.engine.backends.base import Backend, BackendName
from robustprop.verify.engine.backends.marabou import MarabouBackend
from robustprop.verify.engine.backends.milp import MilpBackend
from robustprop.verify.engine.backends.portfolio import PortfolioBackend
from robustprop.verify.engine.backends.z3_backend import Z3Backend
from robustprop.verify.engine.network import Affine, Network

__all__ = [
    "SOLVER_PACKAGES",
    "Z3_MAX_NEURONS",
    "choose_backend",
    "get_backend",
    "missing_packages",
    "require_backend",
]

log = logging.getLogger(__name__)

# ``auto`` picks Z3 (exact rationals) up to this many ReLU/Clip neurons, beyond it the
# Marabou/MILP portfolio (or, for the plain strategy, Marabou alone).
Z3_MAX_NEURONS = 48

#: The modules each backend imports to solve (their distributions are in ``lazy.HEAVY``).
SOLVER_PACKAGES: Final[dict[BackendName, tuple[str, ...]]] = {
    BackendName.MARABOU: ("maraboupy.MarabouCore",),
    BackendName.Z3: ("z3",),
    BackendName.MILP: ("highspy",),
    BackendName.PORTFOLIO: ("maraboupy.MarabouCore", "highspy"),
}


def get_backend(name: BackendName | str) -> Backend:
    """The backend registered under ``name`` (InputError for an unknown name)."""
    key = _name(name)
    if key is BackendName.MARABOU:
        return MarabouBackend()
    if key is BackendName.MILP:
        return MilpBackend()
    if key is BackendName.PORTFOLIO:
        return PortfolioBackend()
    return Z3Backend()


def missing_packages(name: BackendName | str) -> dict[str, str]:
    """The distributions backend ``name`` needs that cannot be imported here, each with why."""
    missing = {}
    for module in SOLVER_PACKAGES[_name(name)]:
        why = _import_error(module)
        if why is not None:
            missing[_distribution(module)] = why
    return missing


def require_backend(name: BackendName | str, *, plain: bool = False) -> None:
    """Check up front that backend ``name`` (or ``auto``) can run on this machine.

    Raises:
        InputError: a named backend's solver package cannot be imported (a portfolio: neither
            of its two), or ``auto`` has no solver package at all; the message names the
            backend, the package and the ``pip install`` line.
    """
    # auto needs any one of them: the order of networks that are not tiny, whose solver
    # packages the run imports anyway (the first that imports ends the check; z3 costs 25 ms
    # of a 2 s ``verify vnnlib`` on ACAS Xu, which never uses it)
    order = _auto_order(tiny=False, plain=plain) if name == "auto" else _fallbacks(_name(name))
    _first_runnable(str(name), order, strict=True)


def choose_backend(
    name: BackendName | str, network: Network, *, plain: bool = False
) -> BackendName:
    """The backend to run for this network: ``auto`` resolved (Z3 for tiny networks, else the
    portfolio, or Marabou for the plain strategy), a backend whose package is missing replaced
    by the next that can run (logged) where ``name`` allows it. When none can, the first is
    kept: a run that asks no exact query needs no solver, and the first query's InputError
    names the package (:func:`require_backend` is the up-front check)."""
    if name != "auto":
        return _first_runnable(str(name), _fallbacks(_name(name)), strict=False)
    neurons = 0
    width = network.n
    for layer in network.layers:
        if isinstance(layer, Affine):
            width = layer.out_size
        else:
            neurons += width
    order = _auto_order(tiny=neurons <= Z3_MAX_NEURONS, plain=plain)
    return _first_runnable("auto", order, strict=False)


def _name(name: BackendName | str) -> BackendName:
    try:
        return BackendName(name)
    except ValueError as err:
        choices = ", ".join(b.value for b in BackendName)
        raise InputError(f"unknown backend {name!r} (choose from {choices})") from err


def _auto_order(*, tiny: bool, plain: bool) -> tuple[BackendName, ...]:
    """``auto``'s preference: Z3 first for tiny networks, last (slow but sound) beyond."""
    big = (BackendName.MARABOU, BackendName.MILP) if plain else _fallbacks(BackendName.PORTFOLIO)
    return (BackendName.Z3, *big) if tiny else (*big, BackendName.Z3)


def _fallbacks(name: BackendName) -> tuple[BackendName, ...]:
    """``name``, then what may stand in for it: a portfolio's racers, one at a time."""
    if name is BackendName.PORTFOLIO:
        return (name, BackendName.MARABOU, BackendName.MILP)
    return (name,)


def _first_runnable(asked: str, order: tuple[BackendName, ...], *, strict: bool) -> BackendName:
    """The first backend of ``order`` whose packages all import; when none can, an InputError
    (``strict``: the up-front check, which logs nothing) or the first (its ``solve`` will say
    why). Otherwise what was skipped is logged, once per process (``strict`` is quiet)."""
    skipped: dict[str, str] = {}
    for backend in order:
        missing = missing_packages(backend)
        if not missing:
            for dist, why in skipped.items():
                if not strict:
                    _warn_once(
                        f"backend {asked}: package {dist!r} cannot be imported ({why}), so what "
                        f"needs it is skipped (pip install {dist} to use it); running "
                        f"{backend.value}"
                    )
            return backend
        skipped.update(missing)
    if not strict:
        return order[0]
    install = f"pip install {' '.join(skipped)}"
    if len(skipped) == 1:
        ((dist, why),) = skipped.items()
        raise InputError(
            f"backend {asked!r} needs the solver package {dist!r}, which cannot be imported "
            f"here ({why}); install it with: {install}"
        )
    reasons = "; ".join(f"{d}: {why}" for d, why in skipped.items())
    raise InputError(
        f"backend {asked!r} needs one of the solver packages {', '.join(map(repr, skipped))}, "
        f"and none can be imported here ({reasons}); install them with: {install}"
    )


@functools.cache
def _import_error(module: str) -> str | None:
    """None when ``module`` imports, else why not (once per process: installs do not change
    during a run)."""
    try:
        importlib.import_module(module)
    except ImportError as err:
        return " ".join(str(err).split()) or type(err).__name__
    return None


def _distribution(module: str) -> str:
    return HEAVY[module.split(".", 1)[0]]


@functools.cache
def _warn_once(message: str) -> None:
    log.warning("%s", message)
