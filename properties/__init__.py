"""Robustness properties (SR, LR, CR, SCR) defined once, read several ways.

Each property (a frozen dataclass of its parameters, see :data:`PROPERTIES`) gives a region,
a predicate, an attack margin and targeted attack objectives, a DL2 loss and a solver negation;
the one ascent loop of :mod:`robustprop.properties.ascent` climbs any objective over a
:class:`Region`, and the searchers of :mod:`robustprop.properties.search` are built on it.
Importing this package does not import torch: the torch readings load it on first use.
"""

from robustprop.properties.ascent import (
    BatchObjective,
    Best,
    Model,
    PGDConfig,
    RowObjective,
    SearchResult,
    Stop,
    ascend,
    ascend_region,
)
from robustprop.properties.base import Property, References
from robustprop.properties.cr import CR
from robustprop.properties.domain import Domain
from robustprop.properties.errors import InputError, InternalError, RobustpropError
from robustprop.properties.lr import LR
from robustprop.properties.region import Region, ball_box
from robustprop.properties.registry import PROPERTIES, make_property
from robustprop.properties.scr import SCR
from robustprop.properties.search import (
    Objective,
    attack,
    fgsm,
    objective_rows,
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
    "BatchObjective",
    "Best",
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
    "RowObjective",
    "SearchResult",
    "SoftmaxBelow",
    "Stop",
    "ascend",
    "ascend_region",
    "attack",
    "ball_box",
    "fgsm",
    "make_property",
    "objective_rows",
    "pgd",
    "uniform_search",
]
