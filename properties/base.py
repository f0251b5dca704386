"""What every property shares: parameters, references, region, and the loss built on the margin.

A property is a frozen dataclass of its parameters. Its readings, all batched over ``B`` points
with network outputs ``y`` = the clamped scores of shape ``(B, m)``:

- :meth:`Property.references` — what the outputs are compared with (``r``, ``c``);
- :meth:`Property.region` — the ε-ball ∩ domain around each point;
- :meth:`Property.predicate` — whether ``P(x)`` holds (the one source of truth);
- :meth:`Property.margin` — the attack objective; ``predicate == ~violated(margin)``;
- :meth:`Property.targets` — targeted attack objectives (one per class, or per output and
  direction), each violated only where the predicate fails; :meth:`Property.objectives` is
  the margin followed by them, what the attacks of :mod:`robustprop.properties.ascent` climb;
- :meth:`Property.loss` — the DL2 loss, zero exactly where the predicate holds;
- :meth:`Property.negation` — the solver query for one point (float64).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np

from robustprop.properties.checks import check_number, check_positive
from robustprop.properties.domain import Domain, FloatArray
from robustprop.properties.errors import InputError
from robustprop.properties.region import Region, ball_box
from robustprop.properties.spec import Negation

if TYPE_CHECKING:
    import torch
    from torch import Tensor
else:
    from robustprop.lazy import torch

Reference = Literal["output", "label"]
REFERENCES: tuple[Reference, ...] = ("output", "label")


@dataclass(frozen=True, eq=False)
class References:
    """What the outputs at ``x`` are compared with, per point.

    ``scores`` is ``r = f(x̂)`` (SR, LR); ``classes`` is ``c`` (CR, SCR).

    Shape:
        scores: ``(B, m)``; classes: ``(B,)``, int64.
    """

    scores: Tensor
    classes: Tensor

    def detach(self) -> References:
        """The same references cut from the autograd graph."""
        return References(self.scores.detach(), self.classes.detach())


@dataclass(frozen=True, kw_only=True)
class Property(ABC):
    """Parameters shared by every property: the ball radius and the reference choice.

    ``reference="output"`` compares with the network's own output at ``x̂``: ``r = f(x̂)``,
    ``c = argmax f(x̂)``. ``reference="label"`` takes ``c`` from the data label; ``r`` stays
    ``f(x̂)`` because a one-hot label lives on another scale than clamped scores, so
    ``‖f(x) − onehot‖∞ ≤ δ`` would measure accuracy, not robustness (paper §3).
    """

    name: ClassVar[str]
    has_loss: ClassVar[bool] = True

    eps: float = 0.1
    reference: Reference = "output"

    def __post_init__(self) -> None:
        object.__setattr__(self, "eps", check_positive("eps", self.eps))
        if self.reference not in REFERENCES:
            raise InputError(f"reference must be one of {REFERENCES}, got {self.reference!r}")

    def params(self) -> dict[str, float | str]:
        """The parameters by field name (for reports and metadata)."""
        out: dict[str, float | str] = {}
        for f in fields(self):
            out[f.name] = getattr(self, f.name)
        return out

    def references(self, y_center: Tensor, labels: Tensor | None = None) -> References:
        """``r = f(x̂)`` and ``c`` (``argmax f(x̂)``, or ``labels`` for ``reference="label"``).

        Shape:
            y_center: ``(B, m)``; labels: ``(B,)`` integer; needed only for ``"label"``.
        """
        if y_center.dim() != 2:
            raise InputError(f"outputs must have shape (B, m), got {tuple(y_center.shape)}")
        if self.reference == "output":
            return References(y_center, y_center.argmax(dim=1))
        if labels is None:
            raise InputError('reference="label" needs the data labels, got labels=None')
        b, m = y_center.shape
        if labels.shape != (b,) or labels.is_floating_point() or labels.is_complex():
            raise InputError(
                f"labels must be integers of shape ({b},), got {labels.dtype} {tuple(labels.shape)}"
            )
        bad = (labels < 0) | (labels >= m)
        if bool(bad.any()):
            raise InputError(f"labels must lie in [0, {m}), got {int(labels[bad][0])}")
        return References(y_center, labels.to(torch.int64))

    def region(self, centers: Tensor, domain: Domain) -> Region:
        """``B(x̂, ε) ∩ domain`` around each row of ``centers`` (shape ``(B, n)``)."""
        return Region(centers, self.eps, domain)

    @abstractmethod
    def predicate(self, x: Tensor, y: Tensor, centers: Tensor, refs: References) -> Tensor:
        """Whether ``P`` holds at ``x`` with outputs ``y = f(x)``.

        Shape:
            x, centers: ``(B, n)``; y: ``(B, m)``; output: ``(B,)``, bool.
        """

    @abstractmethod
    def margin(self, x: Tensor, y: Tensor, centers: Tensor, refs: References) -> Tensor:
        """Attack objective (to maximise); ``P`` fails at ``x`` iff ``violated(margin)``.

        Shape:
            x, centers: ``(B, n)``; y: ``(B, m)``; output: ``(B,)``.
        """

    @abstractmethod
    def targets(self, x: Tensor, y: Tensor, centers: Tensor, refs: References) -> Tensor:
        """Targeted attack objectives (to maximise), one per way the property can fail.

        Each column pushes the outputs one way (class ``j`` over ``c``; output ``j`` up or
        down); gradient ascent on a column finds violations that the margin's gradient, which
        follows only the currently worst way, misses. A column signals a violation only where
        there is one: ``violated(targets[:, j])`` implies ``not predicate``.

        Shape:
            x, centers: ``(B, n)``; y: ``(B, m)``; output: ``(B, t)``, ``t`` fixed by ``m``.
        """

    def objectives(self, x: Tensor, y: Tensor, centers: Tensor, refs: References) -> Tensor:
        """Every attack objective: column 0 the :meth:`margin`, then the :meth:`targets`.

        ``violated(objectives.amax(dim=1)) == ~predicate``: climbing any column is a search
        for a violation, and the margin (column 0) decides whether one was found.

        Shape:
            x, centers: ``(B, n)``; y: ``(B, m)``; output: ``(B, 1 + t)``.
        """
        margin = self.margin(x, y, centers, refs)
        return torch.cat([margin[:, None], self.targets(x, y, centers, refs)], dim=1)

    def violated(self, margin: Tensor) -> Tensor:
        """Whether a margin means a violation: ``margin > 0`` (CR: ``margin >= 0``)."""
        return margin > 0

    def loss(self, x: Tensor, y: Tensor, centers: Tensor, refs: References) -> Tensor:
        """DL2 loss ``max(margin, 0)``: ``≥ 0``, and ``0`` exactly where the predicate holds.

        Shape:
            x, centers: ``(B, n)``; y: ``(B, m)``; output: ``(B,)``.
        """
        return torch.clamp(self.margin(x, y, centers, refs), min=0.0)

    @abstractmethod
    def negation(
        self,
        center: FloatArray,
        ref_scores: FloatArray,
        ref_class: int,
        domain: Domain,
        tau: float = 1e-6,
    ) -> Negation:
        """The inputs around one point on which ``P`` fails by more than ``tau`` (float64).

        Shape:
            center: ``(n,)``; ref_scores: ``(m,)``.
        """


def check_outputs(y: Tensor, refs: References) -> None:
    """:class:`InputError` unless ``y`` matches the references' shape ``(B, m)``."""
    if y.shape != refs.scores.shape or refs.classes.shape != y.shape[:1]:
        raise InputError(
            f"outputs of shape {tuple(y.shape)} do not match references of shape "
            f"{tuple(refs.scores.shape)} / classes {tuple(refs.classes.shape)}"
        )


