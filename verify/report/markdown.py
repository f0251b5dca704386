"""Report text: the same tables and notes as GitHub-flavoured Markdown or as one HTML page.

The content is built once as plain data (:class:`Table`, notes as lines) and then written
in either markup, so the two formats never disagree. Every piece of text is escaped for its
markup, since names come from files (a network path may hold ``|``, ``*``, ``$``, backticks,
control characters or bytes that are not UTF-8): ``markdown_text`` for Markdown, and
``printable`` then ``html.escape`` for HTML (both from :mod:`robustprop.verify.formats.text`),
so a name is always shown and never interpreted.

The HTML page is self-contained: its figures are embedded as ``data:`` URIs (PNG), so it
can be mailed or archived alone; the Markdown links the figure files beside it.
"""

from __future__ import annotations

import base64
import html as _html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from robustprop.verify.formats.text import markdown_text, printable
from robustprop.verify.report.model import Figure, RunRecord, Section, section_title

__all__ = ["Table", "data_uri", "html", "markdown", "notes", "table"]

_NA = "—"  # metric not measured in that run
_MAX_INDICES = 10  # in a table cell; the notes list them all


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    right: tuple[bool, ...]  # right-align numeric columns


def _num(value: float | None) -> str:
    return _NA if value is None else f"{value:.3f}"


def _gap(value: float | None) -> str:
    return _NA if value is None else f"{value:+.3f}"


def _satisfaction(r: RunRecord) -> str:
    if r.satisfaction is None:
        return _NA
    lo, hi = r.satisfaction
    return f"{lo:.3f}" if lo == hi else f"[{lo:.3f}, {hi:.3f}]"


def _indices(values: tuple[int, ...] | None) -> str:
    if values is None:
        return _NA
    if not values:
        return "none"
    shown = ", ".join(str(i) for i in values[:_MAX_INDICES])
    more = len(values) - _MAX_INDICES
    return shown + (f", … (+{more})" if more > 0 else "")


def table(section: Section) -> Table:
    """One row per (network, ε): counts, the three metrics and the two gaps."""
    header = (
        "network",
        "ε",
        "points",
        "holds / violated / unknown",
        "satisfaction",
        "security",
        "accuracy",
        "security − sat. upper",
        "accuracy − security",
        "refuted, missed by PGD",
    )
    rows = []
    for name, r in zip(section.row_labels(), section.runs, strict=True):
        counts = _NA if r.holds is None else f"{r.holds} / {r.violated} / {r.unknown}"
        rows.append(
            (
                name,
                _NA if r.eps is None else f"{r.eps:g}",
                str(r.n_points),
                counts,
                _satisfaction(r),
                _num(r.security),
                _num(r.accuracy),
                _gap(r.security_gap),
                _gap(r.accuracy_gap),
                _indices(r.refuted_missed),
            )
        )
    right = (False, True, True, True, True, True, True, True, True, False)
    return Table(header, tuple(rows), right)


def _provenance(r: RunRecord) -> str:
    parts = [f"data {r.data_source} ({r.split})", f"backend {r.backend}"]
    if r.tau is not None:
        parts.append(f"τ = {r.tau:g}")
    if r.timeout_s is not None:
        parts.append(f"timeout {r.timeout_s:g} s")
    if r.samples is not None:
        parts.append(f"{r.samples} samples per point")
    if r.decided_by_stage:
        stages = ", ".join(f"{k} {v}" for k, v in sorted(r.decided_by_stage.items()))
        parts.append(f"decided by stage: {stages}")
    if r.time_s is not None:
        parts.append(f"{r.time_s:.1f} s")
    return "; ".join(parts)


def notes(r: RunRecord, limit: int = 20) -> list[str]:
    """What a reader should look at in one run: breaches, attack misses, unknowns."""
    lines = [f"invariant breach (a bug, please report): {b}" for b in r.breaches]
    by_index = {p.index: p for p in r.points}
    for i in r.refuted_missed or ():
        p = by_index.get(i)
        label = "" if p is None or p.label is None else f" (label {p.label})"
        witness = "" if p is None else f": {p.witness_text()}"
        lines.append(f"refuted by the verifier, missed by PGD: point {i}{label}{witness}")
    unknown = [p for p in r.points if p.verdict == "unknown"]
    for p in unknown[:limit]:
        lines.append(f"unknown: point {p.index} ({p.reason or 'no reason given'})")
    if len(unknown) > limit:
        lines.append(f"unknown: … and {len(unknown) - limit} more points")
    return lines


def _run_heading(r: RunRecord) -> str:
    eps = "" if r.eps is None else f", ε = {r.eps:g}"
    return f"{r.label}{eps} ({r.origin})"


def _has_breaches(sections: Sequence[Section]) -> list[RunRecord]:
    return [r for s in sections for r in s.runs if r.breaches]


_LEGEND = (
    "Satisfaction is certified: the interval [proved / N, (N − violated) / N], one number "
    "when no point is unknown. Security is the fraction of points where PGD on the "
    "property's loss finds no counterexample; accuracy is the mean fraction of uniform "
    "samples in the ε-ball that satisfy the property. The gaps show how far the empirical "
    "scores overstate the certified one; 'refuted, missed by PGD' lists points the verifier "
    "proved violated although the attack found nothing."
)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _inputs_line(inputs: Sequence[Path], n_runs: int, version: str) -> str:
    files = ", ".join(str(p) for p in inputs)
    runs, n_files = _plural(n_runs, "run"), _plural(len(inputs), "file")
    return f"robustprop {version}: {runs} from {n_files} ({files})"


