"""Robustness properties (SR, LR, CR, SCR) defined once, read four ways.

Each property (a frozen dataclass of its parameters, see :data:`PROPERTIES`) gives a region,
a predicate, an attack margin, a DL2 loss and a solver negation; the searchers in
:mod:`robustprop.properties.search` maximise any objective over a :class:`Region`.
"""

from robustprop.properties.base import Property, References
from robustprop.properties.cr import CR
from robustprop.properties.domain import Domain
from robustprop.properties.errors import InputError, InternalError, RobustpropError
from robustprop.properties.lr import LR
from robustprop.properties.region import Region, ball_box
from robustprop.properties.registry import PROPERTIES, make_property
from robustprop.properties.scr import SCR
from robustprop.properties.search import (
    Model,
    Objective,
    PGDConfig,
    SearchResult,
    attack,
    fgsm,
    pgd,
    uniform_search,
)
from robustprop.properties.spec import Atom, Disjunct, Distance, Negation, SoftmaxBelow
from robustprop.properties.sr import SR

__all__ = [
    "CR",
    "LR",
    "PROPERTIES",
    "SCR",
    "SR",
    "Atom",
    "Disjunct",
    "Distance",
    "Domain",
    "InputError",
    "InternalError",
    "Model",
    "Negation",
    "Objective",
    "PGDConfig",
    "Property",
    "References",
    "Region",
    "RobustpropError",
    "SearchResult",
    "SoftmaxBelow",
    "attack",
    "ball_box",
    "fgsm",
    "make_property",
    "pgd",
    "uniform_search",
]