def check_inputs(x: Tensor, centers: Tensor) -> None:
    """:class:`InputError` unless ``x`` and ``centers`` have the same shape ``(B, n)``."""
    if x.dim() != 2 or x.shape != centers.shape:
        raise InputError(
            f"inputs of shape {tuple(x.shape)} do not match centers {tuple(centers.shape)}"
        )


def class_score(y: Tensor, classes: Tensor) -> Tensor:
    """``y[b, classes[b]]`` for each row ``b``."""
    return y.gather(1, classes[:, None]).squeeze(1)


def query_inputs(
    center: FloatArray,
    ref_scores: FloatArray,
    ref_class: int,
    domain: Domain,
    eps: float,
    tau: float,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Validated float64 ``(center, ref_scores, box lower, box upper)`` for a negation."""
    if check_number("tau", tau) < 0:
        raise InputError(f"tau must be >= 0, got {tau}")
    c = np.asarray(center, dtype=np.float64)
    r = np.asarray(ref_scores, dtype=np.float64)
    if r.ndim != 1 or r.size == 0 or not np.all(np.isfinite(r)):
        raise InputError(f"reference scores must be a finite 1-D array, got {r!r}")
    if isinstance(ref_class, bool) or not isinstance(ref_class, int | np.integer):
        raise InputError(f"reference class must be an integer, got {ref_class!r}")
    if not 0 <= ref_class < r.size:
        raise InputError(f"reference class must lie in [0, {r.size}), got {ref_class}")
    lower, upper = ball_box(c, eps, domain)
    return c, r, lower, upper


def class_gaps(y: Tensor, classes: Tensor) -> Tensor:
    """``y_j − y_c`` per row and class ``j``; ``−inf`` at ``j = c`` (shape ``(B, m)``)."""
    gaps = y - class_score(y, classes)[:, None]
    mask = torch.nn.functional.one_hot(classes, y.shape[1]).bool()
    return gaps.masked_fill(mask, -math.inf)


def signed_moves(y: Tensor, refs: References) -> Tensor:
    """``±(y_j − r_j)``: column ``2j`` is ``y_j − r_j``, column ``2j + 1`` is ``r_j − y_j``.

    Shape:
        y: ``(B, m)``; output: ``(B, 2m)``.
    """
    moved = y - refs.scores
    return torch.stack([moved, -moved], dim=2).reshape(y.shape[0], -1)


def output_distance(y: Tensor, refs: References) -> Tensor:
    """``‖y − r‖∞`` per row (shape ``(B,)``)."""
    return (y - refs.scores).abs().amax(dim=1)


def input_distance(x: Tensor, centers: Tensor) -> Tensor:
    """``‖x − x̂‖∞`` per row (shape ``(B,)``)."""
    check_inputs(x, centers)
    return (x - centers).abs().amax(dim=1)
