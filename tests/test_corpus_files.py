"""The resource-limit and hostile-name part of the bad-input corpus (tests/test_corpus.py).

The files come from ``tests/corpus/make_limits_corpus.py``: each is a few kB but claims
gigabytes, nests JSON thousands deep, or carries names with terminal control sequences and
Markdown syntax. Every bad one ends in one clear line, exit 2, nothing written, no control
character echoed; the good ones (an unused huge member, hostile names) just work.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from robustprop.verify.cli.main import cli
from tests.test_corpus import CORPUS, Case, _snapshot, check_failure, report_case, run_args

CASES: dict[str, Case] = {
    "data_claims_huge": Case(
        run_args("--data", "{c}/data_claims_huge.npz"),
        ("data_claims_huge.npz", "'x'", "MAX_NPZ_BYTES"),
    ),
    "data_object_labels": Case(
        run_args("--data", "{c}/data_object_labels.npz"),
        ("data_object_labels.npz", "'y' is an object array"),
    ),
    "report_deep": report_case("report_deep", "MAX_JSON_DEPTH"),
    "report_huge_integer": report_case("report_huge_integer", "not a readable JSON document"),
    "report_control_key": report_case("report_control_key", "params.\\x1b[2J\\x1b]0;pwned\\x07"),
}

_CONTROL = {chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)]} - {"\n"}


def _no_controls(text: str) -> None:
    assert not _CONTROL & set(text), f"control character echoed: {text!r}"


@pytest.mark.parametrize("name", list(CASES))
def test_bad_file(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    case = CASES[name]
    out = tmp_path / "out"
    out.mkdir()
    before = _snapshot(out)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, [a.format(c=CORPUS, o=out) for a in case.args])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    check_failure(result, case)
    _no_controls(result.stderr + result.stdout)
    assert _snapshot(out) == before, "the failed command left or changed files"


def test_unused_huge_member_does_not_stop_a_run(tmp_path: Path) -> None:
    args = run_args("--data", "{c}/data_unused_huge_key.npz")
    result = CliRunner().invoke(cli, [a.format(c=CORPUS, o=tmp_path) for a in args])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out.json").is_file()


@pytest.mark.parametrize("suffix", [".md", ".html"])
def test_hostile_names_make_a_report(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"report{suffix}"
    args = ["report", str(CORPUS / "report_hostile_names.json"), "-o", str(out)]
    result = CliRunner().invoke(cli, [*args, "--junit", str(tmp_path / "r.xml")])
    assert result.exit_code == 0, result.output
    _no_controls(result.stdout + result.stderr)
    text = out.read_text(encoding="utf-8")
    _no_controls(text.replace("\n", ""))
    shown = {".md": "\\\\x1b\\[2J", ".html": "\\x1b[2J"}[suffix]  # ESC [2J, escaped and visible
    assert shown in text
    assert (tmp_path / "report_files" / "01-cr-networks.png").stat().st_size > 1000


def test_hostile_names_make_valid_junit_xml(tmp_path: Path) -> None:
    xml = tmp_path / "r.xml"
    args = ["report", str(CORPUS / "report_hostile_names.json"), "-o", str(tmp_path / "r.md")]
    result = CliRunner().invoke(cli, [*args, "--junit", str(xml)])
    assert result.exit_code == 0, result.output
    ET.parse(xml)
