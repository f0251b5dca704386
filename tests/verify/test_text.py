"""Names from files made safe to show: :mod:`robustprop.verify.formats.text`."""

from __future__ import annotations

from pathlib import Path

import pytest

from robustprop.verify.formats.text import code_span, markdown_text, printable


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain name.onnx", "plain name.onnx"),
        ("ε-ball, é, 网络, 🙂", "ε-ball, é, 网络, 🙂"),  # printable Unicode is kept
        ("a\x1b[2Jb", "a\\x1b[2Jb"),  # ESC: clears the screen on a terminal
        ("line\nforged: ok\r", "line\\nforged: ok\\r"),
        ("tab\there", "tab\\there"),
        ("nul\x00del\x7f", "nul\\x00del\\x7f"),
        ("c1\x9bcsi\x85nel", "c1\\x9bcsi\\x85nel"),  # C1: CSI and NEL
        ("bidi\u202eevil\u2066", "bidi\\u202eevil\\u2066"),  # "Trojan Source" overrides
        ("sep\u2028par\u2029", "sep\\u2028par\\u2029"),
        (b"non-utf8-\xff.onnx".decode("utf-8", "surrogateescape"), "non-utf8-\\xff.onnx"),
        ("lone \ud800 surrogate", "lone \\ud800 surrogate"),
    ],
)
def test_printable_escapes_controls_and_keeps_text(raw: str, shown: str) -> None:
    assert printable(raw) == shown
    printable(raw).encode("utf-8")  # always encodable
    assert printable(printable(raw)) == printable(raw)  # idempotent


def test_printable_takes_paths() -> None:
    assert printable(Path("runs") / "a\x1b.json") == "runs/a\\x1b.json"


def test_markdown_text_shows_every_active_character_literally() -> None:
    raw = "a|b*c_d`e[f](g)<h>#i~j$k$&amp;!l{m}\\n"
    out = markdown_text(raw)
    for ch in "|*_`[]<>#~$&!{}":
        assert f"\\{ch}" in out
    assert "\\\\n" in out  # the backslash itself is escaped
    assert "\n" not in markdown_text("two\nlines") and "\\\\n" in markdown_text("two\nlines")


@pytest.mark.parametrize(
    ("raw", "span"),
    [("verify run", "`verify run`"), ("a `b` c", "``a `b` c``"), ("`x`", "`` `x` ``")],
)
def test_code_span_fence_is_longer_than_any_backtick_run(raw: str, span: str) -> None:
    assert code_span(raw) == span
