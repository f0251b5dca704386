"""Paper-ready figures: PNG at >= 200 dpi with PDF and SVG beside it, nothing clipped,
every series its own marker and line style, and an HTML report that needs no other file."""

from __future__ import annotations

import struct
from html.parser import HTMLParser
from pathlib import Path

from click.testing import CliRunner
from matplotlib.text import Text

from robustprop.verify.cli.main import cli
from robustprop.verify.report.plots import Series, save, sweep_figure
from tests.verify.test_report_inputs import RealRuns, real_runs

__all__ = ["real_runs"]  # the session fixture, imported so pytest sees it here

LONG_TITLE = (
    "fashion-mnist: E1, one network against each attack (paper Figs. 2, 12-14), with a title "
    "long enough to run past the right edge of the figure when it is not wrapped"
)


def png_dpi(path: Path) -> tuple[float, float]:
    """Dots per inch from the PNG's pHYs chunk (pixels per metre)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos = 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        if kind == b"pHYs":
            x, y, unit = struct.unpack(">IIB", data[pos + 8 : pos + 17])
            assert unit == 1  # metre
            return x * 0.0254, y * 0.0254
        pos += 12 + length
    raise AssertionError(f"{path}: no pHYs chunk")


def _lines(n: int) -> list[Series]:
    eps = (0.01, 0.03, 0.05, 0.1)
    return [
        Series(
            label=f"Regime number {i} vs SR attack",
            eps=eps,
            sat_lo=(0.5, 0.4, 0.3, 0.2),
            sat_hi=(0.6, 0.5, 0.4, 0.3),
            security=(1.0, 0.9, 0.9, 0.8),  # identical for every series: they overlap
            accuracy=(1.0, 1.0, 1.0, 1.0),
        )
        for i in range(n)
    ]


def test_legend_and_title_lie_inside_the_saved_figure(tmp_path: Path) -> None:
    fig = sweep_figure(LONG_TITLE, _lines(9))
    save(fig, tmp_path / "f.png")
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    box = fig.bbox
    (legend,) = fig.legends
    title = [t for t in fig.findobj(Text) if t.get_text().replace("\n", " ") == LONG_TITLE]
    assert len(title) == 1
    for artist in (legend, title[0]):
        ext = artist.get_window_extent(renderer)
        assert box.x0 - 0.5 <= ext.x0 and ext.x1 <= box.x1 + 0.5, (artist, ext, box)
        assert box.y0 - 0.5 <= ext.y0 and ext.y1 <= box.y1 + 0.5, (artist, ext, box)
    assert len(legend.get_texts()) == 9  # every series once, not once per panel


def test_every_series_has_its_own_marker_and_line_style() -> None:
    fig = sweep_figure("styles", _lines(12))
    for ax in fig.axes:
        shown = [ln for ln in ax.get_lines() if not ln.get_label().startswith("_")]
        assert len(shown) == 12
        markers = [ln.get_marker() for ln in shown]
        styles = [ln.get_linestyle() for ln in shown]
        assert len(set(markers)) == 12
        pairs = list(zip(markers, styles, strict=True))
        assert len(set(pairs)) == len(pairs)
        assert len(set(styles)) > 1


def test_every_figure_is_png_pdf_and_svg(real_runs: RealRuns, tmp_path: Path) -> None:
    out = tmp_path / "r.md"
    result = CliRunner().invoke(
        cli, ["report", str(real_runs.lr19_a), str(real_runs.sweep), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    pngs = sorted((tmp_path / "r_files").glob("*.png"))
    assert len(pngs) == 2
    for png in pngs:
        dpi_x, dpi_y = png_dpi(png)
        assert dpi_x >= 199.9 and dpi_y >= 199.9
        assert png.with_suffix(".pdf").read_bytes().startswith(b"%PDF")
        assert b"<svg" in png.with_suffix(".svg").read_bytes()[:1000]
        assert f"({'r_files/' + png.stem}.pdf)" in out.read_text()


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href", "data") and value is not None:
                self.refs.append(value)


def test_html_report_is_self_contained(real_runs: RealRuns, tmp_path: Path) -> None:
    out = tmp_path / "page" / "r.html"
    result = CliRunner().invoke(
        cli, ["report", str(real_runs.lr19_a), str(real_runs.sweep), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    parser = _Refs()
    parser.feed(out.read_text())
    assert len(parser.refs) == 2
    assert all(ref.startswith("data:image/png;base64,") for ref in parser.refs)
    alone = tmp_path / "alone.html"  # still whole without the figures folder beside it
    alone.write_bytes(out.read_bytes())
    assert "r_files" not in alone.read_text()