# ---------------------------------------------------------------------------- Markdown


def _md_table(t: Table) -> list[str]:
    lines = ["| " + " | ".join(markdown_text(h) for h in t.header) + " |"]
    lines.append("|" + "|".join("---:" if r else "---" for r in t.right) + "|")
    lines += ["| " + " | ".join(markdown_text(c) for c in row) + " |" for row in t.rows]
    return lines


def _vector_links(relpath: str) -> str:
    stem = relpath.rsplit(".", 1)[0]
    return f"Vector versions: [PDF]({quote(stem)}.pdf), [SVG]({quote(stem)}.svg)"


def markdown(
    sections: Sequence[Section], figures: Sequence[Figure], inputs: Sequence[Path], version: str
) -> str:
    n_runs = sum(len(s.runs) for s in sections)
    out = ["# Robustness report", "", markdown_text(_inputs_line(inputs, n_runs, version)), ""]
    broken = _has_breaches(sections)
    if broken:
        out += [
            f"> **Warning: {_plural(len(broken), 'run')} broke an invariant of the metrics** "
            "(see the notes); their numbers are not trustworthy.",
            "",
        ]
    out += [markdown_text(_LEGEND), ""]
    for number, (section, figure) in enumerate(zip(sections, figures, strict=True), 1):
        out += [f"## {number}. {markdown_text(section_title(section))}", ""]
        out += _md_table(table(section))
        out += ["", f"![{markdown_text(figure.caption)}]({quote(figure.relpath)})", ""]
        out += [_vector_links(figure.relpath), ""]
        out += ["Runs:", ""]
        for r in section.runs:
            out.append(f"- **{markdown_text(_run_heading(r))}**: {markdown_text(_provenance(r))}")
            out += [f"  - {markdown_text(line)}" for line in notes(r)]
        out.append("")
    return "\n".join(out)


# ---------------------------------------------------------------------------- HTML

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 75em; padding: 0 1em;
       color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; }
.warning { background: #fff3cd; border: 1px solid #e0b000; padding: 0.5em 1em; }
.legend { color: #555; }
figcaption { color: #555; font-size: 0.9em; }
"""


def _h(text: str) -> str:
    return _html.escape(printable(text), quote=True)


def data_uri(png: bytes) -> str:
    """``png`` as a ``data:`` URI, for an ``<img src>`` that needs no file beside the page."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _html_table(t: Table) -> list[str]:
    lines = ["<table>", "<tr>" + "".join(f"<th>{_h(c)}</th>" for c in t.header) + "</tr>"]
    for row in t.rows:
        cells = "".join(
            f'<td class="num">{_h(c)}</td>' if r else f"<td>{_h(c)}</td>"
            for c, r in zip(row, t.right, strict=True)
        )
        lines.append(f"<tr>{cells}</tr>")
    lines.append("</table>")
    return lines


def html(
    sections: Sequence[Section],
    figures: Sequence[Figure],
    inputs: Sequence[Path],
    version: str,
    images: Sequence[bytes] | None = None,
) -> str:
    """The report as one HTML page; ``images``: each figure's PNG bytes, embedded (None:
    the page links ``figure.relpath`` instead)."""
    if images is not None and len(images) != len(figures):
        raise ValueError(f"{len(images)} images for {len(figures)} figures")
    n_runs = sum(len(s.runs) for s in sections)
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        '<head><meta charset="utf-8"><title>Robustness report</title>',
        f"<style>{_CSS}</style></head>",
        "<body>",
        "<h1>Robustness report</h1>",
        f"<p>{_h(_inputs_line(inputs, n_runs, version))}</p>",
    ]
    broken = _has_breaches(sections)
    if broken:
        runs = _plural(len(broken), "run")
        out.append(
            f'<p class="warning"><strong>Warning: {runs} broke an invariant of the metrics'
            "</strong> (see the notes); their numbers are not trustworthy.</p>"
        )
    out.append(f'<p class="legend">{_h(_LEGEND)}</p>')
    for number, (section, figure) in enumerate(zip(sections, figures, strict=True), 1):
        out.append(f"<h2>{number}. {_h(section_title(section))}</h2>")
        out += _html_table(table(section))
        src = quote(figure.relpath) if images is None else data_uri(images[number - 1])
        out.append(
            f'<figure><img src="{_h(src)}" alt="{_h(figure.caption)}">'
            f"<figcaption>{_h(figure.caption)}</figcaption></figure>"
        )
        out.append("<p>Runs:</p><ul>")
        for r in section.runs:
            items = "".join(f"<li>{_h(line)}</li>" for line in notes(r))
            sub = f"<ul>{items}</ul>" if items else ""
            out.append(
                f"<li><strong>{_h(_run_heading(r))}</strong>: {_h(_provenance(r))}{sub}</li>"
            )
        out.append("</ul>")
    out += ["</body>", "</html>", ""]
    return "\n".join(out)
