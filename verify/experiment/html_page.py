"""The experiment's report as one self-contained HTML page, from its Markdown.

The report's Markdown uses a small subset — headings, paragraphs, bullet lists, pipe tables,
images, code spans, bold, italics, links and backslash escapes (from
:func:`~robustprop.verify.formats.text.markdown_text`) — and this module renders exactly that
subset. Images become ``data:`` URIs (the PNG read from the report folder), and links to local
files (the PDF and SVG versions) are kept as plain text, so the page needs no file beside it.
Every piece of text is HTML-escaped; nothing in the Markdown is passed through as markup.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

__all__ = ["html_page"]

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 80em; padding: 0 1em;
       color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; }
figure { margin: 1.5em 0; }
figcaption { color: #555; font-size: 0.9em; }
code { background: #f5f5f5; padding: 0 0.2em; }
"""

_ESCAPED = re.compile(r"\\([^A-Za-z0-9\s])")
_HELD = re.compile("\x00([0-9]+)\x01")
_IMAGE = re.compile(r"^!\[([^\]]*)\]\(([^)\s]+)\)$")


def _hold(text: str) -> str:
    """Backslash escapes out of the way of the inline rules (restored by :func:`_release`)."""
    return _ESCAPED.sub(lambda m: f"\x00{ord(m.group(1))}\x01", text)


def _release(text: str) -> str:
    return _HELD.sub(lambda m: html.escape(chr(int(m.group(1)))), text)


def _inline(text: str) -> str:
    out = html.escape(text, quote=False)
    out = re.sub(r"(`+)(.+?)\1", lambda m: f"<code>{m.group(2).strip()}</code>", out)
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    out = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", out)
    # links to local files (the vector figures): their text only, the page stands alone
    return re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r"\1", out)


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _table(lines: list[str]) -> list[str]:
    rows = [_cells(line) for line in lines]
    head, body = rows[0], [r for r in rows[1:] if not all(re.fullmatch(r":?-+:?", c) for c in r)]
    right = [c.endswith(":") for c in rows[1]] if len(rows) > 1 else []
    out = ["<table>", "<tr>" + "".join(f"<th>{_inline(c)}</th>" for c in head) + "</tr>"]
    for row in body:
        cells = [
            f'<td class="num">{_inline(c)}</td>'
            if i < len(right) and right[i]
            else f"<td>{_inline(c)}</td>"
            for i, c in enumerate(row)
        ]
        out.append("<tr>" + "".join(cells) + "</tr>")
    return [*out, "</table>"]


def _image(alt: str, src: str, folder: Path) -> str:
    path = folder / src
    try:
        data = path.read_bytes()
    except OSError:
        return f"<p>(figure missing: {_inline(src)})</p>"
    uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return f'<figure><img src="{uri}" alt="{html.escape(_release(alt))}"></figure>'


def _starts_block(line: str) -> bool:
    return bool(re.match(r"^(#{1,6} |\||\s*- )", line) or _IMAGE.match(line.strip()))


def html_page(markdown: str, folder: Path) -> str:
    """``markdown`` (the report's subset, module docstring) as one HTML page; images are read
    relative to ``folder`` and embedded."""
    body: list[str] = []
    lines = [_hold(line) for line in markdown.splitlines()]
    title = "Report"
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        heading = re.match(r"^(#{1,6}) (.*)$", line)
        image = _IMAGE.match(line.strip())
        if heading:
            level = len(heading.group(1))
            if level == 1:
                title = heading.group(2)
            body.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
            i += 1
        elif image:
            body.append(_image(image.group(1), image.group(2), folder))
            i += 1
        elif line.startswith("|"):
            block = []
            while i < len(lines) and lines[i].startswith("|"):
                block.append(lines[i])
                i += 1
            body += _table(block)
        elif re.match(r"^\s*- ", line):
            items = []
            while i < len(lines) and re.match(r"^\s*- ", lines[i]):
                items.append(f"<li>{_inline(lines[i].strip()[2:])}</li>")
                i += 1
            body += ["<ul>", *items, "</ul>"]
        else:
            para = [line.strip()]
            i += 1
            while i < len(lines) and lines[i].strip() and not _starts_block(lines[i]):
                para.append(lines[i].strip())
                i += 1
            body.append(f"<p>{_inline(' '.join(para))}</p>")
    page = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        f'<head><meta charset="utf-8"><title>{html.escape(_release(title))}</title>',
        f"<style>{_CSS}</style></head>",
        "<body>",
        *body,
        "</body>",
        "</html>",
        "",
    ]
    return _release("\n".join(page))
