"""Branch and bound (input splitting and ReLU splitting): never contradicts Z3 on random
networks, every ``violated`` carries a witness onnxruntime confirms, and a sub-domain it
closes is never refuted by sampling inside it."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from robustprop.properties.spec import Atom, Disjunct, Negation
from robustprop.verify.engine.alpha import AlphaConfig
from robustprop.verify.engine.bab import BabConfig, bab_decide
from robustprop.verify.engine.bab_common import GroupSpec
from robustprop.verify.engine.bab_input import InputSplitConfig, _lookahead, bound_boxes
from robustprop.verify.engine.backends.base import BackendName
from robustprop.verify.engine.backends.milp import MilpBackend
from robustprop.verify.engine.backends.z3_backend import Z3Backend
from robustprop.verify.engine.bounds import bound_negations
from robustprop.verify.engine.crown import Crown
from robustprop.verify.engine.network import Affine
from robustprop.verify.engine.point_query import Query
from robustprop.verify.engine.verdict import Stage, Status, Verdict
from robustprop.verify.run.model import ModelBytes
from robustprop.verify.run.stages import ExactSettings, Origin, Strategy, confirm, run_stages
from robustprop.verify.run.vnnlib_check import check_vnnlib
from tests.verify.engine.bab_nets import Net, make_net, mlp_bytes, random_negation
from tests.verify.test_bounds import random_net

RELU_ONLY = BabConfig(max_input_dims=0)  # every negation by ReLU splitting


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(
    seed=st.integers(0, 100_000),
    width=st.sampled_from([0.1, 0.4, 1.0]),
    relu=st.booleans(),
)
def test_bab_never_contradicts_z3(seed: int, width: float, relu: bool) -> None:
    net = make_net(seed, (3, 8, 8, 3))
    negation = random_negation(net.network, seed + 1, width)
    seen: list[Verdict] = []

    def check(x: np.ndarray) -> Verdict | None:
        hit = confirm(net.replayer, x, negation)
        if hit is not None:
            seen.append(hit)
        return hit

    exact = Z3Backend().solve(net.network, negation, 60.0)
    assume(exact.status is not Status.UNKNOWN)  # Z3 timed out (a loaded machine)
    crown = Crown(net.network)
    config = RELU_ONLY if relu else BabConfig()
    budget = 10.0 if relu else 60.0  # ReLU splitting without LP may stay open: no wait
    outcome = bab_decide(crown, negation, check, time.monotonic() + budget, config)
    if outcome.status is Status.HOLDS:
        assert exact.status is Status.HOLDS, outcome.reason
    elif outcome.status is Status.VIOLATED:
        assert exact.status is Status.VIOLATED, outcome.reason
        assert outcome.witness is not None and outcome.witness in seen
        x = outcome.witness.witness
        assert x is not None
        assert negation.is_satisfied_by(x, net.replayer.evaluate32(x)[0])
    if not relu:  # input splitting on 3 inputs is complete in practice
        assert outcome.status is exact.status, outcome.reason


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 100_000))
def test_a_closed_sub_domain_is_never_refuted_by_sampling(seed: int) -> None:
    net = make_net(seed, (3, 10, 10, 3), scale=2.0)
    negation = random_negation(net.network, seed + 7, 0.6, atoms=1)
    crown = Crown(net.network)
    spec = GroupSpec.of(negation, net.network.m, crown.device)
    rng = np.random.default_rng(seed)
    lo0, hi0 = negation.disjuncts[0].lower, negation.disjuncts[0].upper
    corners = lo0 + (hi0 - lo0) * rng.random((64, 3))
    size = (hi0 - lo0) * rng.uniform(0.02, 0.5, (64, 3))
    lo = np.maximum(lo0, corners - size)
    hi = np.minimum(hi0, corners + size)
    slack, _, _ = bound_boxes(
        crown, spec, crown.tensor(lo), crown.tensor(hi), AlphaConfig(steps=6, lr=0.5)
    )
    closed = spec.closed(slack).numpy()
    for b in np.nonzero(closed)[0]:
        xs = lo[b] + (hi[b] - lo[b]) * rng.random((2000, 3))
        ys = net.network.evaluate(xs)
        score = spec.score(torch.tensor(ys)).numpy()
        assert np.all(score < 0.0), b
        # and the atoms' upper bounds enclose the sampled values
        values = ys @ spec.C.numpy().T - spec.rhs.numpy()
        assert np.all(values <= slack[b].numpy() + 1e-12)


@pytest.mark.parametrize("seed", [2, 37])
def test_input_splitting_proves_what_crown_alone_cannot(seed: int) -> None:
    """Nets and boxes where CROWN over the whole box leaves the atom open (the bound stage
    keeps the query) but input splitting closes every sub-domain; the MILP agrees (Z3 is too
    slow on 16x16 layers)."""
    net = make_net(seed, (2, 16, 16, 2), scale=2.0)
    negation = random_negation(net.network, seed, 1.0, atoms=1)
    crown = Crown(net.network)
    (alone,) = bound_negations(net.network, [negation], crown)
    assert not alone.holds
    outcome = bab_decide(
        crown, negation, lambda x: confirm(net.replayer, x, negation), time.monotonic() + 60
    )
    assert outcome.status is Status.HOLDS, outcome.reason
    assert outcome.domains > 3
    assert MilpBackend().solve(net.network, negation, 60.0).status is Status.HOLDS


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_lookahead_splits_the_input_the_output_depends_on(seed: int) -> None:
    """Strong branching on a net whose output ignores input 0: halving input 0 leaves both
    halves as open as their parent, halving input 1 tightens them, so the lookahead overrides
    a default of 0 (and keeps a default of 1)."""
    base = random_net(seed, sizes=(2, 12, 1), clip=False, scale=2.0)
    first = base.layers[0]
    assert isinstance(first, Affine)
    W = first.W.copy()
    W[:, 0] = 0.0
    net = dataclasses.replace(base, layers=(Affine(W, first.b), *base.layers[1:]))
    crown = Crown(net)
    lo, hi = crown.tensor([[-1.0, -1.0]]), crown.tensor([[1.0, 1.0]])
    bounds = crown.layer_bounds(lo, hi)
    y_lo, y_hi = float(bounds.lower[-1][0, 0]), float(bounds.upper[-1][0, 0])
    # an atom y ≥ rhs that the whole box leaves open: rhs inside the output's bound range
    rhs = y_lo + 0.9 * (y_hi - y_lo)
    box = Disjunct(lo[0].numpy(), hi[0].numpy(), (Atom(((0, 1.0),), rhs),))
    spec = GroupSpec.of(Negation((box,)), net.m, crown.device)
    cfg = InputSplitConfig()
    prior = crown.affine_bounds(bounds)
    full = hi[0] - lo[0]
    for default in (0, 1):
        pick = _lookahead(crown, spec, cfg, lo, hi, prior, torch.tensor([default]), full)
        assert pick.tolist() == [1]


def test_relu_splitting_decides_a_wide_input() -> None:
    """40-input nets, where the dispatcher picks ReLU splitting: an answer never contradicts
    the MILP's."""
    for seed in range(6):
        net = make_net(seed, (40, 12, 12, 3), scale=1.5)
        negation = random_negation(net.network, seed, 0.15, atoms=1)
        crown = Crown(net.network)

        def check(x: np.ndarray, negation: Negation = negation, net: Net = net) -> Verdict | None:
            return confirm(net.replayer, x, negation)

        outcome = bab_decide(crown, negation, check, time.monotonic() + 20)
        assert "ReLU splitting" in outcome.reason or outcome.domains == 0, outcome.reason
        if outcome.status is Status.UNKNOWN:
            continue
        exact = MilpBackend().solve(net.network, negation, 60.0)
        if exact.status is not Status.UNKNOWN:
            assert exact.status is outcome.status, outcome.reason


