"""Branch and bound by ReLU splitting over a group of disjuncts, one search per disjunct.

Each disjunct gets its own search (:mod:`~robustprop.verify.engine.relu_search`): a
sub-domain of a joint search stays open until *every* disjunct is impossible on it. The
searches share the time in rounds (:func:`relu_split_each`); what one round leaves open the
next resumes. What is proved comes back to the caller, so that only the other disjuncts go to
an exact backend.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator

import torch

from robustprop.properties.spec import Negation
from robustprop.verify.engine.alpha import AlphaConfig, alpha_spec_lower
from robustprop.verify.engine.bab_common import BabOutcome, Confirm, GroupSpec
from robustprop.verify.engine.crown import Crown
from robustprop.verify.engine.network import Network, Relu
from robustprop.verify.engine.relu_attack import AttackClock, attack
from robustprop.verify.engine.relu_search import STALLED, ReluSplitConfig, Search, relu_split
from robustprop.verify.engine.torch_net import to_torch
from robustprop.verify.engine.verdict import Status

__all__ = ["STALLED", "ReluSplitConfig", "relu_split", "relu_split_each"]

log = logging.getLogger(__name__)

#: Whether a round's searches start sub-domains from their parent's slopes and multipliers
#: (warm) or from CROWN's (cold). Neither is better everywhere (one thread, disjuncts searched
#: alone): warm, MNIST-FC 256x2/prop_10 is proved in 845 sub-domains (1 s) and Fashion-MNIST
#: constraint-scr point 3, CR at ε = 0.1 in 265 k (31 s), while cold neither ends within 30 s;
#: on 256x4/prop_3 it is the reverse: cold, each disjunct is proved in at most 400 sub-domains
#: (≤ 1.3 s), warm none in 10 k. With one hidden layer warm alone left the fewest unknowns
#: (Fashion-MNIST constraint-sr, SR at ε = 0.1, 30 points at 10 s: 6 against 8 with a cold
#: round first), and on a query of many disjuncts (GTSRB SR: 86) a cold round's share, split
#: over all of them, ends each search after about one batch. So deeper nets get a short cold
#: round (this share of the time) first, then warm and cold in turn (:func:`_rounds`).
_COLD_SHARE = 0.15

#: α effort at the root of :func:`relu_split_each`, for all disjuncts at once.
_ROOT_ALPHA = AlphaConfig(steps=8, lr=0.3)


def relu_split_each(
    crown: Crown,
    group: Negation,
    confirm: Confirm,
    deadline: float,
    config: ReluSplitConfig | None = None,
    proved: frozenset[int] = frozenset(),
) -> tuple[BabOutcome, frozenset[int]]:
    """Decide one group (disjuncts sharing a box) by ReLU splitting, one search per disjunct,
    skipping the disjuncts in ``proved``; returns the outcome and the disjuncts (positions in
    ``group``) proved so far, so that a caller can hand only the others to an exact backend.

    One search per disjunct instead of one over them all: a sub-domain of a joint search stays
    open until *every* disjunct is impossible on it, so each split serves many targets at once
    and the tree grows with their product. Measured on Fashion-MNIST 784-100-10 (constraint-sr
    net, test point 0, SR at ε = 0.1, its 20 disjuncts): one joint search left 1868 of 13567
    sub-domains open after 60 s; one search per disjunct proved all 20 in 6 s (19705
    sub-domains for the hardest, a few hundred for the rest).

    First one α-CROWN bound at the root for all disjuncts: those it closes need no search;
    the corners that maximise the others' linear bounds are tried as counterexamples.
    Then rounds (:func:`_rounds`), warm or cold (:data:`_COLD_SHARE`), each resuming the
    searches of its kind that an earlier round left open. Within a round time is shared
    fairly: disjuncts go easiest first (smallest slack at the root), each gets the round's
    time left divided by the number of disjuncts left, so one hard disjunct cannot starve the
    easy ones. A search that ended otherwise than at its share of the time (it gave up,
    :data:`STALLED`, or a fully split sub-domain stayed undecided) is not repeated: that
    disjunct is left to the exact backend.
    """
    network = crown.network
    count = len(group.disjuncts)
    if len(proved) == count:
        return BabOutcome(Status.HOLDS, f"ReLU splitting: all {count} disjuncts proved", 0), proved
    box_lo = crown.tensor(group.disjuncts[0].lower)[None]
    box_hi = crown.tensor(group.disjuncts[0].upper)[None]
    with torch.no_grad():
        root = crown.layer_bounds(box_lo, box_hi)
        whole = GroupSpec.of(group, network.m, crown.device)
    # α-CROWN at the root for every disjunct at once: those it closes need no search of their
    # own (a search's first sub-domain would do the same work, one disjunct at a time)
    neg_lower, lam = alpha_spec_lower(crown, root, whole.spec(1), _ROOT_ALPHA)[:2]
    slack = whole.slack(neg_lower.detach())[0]  # (K,)
    closed = whole.impossible(slack[None])[0]  # (D,)
    proved = proved | {d for d in range(count) if bool(closed[d])}
    cfg = config or ReluSplitConfig()
    clock = AttackClock()  # the sub-domain PGD's time, over all searches
    model = to_torch(network, torch.float64)  # for every search's attacks
    if len(proved) < count:
        # the root's corners for every disjunct at once: the searches go easiest first, so a
        # violated disjunct (large slack) would wait for all the others (Fashion-MNIST
        # constraint-sr, SR at ε = 0.1, test point 7: found on its search's first batch,
        # after 7 s of the others')
        hit = attack(
            model, whole, box_lo, box_hi, lam.detach(), cfg.attack_rows, cfg.attack_steps,
            confirm, clock,
        )  # fmt: skip
        if hit is not None:
            reason = "ReLU splitting: counterexample at the root"
            return BabOutcome(Status.VIOLATED, reason, 1, hit), proved
    big = torch.finfo(slack.dtype).max
    per = torch.where(whole.member > 0, slack[:, None], big).min(dim=0).values  # (D,)
    todo = [d for d in torch.argsort(per).tolist() if d not in proved]
    done = 1  # the root, bounded once for all disjuncts
    last = BabOutcome(Status.UNKNOWN, "ReLU splitting: no time")
    if not todo:
        return BabOutcome(Status.HOLDS, f"ReLU splitting: all {count} disjuncts proved at the "
                          "root", done), proved  # fmt: skip
    searches: dict[tuple[bool, int], Search] = {}  # open searches: later rounds resume them
    limit = cfg.max_domains  # sub-domains held across searches
    for warm, fraction in _rounds(network, deadline):
        left: list[int] = []
        end = time.monotonic() + fraction * max(0.0, deadline - time.monotonic())
        for position, d in enumerate(todo):
            now = time.monotonic()
            if now >= end:
                left.extend(todo[position:])
                break
            share = now + (end - now) / (len(todo) - position)
            search = searches.pop((warm, d), None)
            if search is None:
                one = dataclasses.replace(group, disjuncts=(group.disjuncts[d],))
                spec = GroupSpec.of(one, network.m, crown.device)
                search = Search(
                    crown, spec, confirm, config, one, root=root, warm=warm, clock=clock,
                    model=model,
                )  # fmt: skip
            before = search.done
            outcome = search.run(share)
            done += search.done - before
            log.info("disjunct %d: %s (%s)", d, outcome.status.value, outcome.reason)
            if outcome.status is Status.VIOLATED:
                return dataclasses.replace(outcome, domains=done), proved
            if outcome.status is Status.HOLDS:
                proved = proved | {d}
            else:
                last = outcome
                if search.resumable:  # stopped at its share: the next round goes on with it
                    left.append(d)
                    held = sum(s.open for s in searches.values())
                    if held + search.open <= limit:
                        searches[warm, d] = search  # else it starts afresh: memory stays bounded
        todo = left
        if len(proved) == count:
            reason = f"ReLU splitting: {done} sub-domains, all {count} disjuncts proved"
            return BabOutcome(Status.HOLDS, reason, done), proved
        if not todo:
            break
    # last.reason counts its own search's sub-domains only: the total follows
    reason = f"{last.reason}; {len(proved)} of {count} disjuncts proved, {done} sub-domains in all"
    return BabOutcome(Status.UNKNOWN, reason, done), proved


def _rounds(network: Network, deadline: float) -> Iterator[tuple[bool, float]]:
    """The rounds of :func:`relu_split_each` until ``deadline``: warm or cold (see
    :data:`_COLD_SHARE`), and the round's share of the time left, which it divides among the
    disjuncts still open.

    A search that meets its share is resumed by the next round of its kind from the
    sub-domains it left open (nothing is bounded twice), so no disjunct is dropped while time
    is left. With one hidden layer every round is warm; deeper, a short cold round, a warm
    one, then cold and warm in turn, each resumed — a portfolio that costs at most the time of
    the better kind twice.
    """
    if sum(isinstance(layer, Relu) for layer in network.layers) > 1:
        yield False, _COLD_SHARE
        yield True, 0.5
        while time.monotonic() < deadline:
            yield False, 0.5
            yield True, 1.0
    while time.monotonic() < deadline:
        yield True, 1.0
