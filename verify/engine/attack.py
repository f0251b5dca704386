"""The attack stage of ``verify run``: every attack objective of a point in one batch.

Each point gets ``k`` rows of the one ascent loop (:mod:`robustprop.properties.ascent`): row
``j`` climbs column ``j`` of :meth:`Property.objectives` — the margin, then the property's
targeted objectives (for CR and SCR one per class ``j``, ``y_j − y_c``; for SR and LR one per
output and direction, ``±(y_j − r_j)``, minus ``L·‖x − x̂‖∞`` for LR). All rows take
projected sign-gradient steps of the configured size (``PGDConfig``: steps, restarts,
center-first, uniform restarts) inside the region, and every iterate of every row is scored by
the property **margin**: per point the best-margin iterate is returned, so the answer is at
least as good as each objective's best iterate.

Points whose margin already signals a *clear* violation (margin above
``CLEAR · (1 + max |r|)``, well above float32 noise: at the center itself float32 outputs can
differ from the float64 references by about 1e-6) leave the batch (checked every
:data:`CHECK_EVERY` steps and between restarts), so violated points cost a few steps and only
the undecided ones run every restart. Candidates are only candidates: the runner replays them
through onnxruntime.
"""

from __future__ import annotations

import torch
from torch import Tensor

from robustprop.properties.ascent import (
    Best,
    Model,
    PGDConfig,
    SearchResult,
    ascend_region,
    eval_mode,
)
from robustprop.properties.base import Property, References
from robustprop.properties.domain import Domain
from robustprop.properties.search import objective_rows

__all__ = ["CHECK_EVERY", "CLEAR", "batched_attack"]

CHECK_EVERY = 10
CLEAR = 1e-4


def batched_attack(
    prop: Property,
    model: Model,
    centers: Tensor,
    refs: References,
    domain: Domain,
    config: PGDConfig,
    generator: torch.Generator,
) -> SearchResult:
    """Best PGD point per center and the property margin there (see the module doc).

    Shape:
        centers: ``(B, n)``; refs: ``(B, m)`` / ``(B,)``; output ``x``: ``(B, n)`` inside the
        region, ``value``: ``(B,)``.
    """
    region = prop.region(centers, domain)
    refs = refs.detach()
    clear = CLEAR * (1.0 + refs.scores.abs().amax(dim=1))
    start = region.project(region.centers)
    with eval_mode(model), torch.no_grad():
        at_center = prop.objectives(start, model(start), region.centers, refs)
    best = Best(start, at_center[:, 0])
    k = at_center.shape[1]

    def clearly_violated(points: Tensor) -> Tensor:
        return best.value[points] > clear[points]

    ascend_region(
        model,
        objective_rows(prop, region.centers, refs, k),
        region,
        k,
        config,
        generator,
        best,
        stop=clearly_violated,
        check_every=CHECK_EVERY,
    )
    return best.result()
