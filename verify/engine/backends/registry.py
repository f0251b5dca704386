"""The backend registry: a :class:`BackendName` to its backend, and ``auto`` resolved per network.

This module sits above every backend module (it imports them all); the backends themselves
import only :mod:`robustprop.verify.engine.backends.base`. Importing a backend module does not
import its solver package (that happens inside ``solve``), so a missing solver is still an
InputError at the first query, not an ImportError here.
"""

from __future__ import annotations

from robustprop.properties.errors import InputError
from robustprop.verify.engine.backends.base import Backend, BackendName
from robustprop.verify.engine.backends.marabou import MarabouBackend
from robustprop.verify.engine.backends.milp import MilpBackend
from robustprop.verify.engine.backends.portfolio import PortfolioBackend
from robustprop.verify.engine.backends.z3_backend import Z3Backend
from robustprop.verify.engine.network import Affine, Network

__all__ = ["Z3_MAX_NEURONS", "choose_backend", "get_backend"]

# ``auto`` picks Z3 (exact rationals) up to this many ReLU/Clip neurons, beyond it the
# Marabou/MILP portfolio (or, for the plain strategy, Marabou alone).
Z3_MAX_NEURONS = 48


def get_backend(name: BackendName | str) -> Backend:
    """The backend registered under ``name`` (InputError for an unknown name)."""
    try:
        key = BackendName(name)
    except ValueError as err:
        choices = ", ".join(b.value for b in BackendName)
        raise InputError(f"unknown backend {name!r} (choose from {choices})") from err
    if key is BackendName.MARABOU:
        return MarabouBackend()
    if key is BackendName.MILP:
        return MilpBackend()
    if key is BackendName.PORTFOLIO:
        return PortfolioBackend()
    return Z3Backend()


def choose_backend(
    name: BackendName | str, network: Network, *, plain: bool = False
) -> BackendName:
    """Resolve ``auto`` to a concrete backend for this network (other names are kept)."""
    if name != "auto":
        return BackendName(name)
    neurons = 0
    width = network.n
    for layer in network.layers:
        if isinstance(layer, Affine):
            width = layer.out_size
        else:
            neurons += width
    if neurons <= Z3_MAX_NEURONS:
        return BackendName.Z3
    return BackendName.MARABOU if plain else BackendName.PORTFOLIO
