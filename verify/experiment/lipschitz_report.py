"""The report's Lipschitz section, written from the measured LR findings.

A paragraph per dataset says how often LR was refuted, by how much the witnesses break the
bound (``‖f(x′) − f(x̂)‖∞`` against ``L·‖x′ − x̂‖∞``), at what input distances, and whether
the paper's PGD finds the violations; a table gives the numbers per network and ε. Every
number comes from :class:`~robustprop.verify.experiment.lipschitz.LipschitzFinding`.
"""

from __future__ import annotations

from collections.abc import Sequence

from robustprop.verify.experiment.lipschitz import LipschitzFinding, Spread

__all__ = ["lipschitz_section"]


def _pooled(values: Sequence[Spread | None]) -> str:
    """Over networks: the smallest minimum, the range of the medians, the largest maximum."""
    present = [v for v in values if v is not None]
    if not present:
        return "—"
    mids = [v.mid for v in present]
    low, high = min(v.low for v in present), max(v.high for v in present)
    lo_mid, hi_mid = f"{min(mids):.3g}", f"{max(mids):.3g}"
    if f"{low:.3g}" == f"{high:.3g}":
        return f"{low:.3g} at every witness"
    median = lo_mid if lo_mid == hi_mid else f"{lo_mid}–{hi_mid}"
    return f"min {low:.3g}, median {median}, max {high:.3g}"


def _of_eps(rows: Sequence[LipschitzFinding]) -> str:
    """The witnesses' largest input distance as a share of ε (their radius)."""
    shares = [f.distance.high / f.eps for f in rows if f.distance is not None and f.eps > 0]
    return f" (at most {max(shares):.3g}·ε)" if shares else ""


def _paragraph(ds: str, rows: Sequence[LipschitzFinding]) -> str:
    points = sum(f.points for f in rows)
    refuted = sum(f.violated for f in rows)
    holds = sum(f.holds for f in rows)
    unknown = sum(f.unknown for f in rows)
    lipschitz = rows[0].lipschitz
    eps = sorted({f.eps for f in rows})
    regimes = list(dict.fromkeys(f.regime for f in rows))
    everywhere = [r for r in regimes if all(f.violated == f.points for f in rows if f.regime == r)]
    found = sum(f.paper_pgd_of_violated for f in rows)
    text = [
        f"On {ds}, LR (L = {lipschitz:g}) was decided at {points} point queries over "
        f"{len(regimes)} networks and ε ∈ {{{', '.join(f'{e:g}' for e in eps)}}}: refuted at "
        f"{refuted} ({100 * refuted / max(points, 1):.1f}%), proved at {holds}, undecided at "
        f"{unknown}. "
    ]
    if len(everywhere) == len(regimes):
        text.append("Every network is refuted at every point and every ε. ")
    elif everywhere:
        text.append(f"Refuted at every point and every ε: {', '.join(everywhere)}. ")
    if refuted:
        text.append(
            "At the verifier's witnesses (each replayed through onnxruntime) the output moves "
            f"by ‖f(x′) − f(x̂)‖∞: {_pooled([f.output_gap for f in rows])}, against the bound "
            f"L·‖x′ − x̂‖∞: {_pooled([f.bound for f in rows])}; the witnesses lie at input "
            f"distance ‖x′ − x̂‖∞: {_pooled([f.distance for f in rows])}{_of_eps(rows)}, so "
            "the local slope "
            f"‖f(x′) − f(x̂)‖∞ / ‖x′ − x̂‖∞ is {_pooled([f.slope for f in rows])} "
            f"(L = {lipschitz:g}). "
        )
        verdict = (
            "finds every one of them"
            if found == refuted
            else "finds none of them"
            if found == 0
            else f"finds {found} of them ({100 * found / refuted:.1f}%)"
        )
        text.append(
            f"The paper's PGD (50 sign steps of 0.01 from a uniform start), run on the same "
            f"points, {verdict}: {found} of the {refuted} refuted point queries."
        )
    lr_trained = [f for f in rows if f.regime == "constraint-lr"]
    if lr_trained:
        n = sum(f.points for f in lr_trained)
        v = sum(f.violated for f in lr_trained)
        h = sum(f.holds for f in lr_trained)
        text.append(
            f" The paper reports some LR robustness for its LR-trained Fashion-MNIST network; "
            f"our LR-trained network on {ds} is refuted at {v} of {n} point queries and "
            f"proved at {h}."
        )
    elif ds.startswith("fashion-mnist"):
        text.append(
            " The LR-trained network (for which the paper reports some LR robustness) is not "
            "among the measured networks yet."
        )
    return "".join(text)


def lipschitz_section(findings: Sequence[LipschitzFinding], labels: dict[str, str]) -> list[str]:
    """Markdown lines: a paragraph per dataset, then the per-network table."""
    if not findings:
        return ["(not measured: LR is not among the certified properties, or no points)"]
    out: list[str] = []
    for ds in dict.fromkeys(f.dataset for f in findings):
        out += [_paragraph(ds, [f for f in findings if f.dataset == ds]), ""]
    out += [
        "Per network (min / median / max over the refuted points):",
        "",
        "| dataset | regime | ε | refuted / points | ‖f(x′) − f(x̂)‖∞ | L·‖x′ − x̂‖∞ | "
        "‖x′ − x̂‖∞ | slope | paper's PGD finds |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for f in findings:
        cells = [
            "—" if s is None else s.text() for s in (f.output_gap, f.bound, f.distance, f.slope)
        ]
        out.append(
            f"| {f.dataset} | {labels.get(f.regime, f.regime)} | {f.eps:g} | "
            f"{f.violated} / {f.points} | " + " | ".join(cells) + f" | {f.paper_pgd} / {f.points} |"
        )
    return out
