"""ReLU splitting one disjunct at a time, and the open part it hands to the exact backend."""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from robustprop.properties import Domain
from robustprop.properties.registry import make_property
from robustprop.properties.spec import Atom, Disjunct, Negation
from robustprop.verify.engine import relu_search
from robustprop.verify.engine.alpha import AlphaConfig
from robustprop.verify.engine.bab import BabState, open_part
from robustprop.verify.engine.bab_common import GroupSpec
from robustprop.verify.engine.bab_relu import (
    STALLED,
    ReluSplitConfig,
    _rounds,
    relu_split_each,
)
from robustprop.verify.engine.backends.base import group_by_box
from robustprop.verify.engine.backends.milp import MilpBackend
from robustprop.verify.engine.crown import Crown
from robustprop.verify.engine.network import Affine, Network
from robustprop.verify.engine.point_query import (
    BAB_SHARE,
    BACKEND_MIN_S,
    RELU_BAB_SHARE,
    PointDecider,
    Query,
    bab_time,
)
from robustprop.verify.engine.relu_search import Search
from robustprop.verify.engine.verdict import Status, Verdict
from robustprop.verify.run.stages import confirm
from tests.verify.engine.bab_nets import make_net, random_negation
from tests.verify.test_bounds import random_net


def class_negation(net: Network, seed: int, width: float) -> Negation:
    """CR-like: some output other than the centre's top one reaches it (one disjunct per
    output), over a box around a random centre."""
    rng = np.random.default_rng(seed)
    center = rng.uniform(-1.0, 1.0, net.n)
    top = int(np.argmax(net.evaluate(center[None])[0]))
    lower, upper = center - width, center + width
    disjuncts = tuple(
        Disjunct(lower, upper, (Atom(((j, 1.0), (top, -1.0)), 0.0),))
        for j in range(net.m)
        if j != top
    )
    return Negation(disjuncts, description="class")


def two_boxes(negation: Negation) -> Negation:
    """The negation's disjuncts over its box, then the same atoms over a shifted box."""
    shifted = tuple(Disjunct(d.lower + 0.5, d.upper + 0.5, d.atoms) for d in negation.disjuncts)
    return dataclasses.replace(negation, disjuncts=negation.disjuncts + shifted)


@pytest.mark.parametrize("seed", range(6))
def test_each_disjunct_proved_has_no_point(seed: int) -> None:
    """Whatever the search ends with, every disjunct it calls proved is empty for the MILP,
    a holds means every disjunct is, and a violation replays."""
    net = make_net(seed, (30, 12, 12, 5), scale=1.5)
    negation = class_negation(net.network, seed, 0.12)
    crown = Crown(net.network)

    def check(x: np.ndarray) -> Verdict | None:
        return confirm(net.replayer, x, negation)

    outcome, proved = relu_split_each(crown, negation, check, time.monotonic() + 10)
    milp = MilpBackend()
    for d in proved:
        one = dataclasses.replace(negation, disjuncts=(negation.disjuncts[d],))
        assert milp.solve(net.network, one, 60.0).status is Status.HOLDS, d
    if outcome.status is Status.HOLDS:
        assert proved == frozenset(range(len(negation.disjuncts)))
    elif outcome.status is Status.VIOLATED:
        assert outcome.witness is not None and outcome.witness.witness is not None
        x = outcome.witness.witness
        assert negation.is_satisfied_by(x, net.replayer.evaluate32(x)[0])


def test_already_proved_disjuncts_are_skipped() -> None:
    """Resuming with every disjunct proved does no work; with some proved, the search ends
    with the same answer and bounds no more sub-domains than one run."""
    net = make_net(3, (30, 12, 12, 5), scale=1.5)
    negation = class_negation(net.network, 3, 0.12)
    crown = Crown(net.network)

    def check(x: np.ndarray) -> Verdict | None:
        return confirm(net.replayer, x, negation)

    every = frozenset(range(len(negation.disjuncts)))
    outcome, proved = relu_split_each(crown, negation, check, time.monotonic() + 10, None, every)
    assert outcome.status is Status.HOLDS and outcome.domains == 0 and proved == every
    whole, _ = relu_split_each(crown, negation, check, time.monotonic() + 30)
    assert whole.status is Status.HOLDS, whole.reason
    part, _ = relu_split_each(
        crown, negation, check, time.monotonic() + 30, None, frozenset({0, 1})
    )
    assert part.status is Status.HOLDS and part.domains <= whole.domains


