"""The paper's claims E1–E4, checked against measured curves.

Each claim compares networks by their *mean constraint security over the measured ε values*
(ε > 0) under one attack. A claim is ``confirmed`` when every comparison it makes holds on
the dataset, ``not confirmed`` when none does, and ``partly`` otherwise; the evidence lists
every number compared, so a reader can judge the margins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import mean

from verify.experiment_eval import Row

CONFIRMED = "confirmed"
PARTLY = "partly"
NOT_CONFIRMED = "not confirmed"
NOT_MEASURED = "not measured"


@dataclass(frozen=True)
class Comparison:
    """``left > right`` (or ``<``) for one attack; values are mean securities."""

    text: str
    left: float
    right: float
    greater: bool = True

    @property
    def holds(self) -> bool:
        return self.left > self.right if self.greater else self.left < self.right

    def describe(self) -> str:
        sign = ">" if self.greater else "<"
        mark = "yes" if self.holds else "no"
        return f"{self.text}: {self.left:.3f} {sign} {self.right:.3f} — {mark}"


@dataclass(frozen=True)
class Claim:
    name: str
    dataset: str
    statement: str
    verdict: str
    evidence: tuple[str, ...]


def mean_security(rows: Sequence[Row], dataset: str, regime: str, attack: str) -> float | None:
    values = [
        r.security
        for r in rows
        if r.dataset == dataset
        and r.regime == regime
        and r.prop == attack
        and r.eps > 0
        and r.security is not None
    ]
    return mean(values) if values else None


def _claim(
    name: str,
    dataset: str,
    statement: str,
    rows: Sequence[Row],
    pairs: Sequence[tuple[str, str, str, bool]],
) -> Claim:
    """``pairs``: (regime left, regime right, attack, left-greater?)."""
    comparisons: list[Comparison] = []
    for left, right, attack, greater in pairs:
        a = mean_security(rows, dataset, left, attack)
        b = mean_security(rows, dataset, right, attack)
        if a is None or b is None:
            continue
        text = f"{attack.upper()} attack: {left} vs {right}"
        comparisons.append(Comparison(text, a, b, greater))
    if not comparisons:
        return Claim(name, dataset, statement, NOT_MEASURED, ())
    held = sum(c.holds for c in comparisons)
    verdict = CONFIRMED if held == len(comparisons) else NOT_CONFIRMED if held == 0 else PARTLY
    return Claim(name, dataset, statement, verdict, tuple(c.describe() for c in comparisons))


def check_claims(rows: Sequence[Row], datasets: Sequence[str]) -> list[Claim]:
    """Every claim on every dataset (module docstring)."""
    out: list[Claim] = []
    for ds in datasets:
        out.append(
            _claim(
                "E1",
                ds,
                "LR-trained networks have higher security than SR-trained ones against both "
                "SR and LR attacks",
                rows,
                [
                    ("constraint-lr", "constraint-sr", "sr", True),
                    ("constraint-lr", "constraint-sr", "lr", True),
                ],
            )
        )
        out.append(_weakest_attack(ds, rows))
        out.append(
            _claim(
                "E2",
                ds,
                "SCR training does not help against SR attacks, and SR training does not help "
                "against SCR attacks (each is beaten by the network trained for the attack)",
                rows,
                [
                    ("constraint-scr", "constraint-sr", "sr", False),
                    ("constraint-sr", "constraint-scr", "scr", False),
                ],
            )
        )
        out.append(
            _claim(
                "E3",
                ds,
                "constraint loss (SR) beats data augmentation against SR attacks",
                rows,
                [
                    ("constraint-sr", "augment-uniform", "sr", True),
                    ("constraint-sr", "augment-fgsm", "sr", True),
                ],
            )
        )
        out.append(
            _claim(
                "E3b",
                ds,
                "adversarial training is the most secure against SR and SCR attacks",
                rows,
                [
                    ("adversarial", other, attack, True)
                    for attack in ("sr", "scr")
                    for other in (
                        "baseline",
                        "augment-uniform",
                        "augment-fgsm",
                        "constraint-sr",
                        "constraint-scr",
                        "constraint-lr",
                    )
                ],
            )
        )
        out.append(
            _claim(
                "E3c",
                ds,
                "(the paper's surprise) data augmentation is less secure than the baseline "
                "against SR attacks",
                rows,
                [
                    ("augment-uniform", "baseline", "sr", False),
                    ("augment-fgsm", "baseline", "sr", False),
                ],
            )
        )
        out.append(
            _claim(
                "E4",
                ds,
                "uniform sampling is weaker than FGSM sampling: data augmentation with uniform "
                "samples gives lower security than with FGSM samples",
                rows,
                [("augment-uniform", "augment-fgsm", a, False) for a in ("sr", "lr", "scr")],
            )
        )
        out.append(_sampling_weaker(ds, rows))
        big = _claim(
            "E4-big",
            ds,
            "on a bigger network, data augmentation improves on the baseline, and the "
            "constraint loss still beats data augmentation (SCR attack)",
            rows,
            [
                ("big-augment-fgsm", "big-baseline", "scr", True),
                ("big-constraint-sr", "big-augment-fgsm", "scr", True),
            ],
        )
        if big.verdict != NOT_MEASURED:
            out.append(big)
    return out


def _weakest_attack(ds: str, rows: Sequence[Row]) -> Claim:
    statement = (
        "stronger constraints are harder to obtain: SR- and LR-trained networks are least "
        "secure against the LR attack"
    )
    evidence: list[str] = []
    held = 0
    total = 0
    for net in ("constraint-sr", "constraint-lr"):
        lr = mean_security(rows, ds, net, "lr")
        for other in ("sr", "scr"):
            value = mean_security(rows, ds, net, other)
            if lr is None or value is None:
                continue
            c = Comparison(f"{net}: LR attack vs {other.upper()} attack", lr, value, False)
            evidence.append(c.describe())
            total += 1
            held += c.holds
    if not total:
        return Claim("E1b", ds, statement, NOT_MEASURED, ())
    verdict = CONFIRMED if held == total else NOT_CONFIRMED if held == 0 else PARTLY
    return Claim("E1b", ds, statement, verdict, tuple(evidence))


def _sampling_weaker(ds: str, rows: Sequence[Row]) -> Claim:
    """Random sampling finds fewer violations than PGD: accuracy ≥ security everywhere."""
    statement = (
        "uniform sampling is weaker than PGD as a search: constraint accuracy (sampling) is "
        "at least constraint security (PGD) on every network, attack and ε"
    )
    pairs = [
        (r, r.accuracy, r.security)
        for r in rows
        if r.dataset == ds and r.accuracy is not None and r.security is not None and r.eps > 0
    ]
    if not pairs:
        return Claim("E4-search", ds, statement, NOT_MEASURED, ())
    # accuracy is a mean fraction of samples, security a fraction of points: a point counts as
    # insecure once PGD breaks it, while sampling scores it by the share of samples that hold.
    held = sum(a >= s for _, a, s in pairs)
    gaps = [a - s for _, a, s in pairs]
    verdict = CONFIRMED if held == len(pairs) else NOT_CONFIRMED if held == 0 else PARTLY
    evidence = (
        f"accuracy ≥ security in {held} of {len(pairs)} (network, attack, ε) cells; "
        f"mean accuracy − security {mean(gaps):.3f}, smallest {min(gaps):.3f}",
    )
    return Claim("E4-search", ds, statement, verdict, evidence)
