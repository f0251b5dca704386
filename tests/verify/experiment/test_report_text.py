"""The experiment report's text: verdicts in plain words, the paper's own disagreements,
the regimes beyond the paper in their own table, and a self-contained HTML page."""

from __future__ import annotations

import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from robustprop.verify.experiment import grid as grid_module
from robustprop.verify.experiment import pipeline
from robustprop.verify.experiment.claims import (
    check_claims,
    paper_disagreements,
    verdict_summary,
)
from robustprop.verify.experiment.grid import PAPER_ACCURACY, REGIMES, RegimeSpec, TrainedNet
from robustprop.verify.experiment.html_page import html_page
from robustprop.verify.experiment.measure import Row
from robustprop.verify.experiment.report import ReportInput, write_report

GOLDEN = Path(__file__).parent.parent / "golden"
CERTIFIED = RegimeSpec("certified-ibp", "Certified training (IBP)", "constraint", "pgd", "sr")


def _row(regime: str, prop: str, security: float, accuracy: float = 1.0) -> Row:
    return Row("ds", regime, prop, 0.1, 10, security, accuracy, None, None, None, {}, 0.0)


def _cert(regime: str, prop: str) -> Row:
    return Row("ds", regime, prop, 0.1, 10, 0.3, 0.9, 2, 7, 1, {"attack": 7, "milp": 3}, 1.0)


def test_plain_words_name_what_holds_and_what_does_not() -> None:
    rows = [
        _row("constraint-lr", "sr", 0.9),
        _row("constraint-sr", "sr", 0.7),
        _row("constraint-lr", "lr", 0.3),
        _row("constraint-sr", "lr", 0.1),
        _row("constraint-scr", "sr", 0.9),  # E2: SCR training beats SR training on SR
        _row("constraint-sr", "scr", 0.9),
        _row("constraint-scr", "scr", 0.5),
    ]
    (line,) = verdict_summary(check_claims(rows, ["ds"]))
    assert line.startswith("- **ds** — hold: E1")
    assert "do not hold: E2" in line
    assert "were not measured: E3" in line


def test_disagreements_quote_the_paper_and_our_numbers() -> None:
    rows = [_row("baseline", "sr", 0.5, accuracy=0.93), _row("baseline", "scr", 0.5, 0.91)]
    text = paper_disagreements(rows, ["ds"], PAPER_ACCURACY)
    assert any("11% drop" in t and "88.2 → 85.1 (3.1 points, 3.5% relative)" in t for t in text)
    assert any("92.4 → 83.5 (8.9 points, 9.6% relative)" in t for t in text)
    assert any(
        "lowest we measure on ds over every network and ε: SR 0.930, SCR 0.910" in t for t in text
    )


def test_beyond_cells_come_after_the_papers_and_table2_is_unchanged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = pipeline.ExperimentConfig(datasets=("fashion-mnist",), bigger=())
    monkeypatch.setattr(grid_module, "BEYOND", (), raising=False)
    before = pipeline.cells(config)
    monkeypatch.setattr(grid_module, "BEYOND", (CERTIFIED,), raising=False)
    after = pipeline.cells(config)
    assert after[: len(before)] == before and [s for _, s in before] == list(REGIMES)
    assert after[len(before) :] == [("fashion-mnist", CERTIFIED)]
    only = pipeline.ExperimentConfig(datasets=("fashion-mnist",), regimes=("certified-ibp",))
    assert pipeline.cells(only) == [("fashion-mnist", CERTIFIED)]


