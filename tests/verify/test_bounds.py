"""CROWN bounds and the bound stage: enclosure, tightness, and soundness against Z3 and PGD."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from robustprop.properties import Domain, PGDConfig, make_property
from robustprop.properties.base import References
from robustprop.properties.spec import Atom, Disjunct, Negation
from robustprop.verify.engine.attack import batched_attack
from robustprop.verify.engine.backends.z3_backend import Z3Backend
from robustprop.verify.engine.bounds import (
    MAX_SHELLS,
    Seed,
    SeededNetwork,
    bound_negations,
    compute_seeds,
    lr_shells,
    seeded,
)
from robustprop.verify.engine.crown import (
    _ABS,
    _REL,
    Crown,
    LayerBounds,
    Slopes,
    _Corner,
    relu_count,
)
from robustprop.verify.engine.network import Affine, Clip, Network, Relu
from robustprop.verify.engine.relaxation import relaxation
from robustprop.verify.engine.scr_encoding import decide_scr
from robustprop.verify.engine.torch_net import to_torch
from robustprop.verify.engine.verdict import Status


def random_net(
    seed: int, sizes: tuple[int, ...] = (3, 6, 5, 3), clip: bool = True, scale: float = 1.0
) -> Network:
    rng = np.random.default_rng(seed)
    layers: list[Affine | Relu | Clip] = []
    for k in range(len(sizes) - 1):
        W = rng.normal(size=(sizes[k + 1], sizes[k])) * scale / np.sqrt(sizes[k])
        layers.append(Affine(W, rng.normal(size=sizes[k + 1]) * 0.3 * scale))
        if k + 2 < len(sizes):
            layers.append(Relu() if rng.random() < 0.8 else Clip(-0.2, 0.6))
    if clip:
        layers.append(Clip(-0.4 * scale, 0.5 * scale))
    n, m = sizes[0], sizes[-1]
    return Network(tuple(layers), n, m, (1, n), (1, m), sha256="", source="<random>")


def small_net(seed: int) -> Network:
    """3 -> 8 -> 3 with a clamp: steep enough that the cases below mix every outcome."""
    return random_net(seed, sizes=(3, 8, 3), scale=2.0)


def forward_all(net: Network, x: np.ndarray) -> list[np.ndarray]:
    out, h = [], x
    for layer in net.layers:
        if isinstance(layer, Affine):
            h = h @ layer.W.T + layer.b
        elif isinstance(layer, Relu):
            h = np.maximum(h, 0.0)
        else:
            h = np.clip(h, layer.lo, layer.hi)
        out.append(h)
    return out


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), radius=st.floats(0.01, 0.6))
def test_crown_encloses_sampled_outputs_and_beats_intervals(seed: int, radius: float) -> None:
    net = random_net(seed)
    rng = np.random.default_rng(seed + 1)
    crown = Crown(net)
    centers = rng.random((4, net.n))
    lo, hi = centers - radius, centers + radius
    bounds = crown.layer_bounds(crown.tensor(lo), crown.tensor(hi))
    boxes = crown.interval(crown.tensor(lo), crown.tensor(hi))
    spec = crown.tensor(rng.normal(size=(4, 5, net.m)))
    lower = crown.spec_lower(bounds, spec).numpy()
    pos, neg = spec.clamp(min=0.0), spec.clamp(max=0.0)
    y_lo, y_hi = boxes.lower[-1][:, None, :], boxes.upper[-1][:, None, :]
    lower_iv = ((pos * y_lo).sum(-1) + (neg * y_hi).sum(-1)).numpy()
    assert np.all(lower >= lower_iv - 1e-6)  # never looser than interval arithmetic (+ margin)
    for i in range(len(net.layers)):  # layer bounds are intersected with intervals (+ rounding)
        assert bool((bounds.lower[i] >= boxes.lower[i] - 1e-12).all())
        assert bool((bounds.upper[i] <= boxes.upper[i] + 1e-12).all())
    for b in range(4):
        xs = np.vstack([lo[b] + (hi[b] - lo[b]) * rng.random((3000, net.n)), lo[b], hi[b]])
        values = forward_all(net, xs)
        for i, h in enumerate(values):
            assert np.all(h >= bounds.lower[i][b].numpy()), i
            assert np.all(h <= bounds.upper[i][b].numpy()), i
        assert np.all(values[-1] @ spec[b].numpy().T >= lower[b])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), share=st.floats(0.05, 1.0))
def test_a_parents_bounds_tighten_its_childrens_and_stay_sound(seed: int, share: float) -> None:
    """Input splitting hands a box's bounds to the boxes inside it (``prior``): every affine
    layer's bounds then lie within the parent's (CROWN over the child alone does not always:
    the test's seeds include such cases), and still enclose the child's sampled outputs."""
    net = random_net(seed, sizes=(3, 8, 8, 8, 3), scale=2.0)
    rng = np.random.default_rng(seed)
    crown = Crown(net)
    lo, hi = rng.uniform(-1.0, 0.0, (4, net.n)), rng.uniform(0.0, 1.0, (4, net.n))
    parent = crown.layer_bounds(crown.tensor(lo), crown.tensor(hi))
    c_lo = lo + (hi - lo) * rng.random((4, net.n)) * (1.0 - share)
    c_hi = c_lo + (hi - lo) * share
    own = crown.layer_bounds(crown.tensor(c_lo), crown.tensor(c_hi))
    both = crown.layer_bounds(
        crown.tensor(c_lo), crown.tensor(c_hi), prior=crown.affine_bounds(parent)
    )
    looser = 0
    for i, layer in enumerate(net.layers):
        if isinstance(layer, Affine):
            assert bool((both.lower[i] >= parent.lower[i]).all())
            assert bool((both.upper[i] <= parent.upper[i]).all())
            looser += int((own.upper[i] > parent.upper[i]).sum())
    note(f"neuron bounds where the child's own CROWN is looser than its parent's: {looser}")
    for b in range(4):
        xs = c_lo[b] + (c_hi[b] - c_lo[b]) * rng.random((3000, net.n))
        for i, h in enumerate(forward_all(net, np.vstack([xs, c_lo[b], c_hi[b]]))):
            assert np.all(h >= both.lower[i][b].numpy()), i
            assert np.all(h <= both.upper[i][b].numpy()), i


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_an_estimate_follows_the_bounds_and_float32_is_refused_for_a_bound(seed: int) -> None:
    """``sound=False`` (strong branching's float32 estimate) follows the sound bounds to
    float32 precision; asked for a sound bound, float32 inputs are refused."""
    net = random_net(seed, sizes=(4, 16, 16, 3), scale=2.0)
    rng = np.random.default_rng(seed)
    crown = Crown(net)
    lo, hi = rng.uniform(-1.0, 0.0, (6, net.n)), rng.uniform(0.0, 1.0, (6, net.n))
    sound = crown.layer_bounds(crown.tensor(lo), crown.tensor(hi))
    f32 = torch.float32
    estimate = crown.layer_bounds(crown.tensor(lo).to(f32), crown.tensor(hi).to(f32), sound=False)
    for i in range(len(net.layers)):
        assert estimate.lower[i].dtype == f32
        scale = 1.0 + float(sound.upper[i].abs().max())
        gap = (estimate.lower[i].double() - sound.lower[i]).abs().max()
        assert float(gap) < 1e-4 * scale, i
    with pytest.raises(ValueError, match="float64"):
        crown.layer_bounds(crown.tensor(lo).to(f32), crown.tensor(hi).to(f32))


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), rows=st.sampled_from([1, 3]))
def test_a_shared_box_gives_the_bounds_and_slope_gradients_of_a_full_one(
    seed: int, rows: int
) -> None:
    """ReLU splitting's sub-domains share one box (``expand``): the sound bound and the
    slopes' gradient are those of the same box written out per sub-domain, the gradient is
    autograd's of the plain corner formula (:class:`_Corner` writes it out), and float32
    keeps the box shared."""
    net = random_net(seed, sizes=(5, 8, 8, 3), scale=2.0)
    rng = np.random.default_rng(seed)
    crown = Crown(net)
    count = 6
    centre = rng.uniform(-1.0, 1.0, (1, net.n))
    lo, hi = crown.tensor(centre - 0.4), crown.tensor(centre + 0.4)
    shared = crown.layer_bounds(lo.expand(count, -1), hi.expand(count, -1))
    full = crown.layer_bounds(lo.repeat(count, 1), hi.repeat(count, 1))
    assert shared.box_lower.stride(0) == 0 and full.box_lower.stride(0) != 0
    assert shared.to(torch.float32).box_lower.stride(0) == 0
    spec = crown.tensor(rng.normal(size=(count, rows, net.m)))
    bias = torch.zeros(count, rows, dtype=torch.float64)
    upto = len(net.layers)
    sound = [crown.backward(bounds, upto, spec, bias)[0] for bounds in (shared, full)]
    assert torch.allclose(sound[0], sound[1], rtol=0.0, atol=1e-12)
    start = {
        j: tuple(
            crown.tensor(rng.random((count, rows, shared.pre(j)[0].shape[1])))
            for _ in range(relu_count(layer))
        )
        for j, layer in enumerate(net.layers)
        if isinstance(layer, Relu | Clip)
    }
    grads = []
    for bounds in (shared, full):
        slopes: Slopes = {
            j: tuple(t.clone().requires_grad_(True) for t in ts) for j, ts in start.items()
        }
        value, _ = crown.backward(bounds, upto, spec, bias, slopes, margin=False)
        flat = [t for ts in slopes.values() for t in ts]
        grads.append(torch.autograd.grad(value.sum(), flat, allow_unused=True))
    compared = [(a, b) for a, b in zip(*grads, strict=True) if a is not None or b is not None]
    assert compared  # some slope is used: the gradients are compared, not skipped
    for a, b in compared:
        assert a is not None and b is not None
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-12)
    lam = torch.tensor(rng.normal(size=(count, rows, net.n)), requires_grad=True)
    box_lo, box_hi = lo[:, None, :], hi[:, None, :]
    mine = torch.autograd.grad(_Corner.apply(lam, box_lo, box_hi).sum(), lam)[0]
    plain = (lam.clamp(min=0.0) * box_lo).sum(-1) + (lam.clamp(max=0.0) * box_hi).sum(-1)
    assert torch.allclose(_Corner.apply(lam, box_lo, box_hi), plain, rtol=1e-12, atol=1e-12)
    assert torch.allclose(mine, torch.autograd.grad(plain.sum(), lam)[0], rtol=0.0, atol=0.0)


def test_crown_is_tighter_than_intervals_on_a_deeper_net() -> None:
    net = random_net(3, sizes=(4, 16, 16, 16, 3), clip=False)
    crown = Crown(net)
    c = np.full((1, 4), 0.5)
    bounds = crown.layer_bounds(crown.tensor(c - 0.3), crown.tensor(c + 0.3))
    boxes = crown.interval(crown.tensor(c - 0.3), crown.tensor(c + 0.3))
    width = (bounds.upper[-1] - bounds.lower[-1]).sum()
    assert width < 0.9 * (boxes.upper[-1] - boxes.lower[-1]).sum()


def test_bounds_are_moved_outwards_by_the_safety_margin() -> None:
    W = np.array([[1.0, -1.0]])
    net = Network((Affine(W, np.zeros(1)),), 2, 1, (1, 2), (1, 1), sha256="", source="<lin>")
    crown = Crown(net)
    point = crown.tensor([[0.3, 0.3]])
    bounds = crown.layer_bounds(point, point)
    assert bounds.lower[0].item() < 0.0 < bounds.upper[0].item()
    assert bounds.upper[0].item() - bounds.lower[0].item() < 1e-8


def _rowwise_magnitude(
    crown: Crown,
    bounds: LayerBounds,
    lam: torch.Tensor,
    bias: torch.Tensor,
    slopes: Slopes | None,
    betas: dict[int, torch.Tensor] | None,
) -> torch.Tensor:
    """The safety margin's ``M`` as the module doc defines it, one row at a time: ``|λ|``
    pushed back through ``|W|``, ``|b|`` and each row's own largest slope and intercept, in
    float64 (the reference for :meth:`Crown.backward`'s forward computation)."""
    mag_lam, mag_bias = lam.abs(), bias.abs()
    for j in range(len(crown.network.layers) - 1, -1, -1):
        layer = crown.network.layers[j]
        if isinstance(layer, Affine):
            mag_bias = mag_bias + mag_lam @ torch.tensor(np.abs(layer.b))
            mag_lam = mag_lam @ torch.tensor(np.abs(layer.W))
            continue
        low, up = bounds.pre(j)
        chosen = None if slopes is None else slopes.get(j)
        a_lo, c_lo, a_hi, c_hi = relaxation(layer, low[:, None, :], up[:, None, :], chosen)
        slope = torch.maximum(a_lo.abs(), a_hi.abs())
        mag_bias = mag_bias + (mag_lam * torch.maximum(c_lo.abs(), c_hi.abs())).sum(-1)
        mag_lam = mag_lam * slope
        if betas is not None and j in betas:
            mag_lam = mag_lam + betas[j].abs()
    x_mag = torch.maximum(bounds.box_lower.abs(), bounds.box_upper.abs())
    return mag_bias + (mag_lam * x_mag[:, None, :]).sum(-1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_safety_margin_covers_the_rowwise_magnitude(seed: int) -> None:
    """``backward`` computes ``M`` forwards, one vector per box: equal to the row-wise sum
    without α's slopes, and no smaller with per-row slopes and β's terms (so the margin
    ``_REL·M + _ABS`` only grows)."""
    net = random_net(seed, sizes=(4, 7, 6, 5, 3))
    crown = Crown(net)
    gen = torch.Generator().manual_seed(seed)
    centre = torch.rand(5, 4, generator=gen, dtype=torch.float64)
    bounds = crown.layer_bounds(centre - 0.3, centre + 0.3)
    spec = torch.randn(5, 2, 3, generator=gen, dtype=torch.float64)
    bias = torch.randn(5, 2, generator=gen, dtype=torch.float64)
    counts = {j: relu_count(a) for j, a in enumerate(net.layers) if not isinstance(a, Affine)}
    acts = list(counts)
    widths = {j: bounds.lower[j].shape[1] for j in acts}

    def rand(j: int) -> torch.Tensor:
        return torch.rand(5, 2, widths[j], generator=gen, dtype=torch.float64)

    slopes: Slopes = {j: tuple(rand(j) for _ in range(counts[j])) for j in acts}
    betas = {j: torch.randn(5, 2, widths[j], generator=gen, dtype=torch.float64) for j in acts}
    upto = len(net.layers)
    for chosen, multipliers in ((None, None), (slopes, betas)):
        sound = crown.backward(bounds, upto, spec, bias, chosen, betas=multipliers)[0]
        bare = crown.backward(bounds, upto, spec, bias, chosen, margin=False, betas=multipliers)[0]
        used = (bare - sound - _ABS) / _REL
        reference = _rowwise_magnitude(crown, bounds, spec, bias, chosen, multipliers)
        assert bool((used >= reference * (1 - 1e-5)).all())
        if chosen is None:
            assert torch.allclose(used, reference, rtol=1e-4)


def _negations(
    net: Network, name: str, rng: np.random.Generator, **params: float
) -> list[Negation]:
    prop = make_property(name, **params)
    xs = rng.random((4, net.n))
    ys = net.evaluate(xs)
    return [
        prop.negation(x, y, int(np.argmax(y)), Domain(), 1e-6) for x, y in zip(xs, ys, strict=True)
    ]


# Each case mixes, over the two seeds: proved by bounds, pruned but left to Z3, and violated.
CASES = [
    ("cr", {"eps": 0.05}),
    ("cr", {"eps": 0.15}),
    ("sr", {"eps": 0.2, "delta": 0.5}),
    ("lr", {"eps": 0.1, "lipschitz": 4.0}),
]


@pytest.mark.parametrize(("name", "params"), CASES, ids=[f"{n}-{p}" for n, p in CASES])
@pytest.mark.parametrize("seed", [0, 1])
def test_a_proof_by_bounds_is_never_refuted(name: str, params: dict[str, float], seed: int) -> None:
    """Proved negations are unsat for Z3 (exact rationals), and neither the staged PGD nor a
    random search finds a point in them; what is left after pruning, on the seeded network,
    keeps Z3's answer."""
    net = small_net(seed)
    negations = _negations(net, name, np.random.default_rng(seed), **params)
    results = compute_seeds(net, bound_negations(net, negations))
    xs = np.random.default_rng(seed).random((4, net.n))  # the centers _negations drew
    pgd_points = _pgd_points(net, name, params, xs)
    z3 = Z3Backend()
    for k, (negation, result) in enumerate(zip(negations, results, strict=True)):
        original = z3.solve(net, negation, 20.0).status
        assert original is not Status.UNKNOWN
        if result.holds:
            assert original is Status.HOLDS
            assert not _search_violates(net, negation)
            x = pgd_points[k]
            assert not negation.is_satisfied_by(x, net.evaluate(x)[0])
            continue
        assert result.negation is not None and result.seed is not None
        assert z3.solve(seeded(net, result.seed), result.negation, 20.0).status is original


def _pgd_points(net: Network, name: str, params: dict[str, float], xs: np.ndarray) -> np.ndarray:
    """The staged attack's best point around each center (float64 model)."""
    prop = make_property(name, **params)
    ys = net.evaluate(xs)
    refs = References(torch.from_numpy(ys), torch.from_numpy(ys.argmax(axis=1)))
    model = to_torch(net, torch.float64)
    gen = torch.Generator().manual_seed(0)
    found = batched_attack(
        prop, model, torch.from_numpy(xs), refs, Domain(), PGDConfig.strong(), gen
    )
    return found.x.numpy()


def _search_violates(net: Network, negation: Negation) -> bool:
    """Random search plus sign steps on every atom of the negation (float64 IR)."""
    rng = np.random.default_rng(0)
    box = negation.disjuncts[0]
    xs = box.lower + (box.upper - box.lower) * rng.random((4000, net.n))
    if negation.distance is not None:
        c, e = negation.distance.center, negation.distance.eps
        xs = np.vstack([xs, np.clip(c + rng.uniform(-1e-3, 1e-3, (500, net.n)), c - e, c + e)])
    ys = net.evaluate(xs)
    return any(negation.is_satisfied_by(x, y) for x, y in zip(xs, ys, strict=True))


def test_the_bound_stage_proves_and_prunes() -> None:
    seen = {"holds": 0, "pruned": 0}
    for name, params in CASES:
        for seed in (0, 1):
            net = small_net(seed)
            for r in bound_negations(
                net, _negations(net, name, np.random.default_rng(seed), **params)
            ):
                seen["holds"] += r.holds
                seen["pruned"] += (not r.holds) and r.pruned > 0
    assert seen["holds"] >= 12 and seen["pruned"] >= 5, seen


def test_lr_shells_cover_the_distance_range() -> None:
    for d_min, eps in ((0.0, 0.1), (1e-3, 0.1), (0.05, 0.1), (0.1, 0.1)):
        shells = lr_shells(d_min, eps)
        assert len(shells) <= MAX_SHELLS
        assert shells[0][0] == pytest.approx(d_min if d_min < eps else 0.0)
        assert shells[-1][1] == eps
        assert all(a < b for a, b in shells)
        assert all(shells[k][1] == shells[k + 1][0] for k in range(len(shells) - 1))


def test_lr_pruning_narrows_d_and_the_solver_box() -> None:
    net = small_net(0)
    negs = _negations(net, "lr", np.random.default_rng(0), eps=0.1, lipschitz=4.0)
    (result,) = bound_negations(net, negs[:1])
    assert not result.holds and result.negation is not None
    assert result.negation.distance is not None
    assert result.negation.distance.eps <= 0.3
    for d in result.negation.disjuncts:
        assert any(a.dist_coeff == 1.0 and not a.terms for a in d.atoms)
        assert any(a.dist_coeff == -1.0 and not a.terms for a in d.atoms)


def test_seeded_network_uses_the_seed_inside_its_box_only() -> None:
    net = random_net(1)
    lo, hi = np.zeros(3), np.ones(3)
    crown = Crown(net)
    bounds = crown.layer_bounds(crown.tensor(lo[None]), crown.tensor(hi[None]))
    seed = Seed(lo, hi, tuple(bounds.numpy(0)))
    s_net = seeded(net, seed)
    assert isinstance(s_net, SeededNetwork)
    inner = s_net.interval_bounds(lo + 0.1, hi - 0.1)
    plain = net.interval_bounds(lo + 0.1, hi - 0.1)
    for (a_lo, a_hi), (b_lo, b_hi) in zip(inner, plain, strict=True):
        assert np.all(a_lo >= b_lo) and np.all(a_hi <= b_hi)
    outer = s_net.interval_bounds(lo - 0.1, hi)
    for (a_lo, a_hi), (b_lo, b_hi) in zip(outer, net.interval_bounds(lo - 0.1, hi), strict=True):
        assert np.array_equal(a_lo, b_lo) and np.array_equal(a_hi, b_hi)
    assert seeded(net, None) is net


def test_scr_margin_bounds_are_sound_and_feed_the_fast_path() -> None:
    net = small_net(2)
    rng = np.random.default_rng(2)
    proved = {}
    for eta in (0.55, 0.99):
        negs = _negations(net, "scr", rng, eps=0.01, eta=eta)
        results = bound_negations(net, negs)
        proved[eta] = sum(r.holds for r in results)
        for neg, res in zip(negs, results, strict=True):
            if res.holds:
                continue
            assert res.g_bounds is not None
            g_lo, g_hi = res.g_bounds
            box = neg.disjuncts[0]
            xs = box.lower + (box.upper - box.lower) * rng.random((2000, net.n))
            ys = net.evaluate(xs)
            c = neg.softmax.label if neg.softmax is not None else 0
            g = np.delete(ys - ys[:, [c]], c, axis=1)
            assert np.all(g >= g_lo) and np.all(g <= g_hi)
    assert proved[0.55] >= 1 and proved[0.99] == 0, proved
    # the g bounds alone decide the fast path of decide_scr
    neg = negs[0]
    y_lo, y_hi = np.full(net.m, -50.0), np.full(net.m, 50.0)
    out = decide_scr(
        neg,
        y_lo,
        y_hi,
        lambda q, t: (Status.UNKNOWN, None, "no solver"),
        lambda x, q: None,
        lambda x: net.evaluate(x)[0],
        0.0,
        g_bounds=(np.full(net.m - 1, -20.0), np.full(net.m - 1, -10.0)),
    )
    assert out.status is Status.HOLDS and out.queries == 0


def test_multi_box_negation_prunes_per_box() -> None:
    net = random_net(4, sizes=(2, 4, 2), clip=False)
    a = Disjunct(np.zeros(2), np.full(2, 0.1), (Atom(((0, 1.0),), 1e6),))
    b = Disjunct(np.full(2, 0.5), np.ones(2), (Atom(((0, 1.0),), -1e6),))
    empty = Disjunct(np.ones(2), np.zeros(2), (Atom(((1, 1.0),), -1e6),))
    (result,) = bound_negations(net, [Negation((a, b, empty))])
    assert not result.holds and result.negation is not None
    assert result.negation.disjuncts == (b,)
    assert result.pruned == 2


def test_gpu_or_cpu_device_gives_the_same_bounds() -> None:
    net = random_net(6)
    c = np.random.default_rng(0).random((3, net.n))
    cpu = Crown(net, "cpu")
    b1 = cpu.layer_bounds(cpu.tensor(c - 0.1), cpu.tensor(c + 0.1))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    other = Crown(net, device)
    b2 = other.layer_bounds(other.tensor(c - 0.1), other.tensor(c + 0.1))
    assert np.allclose(b1.lower[-1].numpy(), b2.lower[-1].cpu().numpy(), atol=1e-9)
