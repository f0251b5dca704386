"""`verify report` on real run documents (see test_report_inputs.py) via CliRunner."""

from __future__ import annotations

import base64
import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from matplotlib.image import imread

from robustprop.verify.cli.main import cli
from robustprop.verify.report import plots
from robustprop.verify.report.load import _unique_tails, load_runs
from robustprop.verify.report.model import sections
from robustprop.verify.report.plots import series
from tests.verify.test_report_inputs import RealRuns, load, real_runs

__all__ = ["real_runs"]  # the session fixture, imported so pytest sees it here

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def report(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, ["report", *map(str, args)])


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 1000, path
    pixels = imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert float(np.ptp(pixels)) > 0  # not a blank image


def markdown_images(text: str) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)


def test_markdown_report_tables_and_figures(real_runs: RealRuns, tmp_path: Path) -> None:
    out = tmp_path / "out" / "report.md"
    result = report(
        real_runs.lr19_a, real_runs.lr19_b, real_runs.unknown, real_runs.sweep, "-o", out
    )
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.stdout
    text = out.read_text()
    # LR L=19: the two networks side by side, labelled by the shortest distinct path tail
    assert "## 1. LR (Lipschitz robustness), L = 19, reference = output" in text
    acc = load(real_runs.lr19_a)["summary"]["accuracy"]
    row = f"| 0 / 1 / 0 | 0.000 | 0.000 | {acc:.3f} | +0.000 | {acc:+.3f} | none |"
    assert f"| baseline/golden.onnx | 0.1 | 1 {row}" in text
    assert f"| dl2/golden.onnx | 0.1 | 1 {row}" in text
    # LR L=20 with an unknown point: satisfaction is an interval, the reason is listed
    assert "| baseline/golden.onnx | 0.1 | 1 | 0 / 0 / 1 | \\[0.000, 1.000\\] |" in text
    reason = load(real_runs.unknown)["points"][0]["reason"]  # worker or pool: a race
    assert "time limit" in reason or "timeout" in reason, reason
    assert f"unknown: point 0 ({reason})" in text
    # CR sweep: one row per ε; at ε = 0.31 the solver refuted what PGD missed
    assert "| baseline/golden.onnx | 0.1 | 1 | 1 / 0 / 0 | 1.000 | 1.000 |" in text
    assert "| baseline/golden.onnx | 0.31 | 1 | 0 / 1 / 0 | 0.000 | 1.000 |" in text
    assert "| +1.000 | +0.000 | 0 |" in text  # security − sat. upper = 1, index 0 listed
    assert "refuted by the verifier, missed by PGD: point 0 (label 0): f(x') = \\[" in text
    images = markdown_images(text)
    assert len(images) == 3
    assert [Path(i).parent.name for i in images] == ["report_files"] * 3
    assert images[2].endswith("-vs-eps.png")
    for rel in images:
        assert_png(out.parent / rel)
    assert sorted(p.name for p in out.parent.iterdir()) == ["report.md", "report_files"]


