"""Lipschitz robustness LR(ε, L): ``‖f(x) − r‖∞ ≤ L·‖x − x̂‖∞`` on the whole region."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from robustprop.properties.base import (
    Property,
    References,
    check_outputs,
    input_distance,
    output_distance,
    query_inputs,
    signed_moves,
)
from robustprop.properties.checks import check_positive
from robustprop.properties.domain import Domain, FloatArray
from robustprop.properties.spec import Atom, Disjunct, Distance, Negation

if TYPE_CHECKING:
    from torch import Tensor


@dataclass(frozen=True, kw_only=True)
class LR(Property):
    """Lipschitz robustness: outputs move at most ``lipschitz`` times the input move, in L∞.

    margin ``‖y − r‖∞ − L·‖x − x̂‖∞`` (violated iff ``> 0``); loss ``max(margin, 0)``; targets
    ``±(y_j − r_j) − L·‖x − x̂‖∞`` per output and direction (their maximum is the margin).
    At ``x = x̂`` the predicate asks for ``f(x) = r`` exactly.
    """

    name: ClassVar[str] = "lr"

    lipschitz: float = 10.0

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "lipschitz", check_positive("lipschitz", self.lipschitz))

    def predicate(self, x: Tensor, y: Tensor, centers: Tensor, refs: References) -> Tensor:
        check_outputs(y, refs)
        return output_distance(y, refs) <= self.lipschitz * input_distance(x, centers)

    def margin(self, x: Tensor, y: Tensor, centers: Tensor, refs: References) -> Tensor:
        check_outputs(y, refs)
        return output_distance(y, refs) - self.lipschitz * input_distance(x, centers)

    def targets(self, x: Tensor, y: Tensor, centers: Tensor, refs: References) -> Tensor:
        """``±(y_j − r_j) − L·‖x − x̂‖∞``: columns ``2j`` (up), ``2j + 1`` (down); ``(B, 2m)``."""
        check_outputs(y, refs)
        return signed_moves(y, refs) - self.lipschitz * input_distance(x, centers)[:, None]

    def negation(
        self,
        center: FloatArray,
        ref_scores: FloatArray,
        ref_class: int,
        domain: Domain,
        tau: float = 1e-6,
    ) -> Negation:
        """``OR_j OR_± ±(y_j − r_j) − L·d ≥ τ`` with ``|x_i − x̂_i| ≤ d ≤ ε``: ``2m`` disjuncts."""
        c, r, lower, upper = query_inputs(center, ref_scores, ref_class, domain, self.eps, tau)
        disjuncts = tuple(
            Disjunct(
                lower,
                upper,
                (Atom(((j, sign),), rhs=sign * r[j] + tau, dist_coeff=-self.lipschitz),),
            )
            for j in range(r.size)
            for sign in (1.0, -1.0)
        )
        return Negation(
            disjuncts,
            distance=Distance(c, self.eps),
            tau=float(tau),
            description=(
                f"LR(ε={self.eps}, L={self.lipschitz}) fails: some j with "
                f"|f_j(x) − r_j| ≥ L·‖x − x̂‖∞ + τ (τ={tau}) for x in B(x̂, ε) ∩ domain"
            ),
        )