def test_run_stages_runs_branch_and_bound_before_the_solver() -> None:
    """In the staged pipeline a query the bounds leave open is decided by branch and bound,
    which runs in the exact stage's decider (in the pool's workers) before any solver call: the
    verdict's stage says "bab"; with ``--strategy plain`` the solver decides it."""
    seed = 2
    data = mlp_bytes(seed, (2, 16, 16, 2), scale=2.0)
    net = make_net(seed, (2, 16, 16, 2), scale=2.0)
    negation = random_negation(net.network, seed, 1.0, atoms=1)
    origins: list[Origin] = []
    settings = ExactSettings(BackendName.Z3, 30.0, in_process=True, isolate=False)
    verdicts = run_stages(
        [Query(0, negation)],
        net.network,
        ModelBytes(data, "<mlp>"),
        net.replayer,
        settings,
        on_verdict=lambda q, v, origin: origins.append(origin),
    )
    assert origins == [Origin.EXACT]
    assert verdicts[0].status is Status.HOLDS and verdicts[0].stage is Stage.BAB
    plain = run_stages(
        [Query(0, negation)],
        net.network,
        ModelBytes(data, "<mlp>"),
        net.replayer,
        dataclasses.replace(settings, backend=BackendName.MILP),  # Z3 times out on this one
        strategy=Strategy.PLAIN,
    )
    assert plain[0].status is Status.HOLDS and plain[0].stage is Stage.SOLVER


