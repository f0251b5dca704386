"""Strong classification robustness SCR(ε, η): ``softmax(f(x))_c ≥ η`` on the whole region."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from robustprop.properties.base import (
    Property,
    References,
    check_outputs,
    class_gaps,
    class_score,
    query_inputs,
)
from robustprop.properties.checks import check_number
from robustprop.properties.domain import Domain, FloatArray
from robustprop.properties.errors import InputError
from robustprop.properties.spec import Disjunct, Negation, SoftmaxBelow

if TYPE_CHECKING:
    import torch
    from torch import Tensor
else:
    from robustprop.lazy import torch


@dataclass(frozen=True, kw_only=True)
class SCR(Property):
    """Strong classification robustness: class ``c`` keeps probability at least ``eta``.

    margin ``η − p_c`` with ``p = softmax(y)`` (violated iff ``> 0``); loss ``max(η − p_c, 0)``;
    targets ``y_j − y_c − log(1/η − 1)`` per class ``j``: positive only if
    ``exp(y_j − y_c) > 1/η − 1``, which alone pushes ``p_c`` below ``η``.
    With ``η > 0.5`` it implies CR; ``η ≤ 0.5`` is allowed but warns.
    """

    name: ClassVar[str] = "scr"

    eta: float = 0.52

    def __post_init__(self) -> None:
        super().__post_init__()
        eta = check_number("eta", self.eta)
        if not 0.0 < eta < 1.0:
            raise InputError(f"eta must lie in (0, 1), got {self.eta}")
        if eta <= 0.5:
            warnings.warn(
                f"SCR with eta={eta} <= 0.5 no longer implies CR "
                "(another class may tie or win while p_c ≥ η)",
                UserWarning,
                stacklevel=3,
            )
        object.__setattr__(self, "eta", eta)

    def predicate(self, x: Tensor, y: Tensor, centers: Tensor, refs: References) -> Tensor:
        check_outputs(y, refs)
        return _class_probability(y, refs) >= self.eta

    def margin(self, x: Tensor, y: Tensor, centers: Tensor, refs: References) -> Tensor:
        check_outputs(y, refs)
        return self.eta - _class_probability(y, refs)

    def targets(self, x: Tensor, y: Tensor, centers: Tensor, refs: References) -> Tensor:
        """``y_j − y_c − log(1/η − 1)`` per class ``j`` (``−inf`` at ``j = c``); ``(B, m)``.

        Positive ⇒ ``Σ_{i≠c} exp(y_i − y_c) > 1/η − 1`` ⇒ ``p_c < η``: a violation (up to
        rounding within a few ulps of the boundary).
        """
        check_outputs(y, refs)
        return class_gaps(y, refs.classes) - math.log(1.0 / self.eta - 1.0)

    def negation(
        self,
        center: FloatArray,
        ref_scores: FloatArray,
        ref_class: int,
        domain: Domain,
        tau: float = 1e-6,
    ) -> Negation:
        """``softmax(y)_c < η − τ`` on the region's box: one disjunct, no linear atoms.

        The softmax condition keeps the property's ``η``; ``τ`` travels in ``Negation.tau``
        (see ``SoftmaxBelow.threshold_with_margin``): "violated" means ``η − p_c > τ``.
        """
        _, r, lower, upper = query_inputs(center, ref_scores, ref_class, domain, self.eps, tau)
        if r.size < 2:
            raise InputError(f"SCR needs at least 2 classes, got m={r.size}")
        if tau >= self.eta:
            raise InputError(f"tau must be below eta={self.eta}, got {tau}")
        return Negation(
            (Disjunct(lower, upper, ()),),
            softmax=SoftmaxBelow(ref_class, self.eta),
            tau=float(tau),
            description=(
                f"SCR(ε={self.eps}, η={self.eta}) fails: softmax(f(x))_c < η − τ "
                f"(c={ref_class}, τ={tau}) for x in B(x̂, ε) ∩ domain"
            ),
        )


def _class_probability(y: Tensor, refs: References) -> Tensor:
    """``softmax(y)_c`` per row."""
    return class_score(torch.softmax(y, dim=1), refs.classes)