def test_report_has_a_beyond_table_and_a_self_contained_page(tmp_path: Path) -> None:
    net = tmp_path / "golden.onnx"
    shutil.copy(GOLDEN / "golden.onnx", net)
    nets = [TrainedNet(spec, "ds", net, 0.85, 100, 1, 1.0, True) for spec in REGIMES[:2]]
    extra = [TrainedNet(CERTIFIED, "ds", net, 0.8, 100, 1, 1.0, True)]
    curves = [_row(s.key, a, 0.5) for s in REGIMES[:2] for a in ("sr", "lr", "scr")]
    certified = [_cert("baseline", "sr"), _cert("certified-ibp", "sr")]
    data = ReportInput(
        nets, curves, certified, check_claims(curves, ["ds"]), {"command": "x"}, 1.0, extra
    )
    path = write_report(tmp_path / "out", data)
    text = path.read_text()
    table2 = text.split("## Table 2")[1].split("##")[0]
    assert "Certified training" not in table2
    beyond = text.split("## Beyond the paper")[1].split("\n## ")[0]
    assert (
        "| ds | Certified training (IBP) | 80.0 | SR | 0.1 | 2 / 7 / 1 | [0.200, 0.300] |" in beyond
    )
    certified_part = text.split("## Certified satisfaction")[1].split("\n## ")[0]
    assert "Certified training" not in certified_part and "| 0.90 |" in certified_part
    assert "### In plain words" in text and "### Where the paper disagrees with itself" in text
    assert (tmp_path / "out" / "beyond.csv").read_text().count("certified-ibp") == 1
    assert "certified-ibp" not in (tmp_path / "out" / "table2.csv").read_text()
    for png in (tmp_path / "out" / "figures").glob("*.png"):
        assert png.with_suffix(".pdf").is_file() and png.with_suffix(".svg").is_file()

    class Refs(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.refs: list[str] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.refs += [v or "" for k, v in attrs if k in ("src", "href")]

    page = (tmp_path / "out" / "report.html").read_text()
    parser = Refs()
    parser.feed(page)
    assert parser.refs and all(r.startswith("data:image/png;base64,") for r in parser.refs)
    assert "<h2>Beyond the paper</h2>" in page and "<table>" in page


def test_html_page_escapes_and_embeds(tmp_path: Path) -> None:
    (tmp_path / "f.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    md = "\n".join(
        [
            "# Title <b>",
            "",
            "a \\| b and \\*not italic\\* and **bold** and `x<y`",
            "#not-a-heading",
            "",
            "| a | b \\| c |",
            "|---|---:|",
            "| <script> | 1 |",
            "",
            "- item [PDF](f.pdf)",
            "",
            "![cap](f.png)",
        ]
    )
    page = html_page(md, tmp_path)
    assert "<title>Title &lt;b&gt;</title>" in page
    assert "a | b and *not italic* and <strong>bold</strong> and <code>x&lt;y</code>" in page
    assert "#not-a-heading" in page
    assert "<th>b | c</th>" in page and '<td class="num">1</td>' in page
    assert "&lt;script&gt;" in page and "<script>" not in page
    assert "<li>item PDF</li>" in page and "f.pdf" not in page
    assert 'src="data:image/png;base64,' in page


def test_table2_explains_gtsrb_s_test_set_and_only_there(tmp_path: Path) -> None:
    """Under Table 2, a GTSRB column comes with why it sits below the paper's (the official
    test set vs a frame-level split) and where the evidence is; a grid without GTSRB does not."""
    net = tmp_path / "golden.onnx"
    shutil.copy(GOLDEN / "golden.onnx", net)
    curves = [_row(s.key, a, 0.5) for s in REGIMES[:2] for a in ("sr", "lr", "scr")]

    def table2(dataset: str) -> str:
        nets = [TrainedNet(spec, dataset, net, 0.83, 100, 1, 1.0, True) for spec in REGIMES[:2]]
        data = ReportInput(nets, curves, [], [], {"command": "x"}, 1.0)
        text = write_report(tmp_path / dataset, data).read_text()
        return text.split("## Table 2")[1].split("\n## ")[0]

    assert "results/gtsrb-split/README.md" in table2("gtsrb")
    assert "official test set" in table2("gtsrb")
    assert "gtsrb-split" not in table2("fashion-mnist")
    assert (Path(__file__).parents[3] / "results" / "gtsrb-split" / "run.py").is_file()


def test_a_decided_share_just_below_a_goal_never_prints_as_reaching_it() -> None:
    """The report's decided share is rounded down: 22175 of 22400 (98.996 %) is 98.99."""
    from robustprop.verify.experiment.report import _floor_percent

    assert _floor_percent(22175, 22400) == "98.99"
    assert _floor_percent(22400, 22400) == "100.00"
    assert _floor_percent(1, 3) == "33.33"
    assert _floor_percent(0, 0) == "0.00"
