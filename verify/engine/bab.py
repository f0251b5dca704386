"""Branch and bound over bound propagation: decide the negations the bound stage left open.

:func:`bab_decide` takes one linear negation (VNN-LIB, CR, SR: disjuncts of boxes and output
atoms; no LR distance, no SCR softmax — those go to the exact stage as before), splits it into
groups of disjuncts sharing an input box, and decides each group:

- inputs of at most ``max_input_dims`` dimensions by input splitting
  (:mod:`~robustprop.verify.engine.bab_input`);
- wider inputs by ReLU splitting (:mod:`~robustprop.verify.engine.bab_relu`), one search per
  disjunct.

The negation is empty (the property **holds**) when every group is; it is **violated** as
soon as one group yields a candidate that the caller's ``confirm`` replays through
onnxruntime; otherwise the answer is **unknown** and the caller runs the exact stage on the
whole query as before (sub-domains are not handed over). An unknown at the deadline carries a
:class:`~robustprop.verify.engine.bab_common.BabState`: a later call in the same process with
``resume=`` that state skips the groups already proved and, for input splitting, continues
from the open sub-domains instead of the whole box; for ReLU splitting, it skips the disjuncts
already proved.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field

from robustprop.properties.spec import Disjunct, Negation
from robustprop.verify.engine.bab_common import BabOutcome, BabState, Confirm, GroupSpec
from robustprop.verify.engine.bab_input import InputSplitConfig, input_split
from robustprop.verify.engine.bab_relu import ReluSplitConfig, relu_split_each
from robustprop.verify.engine.backends.base import group_by_box
from robustprop.verify.engine.crown import Crown
from robustprop.verify.engine.network import Network
from robustprop.verify.engine.verdict import Status

__all__ = [
    "BabConfig",
    "BabOutcome",
    "BabState",
    "bab_decide",
    "open_part",
    "splits_inputs",
    "supported",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BabConfig:
    """Which search a negation gets and how hard each one works."""

    max_input_dims: int = 10
    input: InputSplitConfig = field(default_factory=InputSplitConfig)
    relu: ReluSplitConfig = field(default_factory=ReluSplitConfig)


def splits_inputs(network: Network, config: BabConfig | None = None) -> bool:
    """Whether branch and bound splits ``network``'s inputs (else its ReLUs)."""
    return network.n <= (config or BabConfig()).max_input_dims


def supported(negation: Negation) -> bool:
    """Whether :func:`bab_decide` can decide ``negation`` (linear atoms, no LR, no SCR)."""
    return negation.softmax is None and negation.distance is None


def bab_decide(
    crown: Crown,
    negation: Negation,
    confirm: Confirm,
    deadline: float,
    config: BabConfig | None = None,
    *,
    resume: BabState | None = None,
) -> BabOutcome:
    """Decide ``negation`` by branch and bound before ``deadline`` (see the module doc);
    ``resume``: the state of an earlier call's unknown outcome on the same negation."""
    cfg = config or BabConfig()
    if not supported(negation):
        return BabOutcome(Status.UNKNOWN, "branch and bound: LR and SCR are not supported")
    network = crown.network
    total = 0
    for index, group in enumerate(group_by_box(negation)):
        if resume is not None and index < resume.group:
            continue  # proved by the earlier call
        spec = GroupSpec.of(group, network.m, crown.device)
        if spec.empty_disjunct:
            hit = confirm(((group.disjuncts[0].lower + group.disjuncts[0].upper) / 2.0).copy())
            if hit is not None:
                return BabOutcome(Status.VIOLATED, "a disjunct without atoms", total, hit)
            return BabOutcome(Status.UNKNOWN, "a disjunct without atoms; centre not replayed")
        if bool((spec.lower > spec.upper).any()):
            continue  # an empty box: nothing to decide
        if splits_inputs(network, cfg):
            earlier = resume if resume is not None and resume.group == index else None
            outcome = input_split(
                crown, spec, confirm, deadline, cfg.input, group=index, resume=earlier
            )
        else:
            proved = resume.proved if resume is not None and resume.group == index else None
            outcome, proved = relu_split_each(
                crown, group, confirm, deadline, cfg.relu, proved or frozenset()
            )
            if outcome.status is Status.UNKNOWN:
                outcome = dataclasses.replace(outcome, state=BabState(index, proved=proved))
        total += outcome.domains
        log.info("bab group: %s (%s)", outcome.status.value, outcome.reason)
        if outcome.status is not Status.HOLDS:
            state = outcome.state or BabState(index)
            return BabOutcome(outcome.status, outcome.reason, total, outcome.witness, state)
        if time.monotonic() >= deadline:
            state = BabState(index + 1)
            return BabOutcome(Status.UNKNOWN, "branch and bound: time up", total, state=state)
    return BabOutcome(Status.HOLDS, f"branch and bound: {total} sub-domains, all proved", total)


def open_part(negation: Negation, state: BabState) -> Negation:
    """The disjuncts of ``negation`` that a search stopped at ``state`` has not proved
    impossible: the negation has a point iff this part has one (the rest is empty), so the
    exact backend need only decide this part."""
    kept: list[Disjunct] = []
    for index, group in enumerate(group_by_box(negation)):
        if index < state.group:
            continue
        own = group.disjuncts
        if index == state.group:
            own = tuple(d for k, d in enumerate(own) if k not in state.proved)
        kept.extend(own)
    if not kept:  # not from a search that stopped early; keep the query whole
        return negation
    return dataclasses.replace(negation, disjuncts=tuple(kept))