@pytest.mark.slow
@pytest.mark.parametrize(
    ("net", "spec", "expected"),
    [
        ("ACASXU_run2a_1_1_batch_2000.onnx", "prop_1.vnnlib", "unsat"),
        ("ACASXU_run2a_1_1_batch_2000.onnx", "prop_3.vnnlib", "unsat"),
        ("ACASXU_run2a_5_3_batch_2000.onnx", "prop_2.vnnlib", "sat"),
    ],
)
def test_acasxu_instances_answer_like_the_ground_truth(net: str, spec: str, expected: str) -> None:
    """Real VNN-COMP instances through ``verify vnnlib``'s pipeline (bab among its stages)."""
    folder = Path(__file__).resolve().parents[3] / "../shared/benchmarks/vnncomp/acasxu"
    if not folder.is_dir():
        pytest.skip("the shared VNN-COMP benchmarks are not here")
    result = check_vnnlib(folder / "onnx" / net, folder / "vnnlib" / spec, timeout_s=116.0)
    assert result.status == expected, result.reason


@pytest.mark.parametrize("seed", [2, 37])
def test_a_search_resumed_from_its_state_ends_as_one_run(seed: int) -> None:
    """Stopped at once, the search hands back its open sub-domains; resumed (again and again
    at short deadlines) it ends with the answer of one uninterrupted run, and it bounds no more
    sub-domains in all (nothing is redone)."""
    net = make_net(seed, (2, 16, 16, 2), scale=2.0)
    negation = random_negation(net.network, seed, 1.0, atoms=1)
    crown = Crown(net.network)

    def check(x: np.ndarray) -> Verdict | None:
        return confirm(net.replayer, x, negation)

    whole = bab_decide(crown, negation, check, time.monotonic() + 60)
    assert whole.status is Status.HOLDS
    first = bab_decide(crown, negation, check, time.monotonic())  # the deadline has passed
    assert first.status is Status.UNKNOWN and first.state is not None
    assert first.state.lower is not None and first.state.lower.shape[0] == 1  # the whole box
    state, total, outcome = first.state, 0, first
    for _ in range(1000):
        outcome = bab_decide(crown, negation, check, time.monotonic() + 0.02, resume=state)
        total += outcome.domains
        if outcome.status is not Status.UNKNOWN:
            break
        assert outcome.state is not None
        state = outcome.state
    assert outcome.status is Status.HOLDS, outcome.reason
    assert total == whole.domains


def test_paired_rows_share_one_magnitude_and_keep_the_bound() -> None:
    """A neuron's lower and upper rows (``paired``) give the bounds of the two rows computed
    apart, up to the float32 magnitude's rounding (far below the margin's own size)."""
    net = make_net(5, (4, 16, 16, 3), scale=2.0)
    crown = Crown(net.network)
    g = torch.Generator().manual_seed(0)
    lo = torch.rand(6, 4, generator=g, dtype=torch.float64) - 1.0
    hi = lo + torch.rand(6, 4, generator=g, dtype=torch.float64)
    bounds = crown.layer_bounds(lo, hi)
    W = torch.tensor(net.network.layers[2].W)  # type: ignore[union-attr]
    b = torch.tensor(net.network.layers[2].b)  # type: ignore[union-attr]
    rows = torch.cat([W, -W]).expand(6, -1, -1)
    bias = torch.cat([b, -b]).expand(6, -1)
    paired, _ = crown.backward(bounds, 2, rows, bias, paired=True)
    apart, _ = crown.backward(bounds, 2, rows, bias)
    assert torch.allclose(paired, apart, rtol=0.0, atol=1e-12)
    with pytest.raises(ValueError, match="paired"):
        crown.backward(bounds, 2, rows, bias, paired=True, betas={1: torch.zeros_like(rows)})
