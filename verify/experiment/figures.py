"""The experiment's figures: one per dataset and attack, E1, the bigger network, certified.

Each figure is written as PNG (200 dpi), PDF and SVG by
:func:`robustprop.verify.report.plots.sweep_plot`; the list returned names the PNGs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from robustprop.verify.experiment.grid import TrainedNet
from robustprop.verify.experiment.measure import Row
from robustprop.verify.report.plots import Series, sweep_plot

__all__ = ["draw_figures"]


def _series(rows: Sequence[Row], label: str) -> Series:
    by_eps = sorted(rows, key=lambda r: r.eps)
    sats = [r.satisfaction for r in by_eps]
    return Series(
        label=label,
        eps=tuple(r.eps for r in by_eps),
        sat_lo=tuple(None if s is None else s[0] for s in sats),
        sat_hi=tuple(None if s is None else s[1] for s in sats),
        security=tuple(r.security for r in by_eps),
        accuracy=tuple(r.accuracy for r in by_eps),
    )


def draw_figures(
    folder: Path,
    nets: Sequence[TrainedNet],
    curves: Sequence[Row],
    certified: Sequence[Row],
    beyond: Sequence[TrainedNet] = (),
) -> list[tuple[str, Path]]:
    """(caption, path of the PNG) of every figure written; ``beyond``'s networks appear in
    the certified figures only (the paper's figures keep the paper's regimes)."""
    out: list[tuple[str, Path]] = []
    labels = {n.spec.key: n.spec.label for n in [*nets, *beyond]}
    datasets = list(dict.fromkeys(n.dataset for n in nets))
    for ds in datasets:
        regimes = [n.spec.key for n in nets if n.dataset == ds and n.spec.arch == "mlp"]
        for attack in ("sr", "lr", "scr"):
            lines = [
                _series(sel, labels[k]) for k in regimes if (sel := _select(curves, ds, k, attack))
            ]
            if lines:
                path = folder / f"{ds}-{attack}-attack.png"
                title = f"{ds}: {attack.upper()} attack, every training regime"
                sweep_plot(path, title, lines)
                out.append((title, path))
        e1 = [
            _series(sel, f"{labels[k]} vs {attack.upper()} attack")
            for k in ("adversarial", "constraint-sr", "constraint-lr")
            for attack in ("sr", "lr", "scr")
            if k in labels and (sel := _select(curves, ds, k, attack))
        ]
        if e1:
            path = folder / f"{ds}-e1-attacks.png"
            title = f"{ds}: E1, one network against each attack (paper Figs. 2, 12-14)"
            sweep_plot(path, title, e1)
            out.append((title, path))
        big = [
            _series(sel, labels[k])
            for k in (
                "baseline",
                "augment-fgsm",
                "constraint-sr",
                "big-baseline",
                "big-augment-fgsm",
                "big-constraint-sr",
            )
            if k in labels and (sel := _select(curves, ds, k, "scr"))
        ]
        if any(n.spec.arch != "mlp" for n in nets if n.dataset == ds) and big:
            path = folder / f"{ds}-bigger-network.png"
            title = f"{ds}: paper MLP vs bigger MLP, SCR attack (paper Fig. 11)"
            sweep_plot(path, title, big)
            out.append((title, path))
        extra = [n.spec.key for n in beyond if n.dataset == ds]
        for prop in sorted({r.prop for r in certified if r.dataset == ds}):
            lines = [
                _series(sel, labels.get(k, k))
                for k in regimes + extra
                if (sel := _select(certified, ds, k, prop))
            ]
            if lines:
                path = folder / f"{ds}-{prop}-certified.png"
                title = f"{ds}: {prop.upper()} certified satisfaction vs security vs accuracy"
                sweep_plot(path, title, lines)
                out.append((title, path))
    return out


def _select(rows: Sequence[Row], ds: str, regime: str, prop: str) -> list[Row]:
    return [r for r in rows if r.dataset == ds and r.regime == regime and r.prop == prop]
