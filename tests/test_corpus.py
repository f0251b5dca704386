"""The bad-input corpus: every wrong input ends in one clear line and the right exit code.

Each case feeds the CLI one wrong thing (a file of ``tests/corpus/``, written by
``make_corpus.py`` beside it, or a wrong option value) and checks that

- the exit code is 2 (bad input) or 3 (internal fault), never 0/1 and never a crash;
- the last line on stderr names the culprit (file, option or value), and stderr holds no
  traceback (``--debug`` is what shows one);
- no output file is left behind: the output folder is exactly as it was before the run.

Most cases run in-process through click's ``CliRunner``; ``test_console_*`` run a few through
the real console script to prove the process-level behaviour (stderr, exit status).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from robustprop.verify.cli.main import cli

CORPUS = Path(__file__).parent / "corpus"
NET = CORPUS / "ok.onnx"
DATA = CORPUS / "ok.npz"


@dataclass(frozen=True)
class Case:
    """One bad input: the CLI arguments, the exit code and what the message must name.

    ``{c}`` in an argument is the corpus folder, ``{o}`` the (empty) output folder.
    ``setup`` names a fixture-like step that prepares ``{o}`` (see :func:`_setup`).
    """

    args: tuple[str, ...]
    names: tuple[str, ...]
    code: int = 2
    setup: str = ""


def run_args(*extra: str, prop: str = "cr", net: str = "{c}/ok.onnx") -> tuple[str, ...]:
    """``verify run`` on a good net and data with quick settings; ``extra`` overrides."""
    base = (
        "run", "--property", prop, "--net", net, "--data", "{c}/ok.npz", "--points", "2",
        "--metrics", "satisfaction", "--backend", "z3", "--timeout", "5", "--no-progress",
        "--store", "{o}/store.sqlite", "--json", "{o}/out.json", "--junit", "{o}/out.xml",
    )  # fmt: skip
    return base + extra


def net_case(name: str, *names: str, code: int = 2) -> Case:
    return Case(run_args(net=f"{{c}}/{name}.onnx"), (f"{name}.onnx", *names), code)


def data_case(name: str, *names: str, extra: tuple[str, ...] = ()) -> Case:
    return Case(run_args("--data", f"{{c}}/{name}.npz", *extra), (f"{name}.npz", *names))


def vnnlib_case(spec: str, *names: str, net: str = "ok") -> Case:
    args = ("vnnlib", "--net", f"{{c}}/{net}.onnx", "--spec", f"{{c}}/{spec}.vnnlib")
    return Case((*args, "--backend", "z3", "--timeout", "5"), (f"{spec}.vnnlib", *names))


def export_case(ckpt: str, *names: str) -> Case:
    args = ("export", f"{{c}}/{ckpt}.ckpt", "-o", "{o}/m.onnx", "--dataset", "{c}/ok.npz")
    return Case(args, (f"{ckpt}.ckpt", *names))


def train_args(*extra: str) -> tuple[str, ...]:
    return (
        "train",
        "--dataset",
        "{c}/ok.npz",
        "--regime",
        "constraint",
        "-o",
        "{o}/m.onnx",
        *extra,
    )


def report_case(name: str, *names: str) -> Case:
    args = ("report", f"{{c}}/{name}.json", "-o", "{o}/report.md", "--junit", "{o}/r.xml")
    return Case(args, (f"{name}.json", *names))


CASES: dict[str, Case] = {
    # -- ONNX files ---------------------------------------------------------------------------
    "onnx_truncated": net_case("truncated", "not a readable ONNX model"),
    "onnx_garbage": net_case("garbage", "not a readable ONNX model"),
    "onnx_empty": net_case("empty", "not a readable ONNX model"),
    "onnx_text": net_case("text", "not a readable ONNX model"),
    "onnx_softmax_inside": net_case("softmax_inside", "Softmax", "softmax_1"),
    "onnx_sigmoid": net_case("sigmoid", "Sigmoid", "sigmoid_1"),
    "onnx_maxpool": net_case("maxpool", "MaxPool", "maxpool_1"),
    "onnx_lstm": net_case("lstm", "LSTM", "lstm_1"),
    "onnx_custom_domain_op": net_case("custom_domain_op", "com.example.FancyRelu"),
    "onnx_dynamic_features": net_case("dynamic_features", "symbolic dimension", "features"),
    "onnx_mismatched_shapes": net_case("mismatched_shapes", "matmul_1"),
    "onnx_two_inputs": net_case("two_inputs", "exactly one real", "'bias'"),
    "onnx_two_outputs": net_case("two_outputs", "exactly one output", "'r'"),
    "onnx_nan_weights": net_case("nan_weights", "W2", "non-finite"),
    "onnx_inf_weights": net_case("inf_weights", "W1", "non-finite"),
    "onnx_integer_input": net_case("integer_input", "'input'", "element type"),
    "onnx_clip_min_above_max": net_case("clip_min_above_max", "Clip min", "'clip'"),
    "onnx_bad_domain_metadata": net_case("bad_domain_metadata", "domain"),
    "onnx_no_metadata_no_data": Case(
        ("run", "--property", "cr", "--net", "{c}/no_metadata.onnx", "--json", "{o}/out.json"),
        ("--data is needed", "no_metadata.onnx"),
    ),
    "onnx_missing_file": Case(run_args("--net", "{c}/absent.onnx"), ("--net", "absent.onnx")),
    "onnx_is_a_directory": Case(run_args("--net", "{c}"), ("--net", "no such file")),
    "net_data_size_mismatch": Case(
        run_args(net="{c}/four_inputs.onnx"), ("ok.npz", "2 features", "4 inputs")
    ),
    # -- data files -----------------------------------------------------------------------------
    "data_wrong_shape": data_case("data_wrong_shape", "5 features", "2 inputs"),
    "data_int_features": data_case("data_int_features", "dtype int32"),
    "data_nan": data_case("data_nan", "non-finite"),
    "data_label_negative": data_case("data_label_negative", "labels must lie in", "-1"),
    "data_label_above_classes": data_case("data_label_above_classes", "labels must lie in 0..2"),
    "data_float_labels": data_case("data_float_labels", "integer labels"),
    "data_empty": data_case("data_empty", "empty"),
    "data_count_mismatch": data_case("data_count_mismatch", "3 samples", "2 labels"),
    "data_out_of_unit_box": data_case("data_out_of_unit_box", "[0, 1]"),
    "data_missing_y": data_case("data_missing_y", "'y'"),
    "data_not_npz": data_case("data_not_npz", "not an .npz archive"),
    "data_label_beyond_outputs": Case(
        run_args("--data", "{c}/data_high_label.npz", "--reference", "label"),
        ("data_high_label.npz", "[0, 3)", "7"),
    ),
    "data_unknown_name": Case(run_args("--data", "mnist-digits"), ("unknown dataset",)),
    # -- parameters -----------------------------------------------------------------------------
    "eps_zero": Case(run_args("--eps", "0"), ("eps must be > 0", "0")),
    "eps_negative": Case(run_args("--eps", "-0.1"), ("eps must be > 0", "-0.1")),
    "eps_nan": Case(run_args("--eps", "nan"), ("eps", "nan")),
    "eps_not_a_number": Case(run_args("--eps", "0.1,abc"), ("--eps", "'abc'")),
    "eta_zero": Case(run_args("--eta", "0", prop="scr"), ("eta", "(0, 1)")),
    "eta_one": Case(run_args("--eta", "1", prop="scr"), ("eta", "(0, 1)")),
    "eta_above_one": Case(run_args("--eta", "1.5", prop="scr"), ("eta", "1.5")),
    "lipschitz_zero": Case(run_args("--lipschitz", "0", prop="lr"), ("lipschitz", "> 0")),
    "lipschitz_negative": Case(run_args("--lipschitz", "-2", prop="lr"), ("lipschitz", "-2")),
    "delta_negative": Case(run_args("--delta", "-1", prop="sr"), ("delta", "-1")),
    "delta_for_cr": Case(run_args("--delta", "1"), ("no parameter delta",)),
    "property_unknown": Case(run_args(prop="xr"), ("unknown property 'xr'",)),
    "backend_unknown": Case(run_args("--backend", "cvc5"), ("--backend", "'cvc5'")),
    "metric_unknown": Case(run_args("--metrics", "speed"), ("--metrics", "'speed'")),
    "points_zero": Case(run_args("--points", "0"), ("--points", "0")),
    "timeout_zero": Case(run_args("--timeout", "0"), ("--timeout", "0")),
    "tau_negative": Case(run_args("--tau", "-1"), ("--tau", "-1")),
    "jobs_zero": Case(run_args("--jobs", "0"), ("--jobs", "0")),
    "min_satisfaction_above_one": Case(
        run_args("--min-satisfaction", "2"), ("--min-satisfaction", "[0, 1]")
    ),
    # -- outputs and the store ------------------------------------------------------------------
    "json_under_a_file": Case(
        run_args("--json", "{o}/file/out.json"), ("--json", "file/out.json"), setup="file"
    ),
    "json_is_a_directory": Case(run_args("--json", "{o}/dir"), ("dir",), setup="dir"),
    "junit_under_a_file": Case(
        run_args("--junit", "{o}/file/out.xml"), ("--junit", "file/out.xml"), setup="file"
    ),
    "store_schema_99": Case(
        run_args("--store", "{o}/store.sqlite"), ("store.sqlite", "schema version 99"), setup="v99"
    ),
    "store_garbage": Case(
        run_args("--store", "{o}/store.sqlite"), ("store.sqlite", "SQLite"), setup="garbage"
    ),
    "store_under_a_file": Case(
        run_args("--store", "{o}/file/s.sqlite"), ("--store", "file/s.sqlite"), setup="file"
    ),
    "store_is_a_directory": Case(run_args("--store", "{o}/dir"), ("--store", "dir"), setup="dir"),
    "export_vnnlib_under_a_file": Case(
        run_args("--export-vnnlib", "{o}/file/vnn"), ("--export-vnnlib", "file/vnn"), setup="file"
    ),
    "export_vnnlib_for_scr": Case(
        run_args("--export-vnnlib", "{o}/vnn", prop="scr"), ("--export-vnnlib", "scr")
    ),
    "strategy_unknown": Case(run_args("--strategy", "fast"), ("--strategy", "'fast'")),
    # -- VNN-LIB --------------------------------------------------------------------------------
    "vnnlib_unbalanced": vnnlib_case("vnnlib_unbalanced", "unclosed '('"),
    "vnnlib_extra_paren": vnnlib_case("vnnlib_extra_paren", "unbalanced ')'"),
    "vnnlib_bad_number": vnnlib_case("vnnlib_bad_number", "'one'"),
    "vnnlib_input_out_of_range": vnnlib_case("vnnlib_input_out_of_range", "X_5", "out of range"),
    "vnnlib_output_out_of_range": vnnlib_case("vnnlib_output_out_of_range", "Y_9", "out of range"),
    "vnnlib_undeclared": vnnlib_case("vnnlib_undeclared", "Z_0"),
    "vnnlib_unbounded_input": vnnlib_case("vnnlib_unbounded_input", "X_0"),
    "vnnlib_unknown_command": vnnlib_case("vnnlib_unknown_command", "check-sat"),
    "vnnlib_binary": vnnlib_case("vnnlib_binary", "cannot read"),
    "vnnlib_missing_spec": vnnlib_case("absent", "absent.vnnlib"),
    "vnnlib_bad_net": Case(
        ("vnnlib", "--net", "{c}/sigmoid.onnx", "--spec", "{c}/ok.vnnlib"),
        ("sigmoid.onnx", "Sigmoid"),
    ),
    "vnnlib_timeout_zero": Case(
        ("vnnlib", "--net", "{c}/ok.onnx", "--spec", "{c}/ok.vnnlib", "--timeout", "0"),
        ("--timeout", "0"),
    ),
    # -- verify export --------------------------------------------------------------------------
    "ckpt_garbage": export_case("ckpt_garbage", "not a readable robustprop checkpoint"),
    "ckpt_truncated": export_case("ckpt_truncated", "not a readable robustprop checkpoint"),
    "ckpt_foreign_dict": export_case("ckpt_foreign_dict", "not a robustprop checkpoint"),
    "ckpt_wrong_version": export_case("ckpt_wrong_version", "version 99"),
    "ckpt_wrong_weights": export_case("ckpt_wrong_weights", "do not fit"),
    "ckpt_unknown_arch": export_case("ckpt_unknown_arch", "'transformer'"),
    "export_output_is_a_directory": Case(
        ("export", "{c}/ckpt_ok.ckpt", "-o", "{o}/dir", "--dataset", "{c}/ok.npz"),
        ("dir",),
        setup="dir",
    ),
    "ckpt_missing": export_case("absent", "absent.ckpt"),
    "ckpt_is_onnx": Case(
        ("export", "{c}/ok.onnx", "-o", "{o}/m.onnx", "--dataset", "{c}/ok.npz"),
        ("ok.onnx", "checkpoint"),
    ),
    # -- verify report --------------------------------------------------------------------------
    "export_output_under_a_file": Case(
        ("export", "{c}/ckpt_ok.ckpt", "-o", "{o}/file/m.onnx", "--dataset", "{c}/ok.npz"),
        ("file/m.onnx",),
        setup="file",
    ),
    "report_not_json": report_case("report_not_json", "JSON"),
    "report_truncated": report_case("report_truncated", "JSON"),
    "report_array": report_case("report_array", "expected a JSON object"),
    "report_wrong_verdict": report_case("report_wrong_verdict", "'maybe'"),
    "report_miscounted": report_case("report_miscounted", "do not match"),
    "report_no_points": report_case("report_no_points", "points", "missing"),
    "report_missing": report_case("absent", "absent.json"),
    "report_output_under_a_file": Case(
        ("report", "{c}/report_ok.json", "-o", "{o}/file/report.md"),
        ("-o", "file/report.md", "not a folder"),
        setup="file",
    ),
    "report_output_is_a_directory": Case(
        ("report", "{c}/report_ok.json", "-o", "{o}/dir.md"), ("-o", "dir.md"), setup="dir.md"
    ),
    "report_junit_under_a_file": Case(
        ("report", "{c}/report_ok.json", "-o", "{o}/report.md", "--junit", "{o}/file/r.xml"),
        ("--junit", "file/r.xml"),
        setup="file",
    ),
    "report_bad_suffix": Case(
        ("report", "{c}/report_ok.json", "-o", "{o}/report.pdf"), ("report.pdf", ".md or .html")
    ),
    # -- verify train ---------------------------------------------------------------------------
    "train_bad_data": Case(
        ("train", "--dataset", "{c}/data_nan.npz", "--regime", "baseline", "-o", "{o}/m.onnx"),
        ("data_nan.npz", "non-finite"),
    ),
    "train_eps_zero": Case(
        train_args("--property", "sr", "--eps", "0"),
        ("--eps", "0"),
    ),
    "train_eta_out_of_range": Case(
        train_args("--property", "scr", "--eta", "1.2"),
        ("eta", "1.2"),
    ),
}

# Known failures whose fix lies in verify/cmd_run.py or verify/runner.py (see each reason).
XFAIL: dict[str, str] = {}  # cases that still fail, with the fix they need


def _setup(kind: str, out: Path) -> None:
    """Prepare the output folder for a case (what the case's output paths run into)."""
    if kind == "file":
        (out / "file").write_text("a regular file, not a folder\n")
    elif kind in ("dir", "dir.md"):
        (out / kind).mkdir()
    elif kind == "v99":
        (out / "store.sqlite").write_bytes((CORPUS / "store_schema_99.sqlite").read_bytes())
    elif kind == "garbage":
        (out / "store.sqlite").write_bytes((CORPUS / "store_garbage.sqlite").read_bytes())


def _snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` with its content (``None`` for folders)."""
    return {
        str(p.relative_to(folder)): (None if p.is_dir() else p.read_bytes())
        for p in sorted(folder.rglob("*"))
    }


def check_failure(result: Result | subprocess.CompletedProcess[str], case: Case) -> str:
    """The asserts every case shares; returns the last line of stderr."""
    code = result.exit_code if isinstance(result, Result) else result.returncode
    stdout = result.stdout
    stderr = result.stderr
    assert code == case.code, f"exit {code}, stdout {stdout!r}, stderr {stderr!r}"
    assert "Traceback" not in stdout + stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines, "no message on stderr"
    last = lines[-1]
    assert last.startswith(("error: ", "Error: ", "internal error: ")), last
    for name in case.names:
        assert name in last, f"{name!r} not named in {last!r}"
    # A one-line message: anything before it is click's usage text or a log line.
    for line in lines[:-1]:
        assert line.startswith(("Usage:", "Try ", "WARNING ", "ERROR ")), line
    return last


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=XFAIL[n])) if n in XFAIL else n
        for n in CASES
    ],
)
def test_bad_input(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    case = CASES[name]
    out = tmp_path / "out"
    out.mkdir()
    _setup(case.setup, out)
    before = _snapshot(out)
    monkeypatch.chdir(tmp_path)
    args = [a.format(c=CORPUS, o=out) for a in case.args]
    result = CliRunner().invoke(cli, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    check_failure(result, case)
    assert _snapshot(out) == before, "the failed command left or changed files"


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 30
    assert (CORPUS / "make_corpus.py").is_file()


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    args = [a.format(c=CORPUS, o=tmp_path) for a in CASES["onnx_sigmoid"].args]
    result = CliRunner().invoke(cli, ["--debug", *args])
    assert result.exit_code == 2
    assert "Traceback" in result.stderr and "Sigmoid" in result.stderr.splitlines()[-1]


# -- the real console script ------------------------------------------------------------------


def _console(
    args: list[str], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("verify")
    return subprocess.run(
        [str(script), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


@pytest.mark.parametrize("name", ["onnx_lstm", "data_nan", "vnnlib_input_out_of_range"])
def test_console_bad_input(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    before = _snapshot(tmp_path)
    result = _console([a.format(c=CORPUS, o=tmp_path) for a in case.args])
    last = check_failure(result, case)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert last.startswith("error: ")
    assert _snapshot(tmp_path) == before


_BLOCK_MARABOU = """
import sys


class _NoMarabou:
    \"\"\"Makes ``import maraboupy`` fail, as on a machine without the package.\"\"\"

    def find_spec(self, name, path=None, target=None):
        if name == "maraboupy" or name.startswith("maraboupy."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _NoMarabou())
"""


@pytest.mark.parametrize(
    "args",
    [
        # A point only the solver decides (plain: no attack, bounds or branch and bound),
        # so the worker processes need maraboupy.
        [
            "run", "--property", "cr", "--eps", "0.31", "--attack-steps", "0", "--net",
            "{c}/ok.onnx", "--data", "{c}/ok.npz", "--points", "1", "--metrics", "satisfaction",
            "--backend", "marabou", "--timeout", "10", "--no-progress", "--no-cache",
            "--json", "{o}/out.json", "--strategy", "plain",
        ],
        [
            "vnnlib", "--net", "{c}/ok.onnx", "--spec", "{c}/needs_solver.vnnlib",
            "--backend", "marabou", "--no-attack", "--timeout", "10", "--strategy", "plain",
        ],
    ],
    ids=["run", "vnnlib"],
)  # fmt: skip
def test_console_missing_solver_package(args: list[str], tmp_path: Path) -> None:
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(_BLOCK_MARABOU)
    out = tmp_path / "out"
    out.mkdir()
    env = {"PYTHONPATH": os.pathsep.join([str(shim), os.environ.get("PYTHONPATH", "")])}
    result = _console([a.format(c=CORPUS, o=out) for a in args], env)
    case = Case(
        (), ("backend 'marabou' needs the solver package 'maraboupy'", "pip install maraboupy")
    )
    check_failure(result, case)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stdout == ""
    assert not any(out.iterdir())