def test_html_report_embeds_its_figures(real_runs: RealRuns, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    result = report(real_runs.lr19_a, real_runs.lr19_b, "-o", out)
    assert result.exit_code == 0, result.output

    class Collect(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.images: list[str] = []
            self.cells: list[str] = []
            self._in_cell = False

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag == "img":
                self.images.append(dict(attrs)["src"] or "")
            self._in_cell = tag == "td"

        def handle_data(self, data: str) -> None:
            if self._in_cell:
                self.cells.append(data)
                self._in_cell = False

    parser = Collect()
    parser.feed(out.read_text())
    (image,) = parser.images  # embedded: the page needs no file beside it
    assert image.startswith("data:image/png;base64,")
    assert (
        base64.b64decode(image.split(",", 1)[1])
        == (tmp_path / "r_files" / "01-lr-networks.png").read_bytes()
    )
    assert_png(tmp_path / "r_files" / "01-lr-networks.png")
    assert parser.cells[:5] == ["baseline/golden.onnx", "0.1", "1", "0 / 1 / 0", "0.000"]
    assert "dl2/golden.onnx" in parser.cells


def test_sweep_draws_metric_vs_eps_per_network(real_runs: RealRuns, tmp_path: Path) -> None:
    runs = load_runs([real_runs.sweep, real_runs.lr19_a])
    (cr,) = [s for s in sections(runs) if s.prop == "cr"]
    assert cr.is_sweep and cr.eps_values == (0.1, 0.31, 0.35)
    (line,) = series(cr)
    assert line.label == "golden.onnx"
    assert line.eps == (0.1, 0.31, 0.35)
    assert line.sat_lo == (1.0, 0.0, 0.0) and line.sat_hi == (1.0, 0.0, 0.0)
    assert line.security[:2] == (1.0, 1.0)  # PGD without steps misses ε = 0.31
    out = tmp_path / "sweep.md"
    result = report(real_runs.sweep, "-o", out)
    assert result.exit_code == 0, result.output
    (figure,) = markdown_images(out.read_text())
    assert figure == "sweep_files/01-cr-vs-eps.png"
    assert_png(tmp_path / figure)


def test_label_by_file(real_runs: RealRuns, tmp_path: Path) -> None:
    result = report(
        real_runs.lr19_a, real_runs.lr19_b, "--label-by", "file", "-o", tmp_path / "r.md"
    )
    assert result.exit_code == 0, result.output
    text = (tmp_path / "r.md").read_text()
    assert "| lr19\\_baseline | 0.1 |" in text and "| lr19\\_dl2 | 0.1 |" in text


def test_rerun_replaces_report_and_figures(real_runs: RealRuns, tmp_path: Path) -> None:
    out = tmp_path / "r.md"
    assert report(real_runs.sweep, "-o", out).exit_code == 0
    assert report(real_runs.lr19_a, "-o", out).exit_code == 0
    figures = sorted(p.name for p in (tmp_path / "r_files").iterdir())
    assert figures == [  # the sweep's figures are gone; the marker: ours to replace
        ".robustprop-report",
        "01-lr-networks.pdf",
        "01-lr-networks.png",
        "01-lr-networks.svg",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.md", "r_files"]


def test_report_junit_option(real_runs: RealRuns, tmp_path: Path) -> None:
    xml = tmp_path / "j.xml"
    result = report(real_runs.sweep, "-o", tmp_path / "r.md", "--junit", xml)
    assert result.exit_code == 0, result.output
    assert ET.parse(xml).getroot().get("tests") == "3"


def _malformed(real_runs: RealRuns, tmp_path: Path, case: str) -> Path:
    path = tmp_path / f"bad-{case}.json"
    doc = load(real_runs.lr19_a)
    if case == "not-json":
        path.write_text('{"tool": "robustprop", ')
        return path
    if case == "other-tool":
        doc["tool"] = "nnenum"
    elif case == "missing-summary":
        del doc["summary"]
    elif case == "bad-verdict":
        doc["points"][0]["verdict"] = "maybe"
    elif case == "counts-disagree":
        doc["summary"]["holds"] = 1
    elif case == "sweep-kind":
        doc = {"tool": "robustprop", "kind": "swept", "runs": [doc]}
    elif case == "sweep-entry":
        doc = {"tool": "robustprop", "kind": "sweep", "runs": [doc, 3]}
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize(
    ("case", "problem"),
    [
        ("not-json", "not valid JSON (line 1"),
        ("other-tool", "not a robustprop run document (tool: 'nnenum')"),
        ("missing-summary", ": summary: missing"),
        ("bad-verdict", ": points[0].verdict: unknown verdict 'maybe'"),
        ("counts-disagree", "holds/violated/unknown 1/1/0 do not match the points (0/1/0)"),
        ("sweep-kind", "unknown kind 'swept'"),
        ("sweep-entry", ": runs[1]: expected a JSON object"),
    ],
)
def test_malformed_input_is_exit_2_naming_the_file(
    real_runs: RealRuns, tmp_path: Path, case: str, problem: str
) -> None:
    bad = _malformed(real_runs, tmp_path, case)
    out = tmp_path / "out" / "report.md"
    result = report(real_runs.lr19_a, bad, "-o", out)
    assert result.exit_code == 2, result.output
    message = result.stderr.strip()
    assert "\n" not in message
    assert message.startswith(f"error: {bad}") and problem in message
    assert not out.parent.exists()  # nothing written, not even the folder


def test_missing_file_and_bad_suffix_are_exit_2(real_runs: RealRuns, tmp_path: Path) -> None:
    result = report(tmp_path / "nope.json", "-o", tmp_path / "r.md")
    assert result.exit_code == 2 and "nope.json: no such file" in result.stderr
    result = report(real_runs.lr19_a, "-o", tmp_path / "r.txt")
    assert result.exit_code == 2 and "must end in .md or .html" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_network_labels_are_the_shortest_distinct_tails() -> None:
    tails = _unique_tails(["runs/m.onnx", "runs/smoke/m.onnx", "x/base.onnx"])
    assert tails == {
        "runs/m.onnx": "runs/m.onnx",
        "runs/smoke/m.onnx": "smoke/m.onnx",
        "x/base.onnx": "base.onnx",
    }


def test_failure_midway_leaves_the_previous_report(
    real_runs: RealRuns, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "r.md"
    assert report(real_runs.lr19_a, "-o", out).exit_code == 0
    before = out.read_text(), (tmp_path / "r_files" / "01-lr-networks.png").read_bytes()

    def broken(path: Path, *args: object) -> None:
        path.write_bytes(b"half a figure")
        raise RuntimeError("disk full")

    monkeypatch.setattr(plots, "bar_plot", broken)
    result = report(real_runs.lr19_a, real_runs.lr19_b, "-o", out)
    assert result.exit_code == 3 and "disk full" in result.stderr
    after = out.read_text(), (tmp_path / "r_files" / "01-lr-networks.png").read_bytes()
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.md", "r_files"]


def test_invariant_breach_is_shown_loudly(real_runs: RealRuns, tmp_path: Path) -> None:
    doc = load(real_runs.lr19_a)  # deliberately inconsistent: a breach the run did not have
    doc["summary"]["invariant_breaches"] = ["point 0: proved holds, but PGD found a violation"]
    bad = tmp_path / "breach.json"
    bad.write_text(json.dumps(doc))
    for name in ("r.md", "r.html"):
        result = report(bad, "-o", tmp_path / name)
        assert result.exit_code == 0, result.output
        text = (tmp_path / name).read_text()
        assert "Warning: 1 run broke an invariant of the metrics" in text
        assert "invariant breach (a bug, please report): point 0: proved holds" in text
