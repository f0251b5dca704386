"""JUnit XML from real run documents: it parses, and its counts match the JSON."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from robustprop.properties.errors import InputError
from robustprop.verify.cli.main import cli
from robustprop.verify.cli.run import command as run_command
from robustprop.verify.report.junit import write_junit
from tests.verify.test_report_inputs import GOLDEN, RealRuns, load, real_runs

__all__ = ["real_runs"]  # the session fixture, imported so pytest sees it here


def run_documents(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return list(doc["runs"]) if doc.get("kind") == "sweep" else [doc]


def check_counts(root: ET.Element, documents: list[dict[str, Any]]) -> None:
    """Every count attribute equals what the cases say and what the JSON says."""
    runs = [r for d in documents for r in run_documents(d)]
    suites = root.findall("testsuite")
    assert root.tag == "testsuites" and len(suites) == len(runs)
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    for suite, run in zip(suites, runs, strict=True):
        cases = suite.findall("testcase")
        counted = {
            "tests": len(cases),
            "failures": sum(c.find("failure") is not None for c in cases),
            "errors": sum(c.find("error") is not None for c in cases),
            "skipped": sum(c.find("skipped") is not None for c in cases),
        }
        assert {k: int(suite.get(k, "-1")) for k in counted} == counted
        s = run["summary"]
        n_breach = len(s["invariant_breaches"])
        assert counted["tests"] == s["points"] + (1 if n_breach else 0)
        assert counted["errors"] == (1 if n_breach else 0)
        if "satisfaction" in run["metrics"]:
            assert counted["failures"] == s["violated"]
            assert counted["skipped"] == s["unknown"]
        for key in totals:
            totals[key] += counted[key]
    assert {k: int(root.get(k, "-1")) for k in totals} == totals


def test_junit_counts_match_the_json(real_runs: RealRuns, tmp_path: Path) -> None:
    docs = [load(p) for p in (real_runs.lr19_a, real_runs.unknown, real_runs.sweep)]
    out = tmp_path / "results.xml"
    write_junit(out, docs)
    root = ET.parse(out).getroot()
    check_counts(root, docs)
    assert root.get("tests") == "5" and root.get("failures") == "3"
    assert root.get("skipped") == "1" and root.get("errors") == "0"

    first = root.findall("testsuite")[0]
    assert first.get("name") == f"LR (eps=0.1, reference=output, lipschitz=19) on {real_runs.net_a}"
    (case,) = first.findall("testcase")
    assert case.get("name") == "point 0 (LR eps=0.1)"
    assert case.get("classname") == str(real_runs.net_a)
    assert float(case.get("time", "-1")) == pytest.approx(
        load(real_runs.lr19_a)["points"][0]["time_s"], abs=1e-6
    )
    failure = case.find("failure")
    assert failure is not None and failure.get("type") == "violated"
    assert "violated at point 0, label 0, found by attack (pgd): f(x') = [" in failure.get(
        "message", ""
    )
    assert "witness x' = [" in (failure.text or "")

    unknown = root.findall("testsuite")[1].find("testcase/skipped")
    assert unknown is not None
    # the worker's "not tried, time limit reached" or the pool's "timeout after …": a race
    reason = load(real_runs.unknown)["points"][0]["reason"]
    assert "time limit" in reason or "timeout" in reason, reason
    assert unknown.get("message") == f"unknown at point 0, label 0: {reason}"
    sweep_names = [c.get("name") for c in root.findall("testsuite")[2:] for c in c.iter("testcase")]
    assert sweep_names == ["point 0 (CR eps=0.1)", "point 0 (CR eps=0.31)", "point 0 (CR eps=0.35)"]


def test_junit_accepts_a_sweep_document_whole(real_runs: RealRuns, tmp_path: Path) -> None:
    doc = load(real_runs.sweep)
    write_junit(tmp_path / "a.xml", [doc])
    write_junit(tmp_path / "b.xml", doc["runs"])
    assert (tmp_path / "a.xml").read_bytes() == (tmp_path / "b.xml").read_bytes()
    check_counts(ET.parse(tmp_path / "a.xml").getroot(), [doc])


def test_without_verdicts_the_attack_decides(real_runs: RealRuns, tmp_path: Path) -> None:
    doc = load(real_runs.security_only)
    write_junit(tmp_path / "r.xml", [doc])
    root = ET.parse(tmp_path / "r.xml").getroot()
    check_counts(root, [doc])
    failure = root.find("testsuite/testcase/failure")
    assert failure is not None and failure.get("type") == "attack"
    assert "PGD found a counterexample" in failure.get("message", "")


def test_invariant_breach_is_an_error_case(real_runs: RealRuns, tmp_path: Path) -> None:
    doc = load(real_runs.lr19_a)  # deliberately inconsistent: a breach the run did not have
    doc["summary"]["invariant_breaches"] = ["point 0: proved holds, but PGD found a violation"]
    write_junit(tmp_path / "r.xml", [doc])
    root = ET.parse(tmp_path / "r.xml").getroot()
    check_counts(root, [doc])
    error = root.find("testsuite/testcase[@name='invariants']/error")
    assert error is not None and "a bug" in error.get("message", "")


def test_not_a_run_document_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"<document 0>: not a robustprop run document"):
        write_junit(tmp_path / "r.xml", [{"tool": "other"}])
    assert list(tmp_path.iterdir()) == []


def test_verify_run_junit_matches_its_json(real_runs: RealRuns, tmp_path: Path) -> None:
    """The run command's --junit goes through write_junit with its own documents."""
    if not any("--junit" in p.opts for p in run_command.params):
        pytest.skip("verify run has no --junit yet")
    json_out, xml_out = tmp_path / "r.json", tmp_path / "r.xml"
    args = ["run", "--property", "lr", "--lipschitz", "19", "--eps", "0.1,0.05"]
    args += ["--net", str(real_runs.net_a), "--data", str(GOLDEN / "golden.npz")]
    args += ["--points", "1", "--samples", "20", "--no-progress"]
    args += ["--json", str(json_out), "--junit", str(xml_out)]
    if any("--no-cache" in p.opts for p in run_command.params):
        args.append("--no-cache")
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    check_counts(ET.parse(xml_out).getroot(), [load(json_out)])
