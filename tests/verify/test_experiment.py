"""`verify experiment --quick` end to end (real training, attacks and solvers, toy size)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from robustprop.verify.cli.main import cli
from robustprop.verify.experiment.grid import BIGGER, REGIMES
from robustprop.verify.experiment.measure import Measure, measure_all, read_cache, write_cache
from robustprop.verify.experiment.pipeline import beyond


def _quick(tmp: Path, *extra: str) -> Result:
    args = ["experiment", "--quick", "-o", str(tmp / "results"), "--work-dir", str(tmp / "work")]
    return CliRunner().invoke(cli, [*args, *extra])


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Result, Result]:
    tmp = tmp_path_factory.mktemp("experiment")
    first = _quick(tmp)
    for name in ("curves.csv", "certified.csv", "table2.csv"):
        (tmp / f"first-{name}").write_bytes((tmp / "results" / name).read_bytes())
    second = _quick(tmp, "--jobs", "2")  # in a process pool: reuses all the same
    return tmp, first, second


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_quick_writes_the_report_tables_and_figures(quick_run: tuple[Path, Result, Result]) -> None:
    tmp, first, _ = quick_run
    assert first.exit_code == 0, first.output
    out = tmp / "results"
    report = (out / "report.md").read_text()
    for spec in REGIMES:
        assert spec.label in report
    for claim in ("| E1 |", "| E2 |", "| E3 |", "| E4 |"):
        assert claim in report
    assert "hardware:" in report and "compute: training" in report
    table2 = _csv(out / "table2.csv")
    gtsrb = {r["regime"]: r for r in table2 if r["dataset"] == "gtsrb"}
    assert set(gtsrb) == {s.key for s in REGIMES}
    assert gtsrb["baseline"]["paper_pct"] == "92.4"
    curves = _csv(out / "curves.csv")
    assert {r["property"] for r in curves} == {"sr", "lr", "scr"}
    assert all(0.0 <= float(r["security"]) <= 1.0 for r in curves)
    pngs = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert "gtsrb-sr-attack.png" in pngs and "fashion-mnist-slice-bigger-network.png" in pngs
    for name in pngs:
        png = out / "figures" / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png.with_suffix(".pdf").is_file() and png.with_suffix(".svg").is_file()
    assert "### In plain words" in report and "## Lipschitz robustness" in report
    page = (out / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == len(pngs)
    assert "href=" not in page and 'src="figures' not in page
    if beyond():
        assert "## Beyond the paper" in report


def test_certified_satisfaction_never_exceeds_security(
    quick_run: tuple[Path, Result, Result],
) -> None:
    """Sound: a point PGD breaks (replayed) can never be certified."""
    tmp, first, _ = quick_run
    assert first.exit_code == 0, first.output
    rows = _csv(tmp / "results" / "certified.csv")
    assert rows
    for r in rows:
        holds, violated, unknown = int(r["holds"]), int(r["violated"]), int(r["unknown"])
        assert holds + violated + unknown == int(r["points"])
        assert float(r["satisfaction_hi"]) <= float(r["security"]) + 1e-9
        assert r["stages"]


def test_a_rerun_reuses_networks_and_measurements(quick_run: tuple[Path, Result, Result]) -> None:
    tmp, _, second = quick_run
    assert second.exit_code == 0, second.output
    assert "training" not in second.stderr
    n = 2 * (len(REGIMES) + len(beyond())) + len(BIGGER)
    assert second.stderr.count("reusing") == n  # 7 + 3 bigger + 7, and the beyond cells
    assert "2 at a time" in second.stderr
    assert "(cached)" in second.stderr and " s)" not in second.stderr.replace("(cached)", "")
    for name in ("curves.csv", "certified.csv"):
        again = _csv(tmp / "results" / name)
        first_rows = _csv(tmp / f"first-{name}")
        assert again == first_rows and again


@pytest.mark.parametrize(
    ("args", "culprit"),
    [
        (["--datasets", "mnist"], "mnist"),
        (["--cert-eps", "2"], "2"),
        (["--eps", "0.1,x"], "--eps"),
        (["--epochs", "0"], "--epochs"),
        (["--cert-props", "sr,xr"], "xr"),
        (["--bigger", "gtsrb", "--datasets", "fashion-mnist"], "gtsrb"),
        (["--regimes", "baseline,nope"], "nope"),
        (["--jobs", "0"], "--jobs"),
    ],
)
def test_bad_input_exits_2_naming_the_value(tmp_path: Path, args: list[str], culprit: str) -> None:
    out = tmp_path / "results"
    result = CliRunner().invoke(cli, ["experiment", "-o", str(out), *args])
    assert result.exit_code == 2, result.output
    assert culprit in result.stderr and "Traceback" not in result.output
    assert not out.exists()


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--epochs", "5"], ["--epochs"]),
        (["--datasets", "gtsrb", "--points", "3"], ["--data", "--points"]),
        (["--epochs", "100", "--device", "cpu"], ["--epochs", "--device"]),  # even the defaults
    ],
)
def test_quick_refuses_the_flags_it_would_ignore(
    tmp_path: Path, extra: list[str], named: list[str]
) -> None:
    result = _quick(tmp_path, *extra)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: --quick") and len(result.stderr.splitlines()) == 1
    assert all(flag in result.stderr for flag in named)
    assert "--work-dir" not in result.stderr and "--out" not in result.stderr
    assert not (tmp_path / "results").exists() and not (tmp_path / "work").exists()


def test_out_must_be_a_folder(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("keep")
    result = CliRunner().invoke(cli, ["experiment", "--quick", "-o", str(target)])
    assert result.exit_code == 2 and str(target) in result.stderr
    assert target.read_text() == "keep"


def test_an_interrupted_measurement_run_keeps_what_it_finished(tmp_path: Path) -> None:
    """Each measurement is cached when done: a stop after two keeps those two."""
    golden = Path(__file__).parent / "golden"
    net = tmp_path / "golden.onnx"
    shutil.copy(golden / "golden.onnx", net)
    measures = [
        Measure(p, e, 5, ("security", "accuracy"), "paper", 10)
        for p in ("sr", "lr")
        for e in (0.05, 0.1)
    ]
    seen: list[str] = []

    def stop_after_two(line: str) -> None:
        seen.append(line)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        measure_all(
            net, "golden", "baseline", measures, data=str(golden / "golden.npz"), say=stop_after_two
        )
    assert len(read_cache(net)) == 2
    lines: list[str] = []
    rows = measure_all(
        net, "golden", "baseline", measures, data=str(golden / "golden.npz"), say=lines.append
    )
    assert [line.endswith("(cached)") for line in lines] == [True, True, False, False]
    assert len(read_cache(net)) == 4 and len(rows) == 4


def test_two_runs_on_one_network_keep_each_others_measurements(tmp_path: Path) -> None:
    """Each run holds the cache it read; a write merges what the other run wrote since."""
    net = tmp_path / "golden.onnx"
    shutil.copy(Path(__file__).parent / "golden" / "golden.onnx", net)
    first, second = read_cache(net), read_cache(net)
    first["a"] = {"from": "first"}
    write_cache(net, first)
    second["b"] = {"from": "second"}
    write_cache(net, second)
    assert read_cache(net) == {"a": {"from": "first"}, "b": {"from": "second"}}
    assert second == read_cache(net)


def test_a_malformed_cached_row_is_measured_again(tmp_path: Path) -> None:
    """An eval.json is a file anyone may edit: a cached value that is not a row (wrong
    fields, not an object) is measured again instead of ending the run in a traceback; a
    well-formed row is reused."""
    from dataclasses import asdict

    from robustprop.verify.experiment.measure import Row, digest, measure

    golden = Path(__file__).parent / "golden"
    net = tmp_path / "golden.onnx"
    shutil.copy(golden / "golden.onnx", net)
    m = Measure("sr", 0.05, 5, ("security", "accuracy"), "paper", 10)
    key = m.key(digest(net))
    good = asdict(Row("golden", "baseline", "sr", 0.05, 5, 0.5, 0.5, None, None, None, {}, 1.0))

    def reused(value: object) -> bool:
        cache = {key: value}
        row, was_reused = measure(net, "golden", "baseline", m, data=str(golden / "golden.npz"),
                                  cache=cache)  # fmt: skip
        assert isinstance(row, Row)
        assert isinstance(cache[key], dict) and "surprise" not in cache[key]
        return was_reused

    assert reused(good)
    assert not reused({**good, "surprise": 1})
    assert not reused({"prop": "sr"})
    assert not reused("not a row")
