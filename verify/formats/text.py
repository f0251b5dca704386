"""Names that come from files, made safe to show: on a terminal and in a Markdown document.

A network path, a property name, a key of a data file or a file name can hold anything:
terminal control sequences (``ESC [ 2 J`` clears the screen, ``ESC ] 8`` makes links), line
breaks that forge a second message line, bidirectional overrides that reorder what is shown
("Trojan Source"), and bytes that are not UTF-8 (Python keeps them as lone surrogates, which
cannot even be encoded for output). :func:`printable` escapes exactly those and keeps every
other character, so ``é``, ``ε`` and CJK names stay readable. :func:`markdown_text` and
:func:`code_span` additionally escape Markdown syntax, so a name is shown, never interpreted.
"""

from __future__ import annotations

import re

__all__ = ["code_span", "markdown_text", "printable"]

# C0 controls, DEL and C1 controls; surrogates (non-UTF-8 bytes under surrogateescape, or a
# lone "\ud800" from JSON); the line and paragraph separators; bidirectional formatting.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Backslash first, so the backslashes added for the others are not doubled.
_MARKDOWN_ACTIVE = "\\`*_[]<>|#~$&!{}"
_MARKDOWN = re.compile("[" + re.escape(_MARKDOWN_ACTIVE) + "]")


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    code = ord(ch)
    if ch in _SHORT:
        return _SHORT[ch]
    if 0xDC80 <= code <= 0xDCFF:  # a byte 0x80..0xFF of a non-UTF-8 name (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


def printable(text: object) -> str:
    r"""``str(text)`` with control characters escaped, safe to print on a terminal.

    C0 (``\n``, ``\r``, ``\t`` as such, the others as ``\xNN``), DEL and C1 controls, lone
    surrogates (a non-UTF-8 byte of a file name as ``\xNN``), U+2028/U+2029 and the
    bidirectional formatting characters (``\uNNNN``). Every other character is kept. The
    result is one line that can always be encoded as UTF-8.
    """
    return _UNSAFE.sub(_escape, str(text))


def markdown_text(text: object) -> str:
    r"""``text`` for inline Markdown (a table cell, a heading, a list item): shown literally.

    :func:`printable` first (no line breaks, so nothing can start a new block or table row),
    then a backslash before every character with inline meaning in CommonMark or GitHub's
    Markdown: ``\ ` * _ [ ] < > | # ~ $ & ! { }`` (emphasis, code, links, raw HTML, table
    cells, headings, strikethrough, math, entities).
    """
    return _MARKDOWN.sub(lambda m: "\\" + m.group(), printable(text))


def code_span(text: object) -> str:
    """``text`` as a Markdown code span whose fence is longer than any backtick run inside."""
    shown = printable(text)
    longest = max((len(run) for run in re.findall("`+", shown)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if shown.startswith("`") or shown.endswith("`") or not shown.strip() else ""
    return f"{fence}{pad}{shown}{pad}{fence}"
