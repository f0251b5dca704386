"""Property-based checks that the readings of each property agree with each other.

predicate == ~violated(margin); loss ≥ 0 and loss = 0 ⇔ predicate; LR with L·ε ≤ δ implies SR;
SCR with η > 0.5 implies CR; the solver negation agrees with ``not predicate`` on samples.
"""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor

from robustprop.properties import CR, LR, SCR, SR, Domain, Property, References
from tests.properties.nets import random_net
from tests.properties.strategies import batches, properties_

SETTINGS = settings(deadline=None, max_examples=50)


@SETTINGS
@given(properties_(), batches())
def test_predicate_is_not_violated_margin(
    prop: Property, batch: tuple[Tensor, Tensor, Tensor, References]
) -> None:
    x, y, centers, refs = batch
    holds = prop.predicate(x, y, centers, refs)
    margin = prop.margin(x, y, centers, refs)
    assert holds.dtype == torch.bool and holds.shape == margin.shape == (x.shape[0],)
    assert torch.equal(holds, ~prop.violated(margin))
    strict = isinstance(prop, CR)
    assert torch.equal(holds, margin < 0 if strict else margin <= 0)


@SETTINGS
@given(properties_().filter(lambda p: p.has_loss), batches())
def test_loss_is_zero_exactly_where_predicate_holds(
    prop: Property, batch: tuple[Tensor, Tensor, Tensor, References]
) -> None:
    x, y, centers, refs = batch
    loss = prop.loss(x, y, centers, refs)
    assert bool((loss >= 0).all())
    assert torch.equal(loss == 0, prop.predicate(x, y, centers, refs))


@SETTINGS
@given(
    st.integers(0, 2**16),
    st.floats(0.01, 0.5),
    st.floats(0.1, 50.0),
    st.floats(1e-6, 1.0),
)
def test_lr_implies_sr(seed: int, eps: float, lipschitz: float, slack: float) -> None:
    """LR(ε, L) ⇒ SR(ε, δ) when L·ε ≤ δ (slack covers float64 rounding of ‖x − x̂‖∞)."""
    net = random_net(seed, n=3, m=3)
    lr = LR(eps=eps, lipschitz=lipschitz)
    sr = SR(eps=eps, delta=lipschitz * eps * (1 + slack))
    g = torch.Generator().manual_seed(seed)
    centers = torch.rand(4, 3, generator=g, dtype=torch.float64)
    with torch.no_grad():
        refs = lr.references(net(centers))
        x = lr.region(centers, Domain()).sample(16, g).reshape(-1, 3)
        rep = References(refs.scores.repeat_interleave(16, 0), refs.classes.repeat_interleave(16))
        c = centers.repeat_interleave(16, 0)
        y = net(x)
        lr_holds = lr.predicate(x, y, c, rep)
        assert bool((~lr_holds | sr.predicate(x, y, c, rep)).all())


@SETTINGS
@given(batches(), st.floats(0.5, 1.0, exclude_min=True, exclude_max=True))
def test_scr_above_half_implies_cr(
    batch: tuple[Tensor, Tensor, Tensor, References], eta: float
) -> None:
    x, y, centers, refs = batch
    scr = SCR(eta=eta).predicate(x, y, centers, refs)
    assert bool((~scr | CR().predicate(x, y, centers, refs)).all())


def _sampled(prop: Property, seed: int) -> tuple[Tensor, Tensor, Tensor, References, Tensor]:
    """Dyadic centers, region samples, outputs; so ‖x − x̂‖∞ ≤ ε holds exactly in float64."""
    net = random_net(seed, n=2, m=3, scale=3.0)
    g = torch.Generator().manual_seed(seed)
    centers = torch.randint(0, 257, (3, 2), generator=g).double() / 256
    region = prop.region(centers, Domain())
    with torch.no_grad():
        x = region.sample(20, g).reshape(-1, 2)
        c = centers.repeat_interleave(20, 0)
        refs = prop.references(net(centers))
        rep = References(refs.scores.repeat_interleave(20, 0), refs.classes.repeat_interleave(20))
        return x, net(x), c, rep, refs.scores


def _negation_properties() -> st.SearchStrategy[Property]:
    eps = st.sampled_from([1 / 32, 1 / 8, 1 / 4])
    return st.one_of(
        st.builds(SR, eps=eps, delta=st.floats(0.01, 5.0)),
        st.builds(LR, eps=eps, lipschitz=st.floats(0.5, 40.0)),
        st.builds(CR, eps=eps),
        st.builds(SCR, eps=eps, eta=st.floats(0.51, 0.99)),
    )


@SETTINGS
@given(_negation_properties(), st.integers(0, 2**16))
def test_negation_agrees_with_predicate(prop: Property, seed: int) -> None:
    """``Negation.is_satisfied_by(x, f(x))`` == ``not predicate`` (τ = 0, off the boundary)."""
    x, y, c, refs, _ = _sampled(prop, seed)
    holds = prop.predicate(x, y, c, refs)
    margin = prop.margin(x, y, c, refs)
    for i in range(x.shape[0]):
        if not isinstance(prop, CR) and abs(float(margin[i])) < 1e-9:
            continue  # τ = 0 makes the negation non-strict where the property's violation is strict
        neg = prop.negation(
            c[i].numpy(), refs.scores[i].numpy(), int(refs.classes[i]), Domain(), tau=0.0
        )
        assert neg.is_satisfied_by(x[i].numpy(), y[i].numpy()) == (not bool(holds[i]))


@SETTINGS
@given(_negation_properties().filter(lambda p: not isinstance(p, CR)), st.integers(0, 2**16))
def test_negation_with_tau_means_violation_beyond_tau(prop: Property, seed: int) -> None:
    """With τ > 0 the negation holds iff the margin exceeds τ (away from the τ boundary)."""
    tau = 1e-3
    x, y, c, refs, _ = _sampled(prop, seed)
    margin = prop.margin(x, y, c, refs)
    for i in range(x.shape[0]):
        if abs(float(margin[i]) - tau) < 1e-9:
            continue
        neg = prop.negation(
            c[i].numpy(), refs.scores[i].numpy(), int(refs.classes[i]), Domain(), tau=tau
        )
        assert neg.is_satisfied_by(x[i].numpy(), y[i].numpy()) == (float(margin[i]) > tau)
