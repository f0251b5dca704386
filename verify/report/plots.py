"""Figures of a report: metrics vs ε per network, or metrics per network at one ε.

matplotlib through its object API and the Agg canvas only (no pyplot, no global backend
switch), so figures render headless and leave no state behind. Every figure is written as
PNG (:data:`DPI` dots per inch) with a PDF and an SVG beside it (:data:`FORMATS`), cropped to
what is drawn (``bbox_inches="tight"`` on a constrained layout: no legend or title clipped);
long titles are wrapped to the figure's width. Each series of a line plot has its own
marker and line style (:func:`style`), so series that overlap stay visible in print.

- Several ε in a section (a sweep): x = ε, one panel per metric, one line per network;
  satisfaction is drawn as the band [lower, upper] (and a bar at each ε) with the certified
  lower bound as a line, as in the paper's figures.
- One ε: grouped bars per network: satisfaction (certified part solid, the unknowns'
  share hatched up to the upper bound), security and accuracy.

Titles and labels come from files (network paths, property names), so they are drawn as
plain text: control characters escaped (:func:`~robustprop.verify.formats.text.printable`),
``$`` escaped so matplotlib's mathtext never parses them, and a leading ``_`` (which would
hide a legend entry) kept visible.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robustprop.verify.formats.text import printable
from robustprop.verify.report.model import Figure, RunRecord, Section, section_title

if TYPE_CHECKING:
    from matplotlib.figure import Figure as MplFigure

__all__ = [
    "DPI",
    "FORMATS",
    "Series",
    "bar_figure",
    "bar_plot",
    "save",
    "section_figure",
    "series",
    "style",
    "sweep_figure",
    "sweep_plot",
]

#: Resolution of the PNG files.
DPI = 200
#: Every figure is written in these formats (the PNG's path with these suffixes).
FORMATS = ("png", "pdf", "svg")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p")
_LINESTYLES: tuple[str | tuple[int, tuple[int, ...]], ...] = (
    "-",
    "--",
    "-.",
    ":",
    (0, (5, 1, 1, 1, 1, 1)),
)


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


#: No software or date in the files: the same inputs give the same bytes.
_METADATA: dict[str, dict[str, str | None]] = {
    "png": {"Software": None},
    "pdf": {"Creator": None, "Producer": None, "CreationDate": None},
    "svg": {"Creator": None, "Date": None},
}


def style(index: int) -> tuple[str, str | tuple[int, tuple[int, ...]]]:
    """(marker, line style) of the ``index``-th series: the pairs differ for any two series
    of one axes (markers alone differ for up to 12 series)."""
    return (
        _MARKERS[index % len(_MARKERS)],
        _LINESTYLES[(index + index // len(_MARKERS)) % len(_LINESTYLES)],
    )


def _wrapped(text: str, width_in: float, size_pt: float) -> str:
    """``text`` broken into lines that fit ``width_in`` inches at ``size_pt`` points."""
    chars = max(20, int(width_in * 72 / (0.6 * size_pt)))
    return "\n".join(textwrap.wrap(text, chars)) or text


def _new_figure(width: float, height: float) -> MplFigure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save(fig: MplFigure, path: Path) -> list[Path]:
    """Write ``fig`` as ``path`` (PNG) and beside it as PDF and SVG; returns the paths.

    Cropped to what is drawn (nothing clipped); no software or date metadata, and a fixed
    SVG id salt, so the same inputs give the same bytes.
    """
    from matplotlib import rc_context

    out = []
    with rc_context({"svg.hashsalt": "robustprop"}):
        for fmt in FORMATS:
            target = path.with_suffix(f".{fmt}")
            metadata = _METADATA[fmt]
            fig.savefig(
                target,
                format=fmt,
                dpi=DPI,
                bbox_inches="tight",
                pad_inches=0.05,
                metadata=metadata,
            )
            out.append(target)
    return out


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
    """Metric vs ε (:func:`sweep_figure`) written as PNG, PDF and SVG (:func:`save`)."""
    save(sweep_figure(title, lines), path)


def sweep_figure(title: str, lines: Sequence[Series]) -> MplFigure:
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
    width = 3.6 * max(len(panels), 1) + 0.4
    fig = _new_figure(width, 3.8 + 0.25 * ((len(lines) + 2) // 3))
    axes = fig.subplots(1, max(len(panels), 1), squeeze=False, sharey=True)[0]
    colors = [f"C{i % 10}" for i in range(len(lines))]
    all_eps = sorted({e for s in lines for e in s.eps})
    for ax, (name, key) in zip(axes, panels, strict=False):
        for i, (s, color) in enumerate(zip(lines, colors, strict=True)):
            marker, linestyle = style(i)
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
                ax.plot(xs, [b[2] for b in band], color=color, ls=":", lw=0.8, alpha=0.6)
                # the interval at each ε as a bar too (a band of one ε would not show)
                ax.vlines(
                    xs, [b[1] for b in band], [b[2] for b in band], color=color, lw=2, alpha=0.45
                )
            ax.plot(
                [p[0] for p in pts],
                [p[1] for p in pts],
                color=color,
                marker=marker,
                linestyle=linestyle,
                markersize=5,
                markerfacecolor="none" if i % 2 else color,
                label=_text(s.label),
            )
        ax.set_title(name, fontsize=10)
        _eps_axis(ax, all_eps)
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("fraction of points")
    handles, labels = _legend_entries(axes)
    if handles:
        fig.legend(
            handles, labels, loc="outside lower center", ncols=min(len(handles), 3), fontsize=8
        )
    fig.suptitle(_wrapped(_text(title), width, 11), fontsize=11)
    return fig


def _legend_entries(axes: Sequence[Any]) -> tuple[list[Any], list[str]]:
    """Each labelled series once, from whichever panel drew it."""
    handles: list[Any] = []
    labels: list[str] = []
    for ax in axes:
        for h, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in labels:
                handles.append(h)
                labels.append(label)
    return handles, labels


def bar_plot(path: Path, title: str, runs: Sequence[RunRecord], names: Sequence[str]) -> None:
    """Bars per network (:func:`bar_figure`) written as PNG, PDF and SVG (:func:`save`)."""
    save(bar_figure(title, runs, names), path)


def bar_figure(title: str, runs: Sequence[RunRecord], names: Sequence[str]) -> MplFigure:
    """Metrics at one ε, grouped per run (network): satisfaction, security, accuracy.

    The satisfaction bar is solid up to the certified lower bound and hatched up to the
    upper bound (the unknowns' share).
    """
    width = max(4.8, 1.5 * len(runs) + 2.5)
    fig = _new_figure(width, 3.8)
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
    ax.set_xticks(range(len(runs)), [_wrapped(_text(n), 1.4, 8) for n in names], fontsize=8)
    ax.set_xlim(-0.6, len(runs) - 0.4)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("fraction of points")
    ax.grid(axis="y", alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(
            handles, labels, loc="outside lower center", ncols=min(len(handles), 2), fontsize=8
        )
    ax.set_title(_wrapped(_text(title), width, 11), fontsize=11)
    return fig


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
