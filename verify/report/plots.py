"""PNG figures of a report: metrics vs ε per network, or metrics per network at one ε.

matplotlib through its object API and the Agg canvas only (no pyplot, no global backend
switch), so figures render headless and leave no state behind.

- Several ε in a section (a sweep): x = ε, one panel per metric, one line per network;
  satisfaction is drawn as the band [lower, upper] with the certified lower bound as a line,
  as in the paper's figures.
- One ε: grouped bars per network: satisfaction (certified part solid, the unknowns'
  share hatched up to the upper bound), security and accuracy.

Titles and labels come from files (network paths, property names), so they are drawn as
plain text: control characters escaped (:func:`~robustprop.verify.formats.text.printable`),
``$`` escaped so matplotlib's mathtext never parses them, and a leading ``_`` (which would
hide a legend entry) kept visible.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robustprop.verify.formats.text import printable
from robustprop.verify.report.model import Figure, RunRecord, Section, section_title

if TYPE_CHECKING:
    from matplotlib.figure import Figure as MplFigure

__all__ = ["Series", "bar_plot", "section_figure", "series", "sweep_plot"]

_DPI = 110


@dataclass(frozen=True)
class Series:
    """One network's metrics over ε, sorted by ε; ``None`` where a metric was not measured."""

    label: str
    eps: tuple[float, ...]
    sat_lo: tuple[float | None, ...]
    sat_hi: tuple[float | None, ...]
    security: tuple[float | None, ...]
    accuracy: tuple[float | None, ...]


def series(section: Section) -> list[Series]:
    """Per network, the last run at each ε (a later input replaces an earlier duplicate)."""
    out: list[Series] = []
    for label in section.networks:
        by_eps: dict[float, RunRecord] = {}
        for r in section.runs:
            if r.label == label and r.eps is not None:
                by_eps[r.eps] = r
        eps = tuple(sorted(by_eps))
        runs = [by_eps[e] for e in eps]
        out.append(
            Series(
                label=label,
                eps=eps,
                sat_lo=tuple(r.satisfaction[0] if r.satisfaction else None for r in runs),
                sat_hi=tuple(r.satisfaction[1] if r.satisfaction else None for r in runs),
                security=tuple(r.security for r in runs),
                accuracy=tuple(r.accuracy for r in runs),
            )
        )
    return out


def _text(text: str) -> str:
    """``text`` drawn literally: no control characters, no mathtext, no hidden legend entry."""
    shown = printable(text).replace("$", r"\$")
    return " " + shown if shown.startswith("_") else shown


def _new_figure(width: float, height: float) -> MplFigure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: MplFigure, path: Path) -> None:
    # No software/date metadata: the same inputs give the same bytes.
    fig.savefig(path, format="png", metadata={"Software": None})


def _present(values: Sequence[float | None]) -> bool:
    return any(v is not None for v in values)


def _column(s: Series, key: str) -> tuple[float | None, ...]:
    if key == "satisfaction":
        return s.sat_lo  # the band [lo, hi] is drawn around this line
    return s.security if key == "security" else s.accuracy


def _eps_axis(ax: Any, eps: Sequence[float]) -> None:
    """Log scale when ε spans a decade or more (0.01 … 0.1), ticks at the measured ε."""
    if eps and min(eps) > 0 and max(eps) / min(eps) >= 5:
        ax.set_xscale("log")
        ax.minorticks_off()
    if len(eps) <= 10:
        ax.set_xticks(list(eps), [f"{e:g}" for e in eps], rotation=45 if len(eps) > 5 else 0)
    ax.set_xlabel("ε")


