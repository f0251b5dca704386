"""Standard robustness SR(ε, δ): ``‖f(x) − r‖∞ ≤ δ`` on the whole region."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from robustprop.properties.base import (
    Property,
    References,
    check_outputs,
    output_distance,
    query_inputs,
    signed_moves,
)
from robustprop.properties.checks import check_positive
from robustprop.properties.domain import Domain, FloatArray
from robustprop.properties.spec import Atom, Disjunct, Negation

if TYPE_CHECKING:
    from torch import Tensor


@dataclass(frozen=True, kw_only=True)
class SR(Property):
    """Standard robustness: every output stays within ``delta`` of ``r = f(x̂)`` in L∞.

    margin ``‖y − r‖∞ − δ`` (violated iff ``> 0``); loss ``max(‖y − r‖∞ − δ, 0)``; targets
    ``±(y_j − r_j) − δ`` per output and direction (their maximum is the margin).
    """

    name: ClassVar[str] = "sr"

    delta: float = 10.0

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "delta", check_positive("delta", self.delta))

    def predicate(self, x: Tensor, y: Tensor, centers: Tensor, refs: References) -> Tensor:
        check_outputs(y, refs)
        return output_distance(y, refs) <= self.delta

    def margin(self, x: Tensor, y: Tensor, centers: Tensor, refs: References) -> Tensor:
        check_outputs(y, refs)
        return output_distance(y, refs) - self.delta

    def targets(self, x: Tensor, y: Tensor, centers: Tensor, refs: References) -> Tensor:
        """``±(y_j − r_j) − δ``: columns ``2j`` (up) and ``2j + 1`` (down); shape ``(B, 2m)``."""
        check_outputs(y, refs)
        return signed_moves(y, refs) - self.delta

    def negation(
        self,
        center: FloatArray,
        ref_scores: FloatArray,
        ref_class: int,
        domain: Domain,
        tau: float = 1e-6,
    ) -> Negation:
        """``OR_j OR_± ±(y_j − r_j) ≥ δ + τ`` on the region's box: ``2m`` disjuncts."""
        _, r, lower, upper = query_inputs(center, ref_scores, ref_class, domain, self.eps, tau)
        disjuncts = tuple(
            Disjunct(lower, upper, (Atom(((j, sign),), rhs=sign * r[j] + self.delta + tau),))
            for j in range(r.size)
            for sign in (1.0, -1.0)
        )
        return Negation(
            disjuncts,
            tau=float(tau),
            description=(
                f"SR(ε={self.eps}, δ={self.delta}) fails: some j with |f_j(x) − r_j| ≥ δ + τ "
                f"(τ={tau}) for x in B(x̂, ε) ∩ domain"
            ),
        )