def test_a_stalled_search_gives_its_disjunct_up_at_once() -> None:
    """With no fully split sub-domain allowed, a search that reaches one stops (long before
    its deadline) and leaves that disjunct to the exact backend."""
    net = make_net(5, (30, 6, 4), scale=2.0)  # few ReLUs: fully split sub-domains come soon
    negation = class_negation(net.network, 5, 0.4)
    crown = Crown(net.network)

    def check(x: np.ndarray) -> Verdict | None:
        return confirm(net.replayer, x, negation)

    config = ReluSplitConfig(max_leaves=0, attack_rows=0)
    start = time.monotonic()
    outcome, proved = relu_split_each(crown, negation, check, start + 60, config)
    if outcome.status is Status.UNKNOWN:
        assert STALLED in outcome.reason
        assert time.monotonic() - start < 30
        assert len(proved) < len(negation.disjuncts)


def test_open_part_keeps_exactly_what_is_not_proved() -> None:
    net = make_net(1, (30, 8, 4), scale=1.5)
    negation = two_boxes(class_negation(net.network, 1, 0.1))  # two groups of 3 disjuncts
    first, second = negation.disjuncts[:3], negation.disjuncts[3:]
    assert open_part(negation, BabState(0)).disjuncts == negation.disjuncts
    assert open_part(negation, BabState(0, proved=frozenset({1}))).disjuncts == (
        first[0],
        first[2],
        *second,
    )
    assert open_part(negation, BabState(1)).disjuncts == second
    assert open_part(negation, BabState(1, proved=frozenset({0, 2}))).disjuncts == (second[1],)
    kept = open_part(negation, BabState(1, proved=frozenset({2})))
    assert kept.tau == negation.tau and kept.description == negation.description


def test_what_a_stopped_search_leaves_open_decides_the_query() -> None:
    """A net and box where the search needs about a thousand sub-domains to prove all four
    disjuncts: stopped early, its open part still holds for the MILP, and the decider with a
    sliver of branch and bound before the MILP answers holds, like the MILP on the whole."""
    net = make_net(12, (30, 24, 24, 5), scale=1.5)
    negation = class_negation(net.network, 2, 0.1)
    crown = Crown(net.network)

    def check(x: np.ndarray) -> Verdict | None:
        return confirm(net.replayer, x, negation)

    milp = MilpBackend()
    assert milp.solve(net.network, negation, 60.0).status is Status.HOLDS
    outcome, proved = relu_split_each(crown, negation, check, time.monotonic() + 0.5)
    if outcome.status is Status.UNKNOWN:
        rest = open_part(negation, BabState(0, proved=proved))
        assert len(rest.disjuncts) == len(negation.disjuncts) - len(proved)
        assert milp.solve(net.network, rest, 60.0).status is Status.HOLDS
    decider = PointDecider(net.network, net.replayer, "milp", bab_share=0.002)
    verdict = decider.decide(Query(0, negation), timeout_s=60.0)
    assert verdict.status is Status.HOLDS, verdict.reason


@pytest.mark.parametrize("seed", range(4))
def test_scr_with_branch_and_bound_answers_like_without(seed: int) -> None:
    """SCR's linear sub-queries go through ReLU splitting before the MILP: where both
    deciders decide, they agree, and a violation replays."""
    net = make_net(seed + 20, (30, 16, 16, 4), scale=1.5)
    center = np.random.default_rng(seed).random(30)
    y = net.replayer.evaluate64(center)[0]
    prop = make_property("scr", eps=0.08, eta=0.6)
    negation = prop.negation(center, y, int(np.argmax(y)), Domain())
    staged = PointDecider(net.network, net.replayer, "milp").decide(Query(0, negation), 60.0)
    plain = PointDecider(net.network, net.replayer, "milp", bab_share=0.0).decide(
        Query(0, negation), 60.0
    )
    if Status.UNKNOWN not in (staged.status, plain.status):
        assert staged.status is plain.status, (staged.reason, plain.reason)
    if staged.status is Status.VIOLATED:
        assert staged.witness is not None
        x = staged.witness
        assert negation.is_satisfied_by(x, net.replayer.evaluate64(x)[0])


