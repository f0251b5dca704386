"""Classification robustness CR(ε): ``argmax f(x) = c`` on the whole region."""

from __future__ import annotations

import math
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
from robustprop.properties.domain import Domain, FloatArray
from robustprop.properties.errors import InputError
from robustprop.properties.spec import Atom, Disjunct, Negation

if TYPE_CHECKING:
    import torch
    from torch import Tensor
else:
    from robustprop.lazy import torch


@dataclass(frozen=True, kw_only=True)
class CR(Property):
    """Classification robustness: every other score stays strictly below ``y_c``.

    margin ``max_{j≠c} y_j − y_c`` (violated iff ``≥ 0``; ``−inf`` when ``m = 1``); targets
    ``y_j − y_c`` per class ``j`` (their maximum is the margin).
    No loss: argmax is not differentiable; train with SCR instead.
    """

    name: ClassVar[str] = "cr"
    has_loss: ClassVar[bool] = False

    def predicate(self, x: Tensor, y: Tensor, centers: Tensor, refs: References) -> Tensor:
        check_outputs(y, refs)
        return _best_other(y, refs.classes) < class_score(y, refs.classes)

    def margin(self, x: Tensor, y: Tensor, centers: Tensor, refs: References) -> Tensor:
        check_outputs(y, refs)
        return _best_other(y, refs.classes) - class_score(y, refs.classes)

    def targets(self, x: Tensor, y: Tensor, centers: Tensor, refs: References) -> Tensor:
        """``y_j − y_c`` for each class ``j`` (``−inf`` at ``j = c``); shape ``(B, m)``."""
        check_outputs(y, refs)
        return class_gaps(y, refs.classes)

    def violated(self, margin: Tensor) -> Tensor:
        """CR's violation ``y_j ≥ y_c`` is non-strict: ``margin >= 0``."""
        return margin >= 0

    def loss(self, x: Tensor, y: Tensor, centers: Tensor, refs: References) -> Tensor:
        """CR has no loss; always raises :class:`InputError`."""
        raise InputError(
            "CR has no differentiable loss (it is defined by argmax); "
            "train with SCR (softmax(f(x))_c ≥ η, η > 0.5 implies CR) instead"
        )

    def negation(
        self,
        center: FloatArray,
        ref_scores: FloatArray,
        ref_class: int,
        domain: Domain,
        tau: float = 1e-6,
    ) -> Negation:
        """``OR_{j≠c} y_j − y_c ≥ 0``: ``m − 1`` disjuncts, no τ (recorded as 0).

        CR's violation is already non-strict, so ``tau`` is validated and otherwise ignored.
        """
        _, r, lower, upper = query_inputs(center, ref_scores, ref_class, domain, self.eps, tau)
        if r.size < 2:
            raise InputError(f"CR needs at least 2 classes, got m={r.size}")
        disjuncts = tuple(
            Disjunct(lower, upper, (Atom(((j, 1.0), (ref_class, -1.0)), rhs=0.0),))
            for j in range(r.size)
            if j != ref_class
        )
        return Negation(
            disjuncts,
            tau=0.0,
            description=(
                f"CR(ε={self.eps}) fails: some j ≠ c={ref_class} with f_j(x) ≥ f_c(x) "
                "for x in B(x̂, ε) ∩ domain"
            ),
        )


def _best_other(y: Tensor, classes: Tensor) -> Tensor:
    """``max_{j≠c} y_j`` per row; ``−inf`` if there is no other class."""
    mask = torch.nn.functional.one_hot(classes, y.shape[1]).bool()
    return y.masked_fill(mask, -math.inf).amax(dim=1)
