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
from robustprop.verify.engine.relu_search import STALLED, ReluSplitConfig, Search, relu_split
from robustprop.verify.engine.verdict import Status

__all__ = ["STALLED", "ReluSplitConfig", "relu_split", "relu_split_each"]

log = logging.getLogger(__name__)

#: The passes of :func:`relu_split_each`: whether sub-domains start from their parent's slopes
#: and multipliers, and the share of the time left. Neither start is better everywhere (one
#: thread, disjuncts searched alone): from the parent's, MNIST-FC 256x2/prop_10 is proved in
#: 845 sub-domains (1 s) and Fashion-MNIST constraint-scr point 3, CR at ε = 0.1 in 265 k
#: (31 s), while from CROWN's neither ends within 30 s; on 256x4/prop_3 it is the reverse:
#: from CROWN's each disjunct is proved in at most 400 sub-domains (≤ 1.3 s), from the
#: parent's none in 10 k. So a short pass from CROWN's slopes (the searches it finishes are
#: short) comes first, and the rest of the time goes to the other. Fashion-MNIST constraint-sr,
#: SR at ε = 0.1, 30 points at 10 s: 6 unknown with warm starts only, 9 with warm first (60 %)
#: then cold, 8 with this order, which also proves 256x4/prop_3 in 10 s.
_PASSES: tuple[tuple[bool, float], ...] = ((False, 0.15), (True, 1.0))

#: α effort at the root of :func:`relu_split_each`, for all disjuncts at once.
_ROOT_ALPHA = AlphaConfig(steps=8, lr=0.3)


def _passes(network: Network) -> tuple[tuple[bool, float], ...]:
    """:data:`_PASSES`, or one warm pass where a single ReLU layer makes the cold one moot.

    The cold pass is there for deep nets (256x4/prop_3). With one hidden layer, warm starts
    alone left the fewest unknowns (Fashion-MNIST constraint-sr above: 6 against 8), and on a
    query of many disjuncts (GTSRB SR: 86) the cold pass's share, split over all of them,
    ends each search after about one batch, work the warm pass then repeats from scratch.
    """
    hidden = sum(isinstance(layer, Relu) for layer in network.layers)
    return ((True, 1.0),) if hidden <= 1 else _PASSES


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

    Two passes (:data:`_PASSES`): the first, in 15 % of the time, starts each sub-domain's
    slopes from CROWN's; the second, in the rest, searches the disjuncts the first left open
    again, each sub-domain starting from its parent's slopes and multipliers (a different
    tree, see :data:`_PASSES`).
    Within a pass time is shared fairly: disjuncts go easiest first (smallest CROWN slack at
    the root), each gets the pass's time left divided by the number of disjuncts left, so one
    hard disjunct cannot starve the easy ones. A search that gave up (:data:`STALLED`) is not
    repeated.
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
    neg_lower = alpha_spec_lower(crown, root, whole.spec(1), _ROOT_ALPHA)[0]
    slack = whole.slack(neg_lower.detach())[0]  # (K,)
    closed = ((slack < 0.0).to(slack.dtype) @ whole.member) > 0.0  # (D,)
    proved = proved | {d for d in range(len(group.disjuncts)) if bool(closed[d])}
    big = torch.finfo(slack.dtype).max
    per = torch.where(whole.member > 0, slack[:, None], big).min(dim=0).values  # (D,)
    todo = [d for d in torch.argsort(per).tolist() if d not in proved]
    done = 1
    last = BabOutcome(Status.UNKNOWN, "ReLU splitting: no time")
    if not todo:
        return BabOutcome(Status.HOLDS, f"ReLU splitting: all {count} disjuncts proved at the "
                          "root", done), proved  # fmt: skip
    searches: dict[tuple[bool, int], Search] = {}  # open searches: later rounds resume them
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
                search = Search(crown, spec, confirm, config, one, root=root, warm=warm)
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
                if not outcome.stalled:
                    left.append(d)
                    held = sum(s.open for s in searches.values())
                    if held + search.open <= (config or ReluSplitConfig()).max_domains:
                        searches[warm, d] = search  # else it starts afresh: memory stays bounded
        todo = left
        if len(proved) == len(group.disjuncts):
            count = len(group.disjuncts)
            reason = f"ReLU splitting: {done} sub-domains, all {count} disjuncts proved"
            return BabOutcome(Status.HOLDS, reason, done), proved
        if not todo:
            break
    reason = f"{last.reason}; {len(proved)} of {len(group.disjuncts)} disjuncts proved"
    return BabOutcome(Status.UNKNOWN, reason, done), proved


def _rounds(network: Network, deadline: float) -> Iterator[tuple[bool, float]]:
    """The passes of :func:`relu_split_each` until ``deadline``: whether a round's searches
    start sub-domains from their parent's slopes (warm) or CROWN's (cold), and its share of
    the time left, which it divides among the disjuncts still open.

    A search that meets its share is resumed by the next round of its kind from the
    sub-domains it left open (nothing is bounded twice), so no disjunct is dropped while time
    is left. With one hidden layer every round is warm (:func:`_passes`). Deeper, neither kind
    is better everywhere (:data:`_PASSES`): a short cold round, a warm one, then cold and warm
    in turn, each resumed — a portfolio that costs at most the time of the better kind twice.
    """
    if _passes(network) == ((True, 1.0),):
        while time.monotonic() < deadline:
            yield True, 1.0
        return
    yield from _PASSES[:1]
    yield True, 0.5
    while time.monotonic() < deadline:
        yield False, 0.5
        yield True, 1.0