def _one_disjunct_search() -> Callable[[], Search]:
    """Fresh searches of one CR-like disjunct of a 30-12-12-5 net (59 sub-domains to prove)."""
    net = make_net(0, (30, 12, 12, 5), scale=1.5)
    negation = class_negation(net.network, 0, 0.2)
    one = dataclasses.replace(negation, disjuncts=(negation.disjuncts[3],))
    crown = Crown(net.network)
    spec = GroupSpec.of(one, net.network.m, crown.device)

    def check(x: np.ndarray) -> Verdict | None:
        return confirm(net.replayer, x, one)

    return lambda: Search(crown, spec, check, None, one, root=None, warm=True)


def test_a_search_resumed_in_slices_ends_as_one_run() -> None:
    """A search stopped at a deadline and run again goes on from the sub-domains it left
    open: the same answer, and no sub-domain bounded twice (the same count as one run)."""
    fresh = _one_disjunct_search()
    whole = fresh()
    first = whole.run(time.monotonic() + 30)
    assert first.status is Status.HOLDS, first.reason
    assert first.domains > 3  # a search with something to resume
    sliced = fresh()
    stops = 0
    while (out := sliced.run(time.monotonic())).status is Status.UNKNOWN:
        assert out.reason.startswith("ReLU splitting: time up"), out.reason
        stops += 1
        sliced._batch(time.monotonic() + 30)  # one batch per slice
    assert stops >= 1 and out.status is Status.HOLDS
    assert sliced.done == whole.done