def sweep_plot(path: Path, title: str, lines: Sequence[Series]) -> None:
    """Metric vs ε: one panel per measured metric, one line (or band) per network."""
    panels = [
        (name, key)
        for name, key in (
            ("satisfaction (certified)", "satisfaction"),
            ("security (PGD)", "security"),
            ("accuracy (sampling)", "accuracy"),
        )
        if any(_present(_column(s, key)) for s in lines)
    ]
    fig = _new_figure(3.6 * max(len(panels), 1) + 0.4, 3.8)
    axes = fig.subplots(1, max(len(panels), 1), squeeze=False, sharey=True)[0]
    colors = [f"C{i % 10}" for i in range(len(lines))]
    all_eps = sorted({e for s in lines for e in s.eps})
    for ax, (name, key) in zip(axes, panels, strict=False):
        for s, color in zip(lines, colors, strict=True):
            pts = [(e, v) for e, v in zip(s.eps, _column(s, key), strict=True) if v is not None]
            if not pts:
                continue
            if key == "satisfaction":
                band = [
                    (e, lo, hi)
                    for e, lo, hi in zip(s.eps, s.sat_lo, s.sat_hi, strict=True)
                    if lo is not None and hi is not None
                ]
                xs = [b[0] for b in band]
                ax.fill_between(
                    xs, [b[1] for b in band], [b[2] for b in band], color=color, alpha=0.2, lw=0
                )
                ax.plot(xs, [b[2] for b in band], color=color, ls=":", lw=1)
            ax.plot(
                [p[0] for p in pts],
                [p[1] for p in pts],
                color=color,
                marker="o",
                label=_text(s.label),
            )
        ax.set_title(name, fontsize=10)
        _eps_axis(ax, all_eps)
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("fraction of points")
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(
            handles, labels, loc="outside lower center", ncols=min(len(handles), 4), fontsize=8
        )
    fig.suptitle(_text(title), fontsize=11)
    _save(fig, path)


def bar_plot(path: Path, title: str, runs: Sequence[RunRecord], names: Sequence[str]) -> None:
    """Metrics at one ε, grouped per run (network): satisfaction, security, accuracy.

    The satisfaction bar is solid up to the certified lower bound and hatched up to the
    upper bound (the unknowns' share).
    """
    fig = _new_figure(max(4.8, 1.5 * len(runs) + 2.5), 3.8)
    ax = fig.subplots()
    width = 0.26
    labelled: set[str] = set()

    def once(name: str) -> str | None:
        if name in labelled:
            return None
        labelled.add(name)
        return name

    def value(x: float, top: float, text: str) -> None:
        ax.text(x, top + 0.01, text, ha="center", va="bottom", fontsize=7)

    for i, r in enumerate(runs):
        if r.satisfaction is not None:
            lo, hi = r.satisfaction
            ax.bar(i - width, lo, width, color="C0", label=once("satisfaction (certified)"))
            if hi > lo:
                ax.bar(
                    i - width,
                    hi - lo,
                    width,
                    bottom=lo,
                    color="C0",
                    alpha=0.3,
                    hatch="//",
                    label=once("satisfaction: unknown share"),
                )
            value(i - width, hi, f"{lo:.2f}" if hi == lo else f"{lo:.2f}–{hi:.2f}")
        if r.security is not None:
            ax.bar(i, r.security, width, color="C1", label=once("security (PGD)"))
            value(i, r.security, f"{r.security:.2f}")
        if r.accuracy is not None:
            ax.bar(i + width, r.accuracy, width, color="C2", label=once("accuracy (sampling)"))
            value(i + width, r.accuracy, f"{r.accuracy:.2f}")
    ax.set_xticks(range(len(runs)), [_text(n) for n in names], fontsize=8)
    ax.set_xlim(-0.6, len(runs) - 0.4)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("fraction of points")
    ax.grid(axis="y", alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(
            handles, labels, loc="outside lower center", ncols=min(len(handles), 2), fontsize=8
        )
    ax.set_title(_text(title), fontsize=11)
    _save(fig, path)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "figure"


def section_figure(section: Section, number: int, folder: Path, files_name: str) -> Figure:
    """Draw the section's figure into ``folder``; its path is given relative to the report."""
    title = section_title(section)
    if section.is_sweep:
        name = f"{number:02d}-{_slug(section.prop)}-vs-eps.png"
        sweep_plot(folder / name, title, series(section))
        caption = f"{title}: metrics vs ε, one line per network (band: satisfaction interval)"
    else:
        name = f"{number:02d}-{_slug(section.prop)}-networks.png"
        eps = section.eps_values
        if eps:
            title = f"{title}, ε = {eps[0]:g}"
        bar_plot(folder / name, title, section.runs, section.row_labels())
        caption = f"{title}: satisfaction, security and accuracy per network"
    return Figure(relpath=f"{files_name}/{name}", caption=caption)
