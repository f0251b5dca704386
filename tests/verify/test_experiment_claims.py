"""The claim checker on hand-made curves: verdicts follow the numbers."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from robustprop.verify.experiment.claims import CONFIRMED, NOT_CONFIRMED, PARTLY, check_claims
from robustprop.verify.experiment.measure import Row


def _row(regime: str, prop: str, security: float, eps: float = 0.05, acc: float = 1.0) -> Row:
    return Row("ds", regime, prop, eps, 10, security, acc, None, None, None, {}, 0.0)


def _claim(rows: list[Row], name: str) -> str:
    return next(c.verdict for c in check_claims(rows, ["ds"]) if c.name == name)


def test_e1_confirmed_only_when_lr_training_wins_both_attacks() -> None:
    rows = [
        _row("constraint-lr", "sr", 0.9),
        _row("constraint-sr", "sr", 0.7),
        _row("constraint-lr", "lr", 0.3),
        _row("constraint-sr", "lr", 0.1),
    ]
    assert _claim(rows, "E1") == CONFIRMED
    rows[3] = _row("constraint-sr", "lr", 0.5)
    assert _claim(rows, "E1") == PARTLY
    rows[1] = _row("constraint-sr", "sr", 0.95)
    assert _claim(rows, "E1") == NOT_CONFIRMED


def test_means_over_eps_decide_and_eps_zero_is_ignored() -> None:
    rows = [
        _row("augment-uniform", "sr", 0.2, eps=0.05),
        _row("augment-uniform", "sr", 0.6, eps=0.1),  # mean 0.4
        _row("augment-fgsm", "sr", 0.5, eps=0.05),
        _row("augment-fgsm", "sr", 0.5, eps=0.1),  # mean 0.5
        _row("augment-fgsm", "sr", 0.0, eps=0.0),  # ignored
    ]
    claim = next(c for c in check_claims(rows, ["ds"]) if c.name == "E4")
    assert claim.verdict == CONFIRMED
    assert claim.evidence == ("SR attack: augment-uniform vs augment-fgsm: 0.400 < 0.500 — yes",)


@given(
    st.floats(0, 1, allow_nan=False),
    st.floats(0, 1, allow_nan=False),
)
def test_swapping_the_networks_flips_a_strict_comparison(a: float, b: float) -> None:
    forward = [_row("constraint-sr", "sr", a), _row("augment-uniform", "sr", b)]
    forward += [_row("augment-fgsm", "sr", b)]
    backward = [_row("constraint-sr", "sr", b), _row("augment-uniform", "sr", a)]
    backward += [_row("augment-fgsm", "sr", a)]
    one, two = _claim(forward, "E3"), _claim(backward, "E3")
    if a == b:
        assert one == two == NOT_CONFIRMED
    else:
        assert {one, two} == {CONFIRMED, NOT_CONFIRMED}


def test_sampling_claim_counts_cells_where_accuracy_reaches_security() -> None:
    rows = [_row("baseline", "sr", 0.5, acc=0.9), _row("baseline", "lr", 0.5, acc=0.4)]
    claim = next(c for c in check_claims(rows, ["ds"]) if c.name == "E4-search")
    assert claim.verdict == PARTLY and "1 of 2" in claim.evidence[0]


def test_unmeasured_claims_say_so_and_bigger_is_left_out() -> None:
    claims = check_claims([], ["ds"])
    assert {c.verdict for c in claims} == {"not measured"}
    assert "E4-big" not in {c.name for c in claims}