def test_a_search_attacks_its_first_batches_then_every_few(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Batches 1…ATTACK_ALWAYS that leave sub-domains open attack them, later ones every
    ATTACK_EVERY-th only (on a query that holds the attack is spent in vain); the answer and
    the tree are those of a search that attacks on every batch."""
    attacked: list[int] = []
    search = _one_disjunct_search()()
    real = relu_search.attack

    def spy(*args: object, **kwargs: object) -> Verdict | None:
        attacked.append(search.batches)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(relu_search, "attack", spy)
    search.cfg = dataclasses.replace(search.cfg, batch=1)  # one sub-domain per batch
    out = search.run(time.monotonic() + 30)
    assert out.status is Status.HOLDS, out.reason
    assert search.batches > relu_search.ATTACK_ALWAYS + 2 * relu_search.ATTACK_EVERY
    every, first = relu_search.ATTACK_EVERY, relu_search.ATTACK_ALWAYS
    late = range(first + 1, search.batches + 1)
    assert attacked == [*range(1, first + 1), *(b for b in late if b % every == 0)]
    monkeypatch.setattr(relu_search, "ATTACK_ALWAYS", 10**9)  # attack on every batch
    always = _one_disjunct_search()()
    always.cfg = search.cfg
    assert always.run(time.monotonic() + 30).status is Status.HOLDS
    assert always.done == search.done


def test_a_batch_is_cut_to_the_time_left_at_the_last_batchs_pace() -> None:
    """A batch takes no more sub-domains than the time left allows at the pace of the last
    one (an SCR batch on GTSRB, 85 rows per sub-domain, took 8 s: a 10 s query ended at 14),
    and at least one, so that a search always moves."""
    fresh = _one_disjunct_search()
    search = fresh()
    search._batch(time.monotonic() + 30)  # the root: two children on the stack
    assert search.open >= 2
    search.pace = 3600.0  # an hour per sub-domain: one fits in any deadline
    before = search.done
    search._batch(time.monotonic() + 30)
    assert search.done - before == 1
    search.pace = 1e-9  # the batch size caps
    before, open_ = search.done, search.open
    search._batch(time.monotonic() + 30)
    assert search.done - before == min(open_, search.cfg.batch)
    search.run(time.monotonic() + 30)
    assert search.pace > 0.0  # measured by run()


@pytest.mark.parametrize("seed", [272, 3, 5, 8])  # each a violated query (asserted below)
def test_a_search_whose_leaf_stays_open_is_not_resumed_into_holds(seed: int) -> None:
    """A search that ends on an undecided fully split sub-domain (here: no candidate ever
    replays) has dropped that batch: it must not be run again, and the query must not come
    out "holds" where the MILP finds a point. (Seed 272, width 0.1: resumed searches used to
    prove what was left and answer "holds" on a violated query.)"""
    net = make_net(seed, (3, 8, 8, 3))
    negation = random_negation(net.network, seed + 1, 0.1)
    (group,) = list(group_by_box(negation))
    crown = Crown(net.network)

    def never(x: np.ndarray) -> Verdict | None:  # every candidate fails "replay"
        return None

    assert MilpBackend().solve(net.network, group, 60.0).status is Status.VIOLATED
    outcome, _ = relu_split_each(crown, group, never, time.monotonic() + 5.0)
    assert outcome.status is Status.UNKNOWN, outcome.reason
    spec = GroupSpec.of(group, net.network.m, crown.device)
    search = Search(crown, spec, never, None, group, root=None, warm=True)
    first = search.run(time.monotonic() + 5.0)
    assert first.status is Status.UNKNOWN
    assert "a fully split sub-domain" in first.reason, first.reason
    assert not search.resumable
    with pytest.raises(RuntimeError):
        search.run(time.monotonic() + 5.0)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 100_000), width=st.sampled_from([0.1, 0.4]))
def test_refusing_every_candidate_never_yields_holds_on_a_violation(
    seed: int, width: float
) -> None:
    """Whatever the replay refuses, ReLU splitting answers holds only where the MILP finds no
    point: a candidate it cannot confirm must never cost sub-domains."""
    net = make_net(seed, (3, 8, 8, 3))
    negation = random_negation(net.network, seed + 1, width)
    (group,) = list(group_by_box(negation))
    outcome, _ = relu_split_each(Crown(net.network), group, lambda x: None, time.monotonic() + 1.0)
    if outcome.status is Status.HOLDS:
        assert MilpBackend().solve(net.network, group, 60.0).status is Status.HOLDS


def test_seed_272_is_a_violation_the_leaf_point_replays() -> None:
    """The fully split sub-domain's LP maximises the smallest atom slack, so its point is
    not a vertex where both atoms are tight (which float replay missed by an ulp)."""
    net = make_net(272, (3, 8, 8, 3))
    negation = random_negation(net.network, 273, 0.1)
    assert MilpBackend().solve(net.network, negation, 60.0).status is Status.VIOLATED
    crown = Crown(net.network)

    def check(x: np.ndarray) -> Verdict | None:
        return confirm(net.replayer, x, negation)

    outcome, _ = relu_split_each(crown, negation, check, time.monotonic() + 30.0)
    assert outcome.status is Status.VIOLATED, outcome.reason


def test_relu_splitting_gets_its_own_share_by_default() -> None:
    """RELU_BAB_SHARE is the default share of a network whose ReLUs are split (it used to be
    a cap below BAB_SHARE, so raising it changed nothing); an explicit share is kept."""
    wide = make_net(0, (30, 6, 3))
    narrow = make_net(0, (3, 6, 3))
    assert PointDecider(wide.network, wide.replayer, "milp").bab_share == RELU_BAB_SHARE
    assert PointDecider(narrow.network, narrow.replayer, "milp").bab_share == BAB_SHARE
    assert PointDecider(wide.network, wide.replayer, "milp", bab_share=0.0).bab_share == 0.0


def test_the_backend_gets_its_share_only_when_it_is_worth_running() -> None:
    """Branch and bound keeps the backend's share when that would be under BACKEND_MIN_S
    (a 10 s point query), and the decider then ends unknown without calling the backend; a
    longer query keeps the split, and no share stays no share."""
    assert bab_time(0.95, 9.0) == 9.0
    assert bab_time(0.95, 30.0) == pytest.approx(28.5)
    assert bab_time(0.7, 30.0) == pytest.approx(21.0)
    assert bab_time(0.5, 2.0 * BACKEND_MIN_S) == pytest.approx(BACKEND_MIN_S)
    assert bab_time(0.0, 9.0) == 0.0
    net = make_net(12, (30, 24, 24, 5), scale=1.5)  # about a thousand sub-domains to prove
    negation = class_negation(net.network, 2, 0.1)
    decider = PointDecider(net.network, net.replayer, "milp", bab_share=0.95)
    verdict = decider.decide(Query(0, negation), timeout_s=0.05)
    assert verdict.status is Status.UNKNOWN and verdict.backend == "bab", verdict
    assert f"less than {BACKEND_MIN_S:g} s left for the backend" in verdict.reason
    assert verdict.reason.startswith("ReLU splitting"), verdict.reason
    crown = Crown(net.network)
    outcome, _ = relu_split_each(crown, negation, lambda x: None, time.monotonic() + 0.05)
    assert outcome.status is Status.UNKNOWN, outcome.reason  # about a thousand needed
    assert outcome.reason.endswith(f", {outcome.domains} sub-domains in all"), outcome.reason


def test_one_hidden_layer_gets_warm_rounds_only() -> None:
    shallow = make_net(1, (30, 12, 5), scale=1.0).network
    deep = make_net(1, (30, 12, 12, 5), scale=1.0).network
    later = time.monotonic() + 60
    assert list(itertools.islice(_rounds(shallow, later), 3)) == [(True, 1.0)] * 3
    assert list(itertools.islice(_rounds(deep, later), 4)) == [
        (False, 0.15),
        (True, 0.5),
        (False, 0.5),
        (True, 1.0),
    ]
    assert list(_rounds(deep, time.monotonic())) == [(False, 0.15), (True, 0.5)]


def _concave_net(seed: int) -> Network:
    """6 -> 16 -> 1 whose output weights are all negative: ``y = b − Σ |c_j|·relu(z_j)``."""
    base = random_net(seed, sizes=(6, 16, 1), clip=False, scale=2.0)
    first, relu, last = base.layers
    assert isinstance(last, Affine)
    return dataclasses.replace(base, layers=(first, relu, Affine(-np.abs(last.W), last.b)))


@pytest.mark.parametrize("seed", [1, 2, 3, 4])  # CROWN exact at the root for 0 and 6
def test_with_one_relu_layer_a_lossless_sub_domain_is_decided_exactly(seed: int) -> None:
    """``y ≥ rhs`` on a net whose every ReLU reaches ``y`` negatively: each enters the bound
    of ``y`` through its lower line, so the root has nothing to gain by splitting; with
    CROWN's slopes (no α steps) it stays open just above ``y``'s maximum, and the search
    hands it to the leaf solver at once (one sub-domain, one leaf) instead of splitting it
    by the score's tie-breaker — and answers as the MILP does."""
    net = _concave_net(seed)
    lower, upper = -np.ones(net.n), np.ones(net.n)
    milp = MilpBackend()

    def query(rhs: float) -> Negation:
        return Negation((Disjunct(lower, upper, (Atom(((0, 1.0),), rhs),)),))

    lo_r, hi_r = -50.0, 50.0  # y's maximum over the box, by bisection with the MILP
    for _ in range(30):
        mid = (lo_r + hi_r) / 2.0
        found = milp.solve(net, query(mid), 30.0).status is Status.VIOLATED
        lo_r, hi_r = (mid, hi_r) if found else (lo_r, mid)
    negation = query(hi_r + 1e-3)
    crown = Crown(net)
    spec = GroupSpec.of(negation, net.m, crown.device)
    root = crown.layer_bounds(spec.lower[None], spec.upper[None])
    upper_y = -float(crown.spec_lower(root, spec.spec(1))[0, 0])
    assert upper_y > hi_r + 1e-3  # CROWN leaves the root open: the case under test
    config = ReluSplitConfig(alpha=AlphaConfig(steps=0))
    search = Search(crown, spec, lambda x: None, config, negation, root=None, warm=True)
    outcome = search.run(time.monotonic() + 60)
    assert outcome.status is Status.HOLDS
    assert milp.solve(net, negation, 30.0).status is Status.HOLDS
    assert (search.done, search.fully_split) == (1, 1)
