"""One style across the ``verify`` commands (issue #15, item 6).

``--data`` wherever a data set is chosen, ``-o/--output`` for every output, table choices that
shell completion offers, help on every option, progress bars on a terminal only unless
``--progress``, ``--debug`` after the subcommand, and reasons that name each layer once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.shell_completion import ShellComplete
from click.testing import CliRunner

from robustprop.verify.cli.main import cli
from robustprop.verify.engine.backends.portfolio import Report, racer_reason, unknown_reason
from robustprop.verify.engine.verdict import Status

GOLDEN = Path(__file__).parents[1] / "golden"


def _commands(
    command: click.Command = cli, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        ctx = click.Context(command)  # the top group loads its subcommands on demand
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None, name
            yield from _commands(sub, (*path, name))


def _command(*path: str) -> click.Command:
    return dict(_commands())[path]


def _param(path: tuple[str, ...], name: str) -> click.Parameter:
    return next(p for p in _command(*path).params if p.name == name)


def _help(*path: str) -> str:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    return result.output


def _run_golden(tmp_path: Path, *extra: str) -> click.testing.Result:
    """``verify run`` on the golden network: one point, Z3, no store."""
    args = [
        "run", "--property", "cr", "--eps", "0.1", "--net", str(GOLDEN / "golden.onnx"),
        "--data", str(GOLDEN / "golden.npz"), "--points", "1", "--metrics", "satisfaction",
        "--backend", "z3", "--no-cache", *extra,
    ]  # fmt: skip
    return CliRunner().invoke(cli, args)


# -- 1. --data wherever a data set is chosen ------------------------------------------------


@pytest.mark.parametrize(
    ("path", "name", "old"),
    [
        (("train",), "dataset", "--dataset"),
        (("export",), "dataset", "--dataset"),
        (("experiment",), "datasets", "--datasets"),
        (("run",), "data", None),
    ],
)
def test_data_is_the_spelling_everywhere(path: tuple[str, ...], name: str, old: str | None) -> None:
    param = _param(path, name)
    assert param.opts[0] == "--data"
    text = _help(*path)
    assert "--data " in text
    if old is not None:
        assert old in param.opts  # the old spelling still parses ...
        assert old + " " not in text  # ... but --help shows only --data
        ctx = _command(*path).make_context(
            path[-1], [old, "gtsrb", "--help"], resilient_parsing=True
        )
        assert ctx.params[name] == "gtsrb"


def test_export_with_data_and_dataset_alike(tmp_path: Path) -> None:
    """``--data`` and the old ``--dataset`` reach the same check (a missing checkpoint)."""
    for flag in ("--data", "--dataset"):
        result = CliRunner().invoke(
            cli, ["export", str(tmp_path / "no.ckpt"), "-o", str(tmp_path / "m.onnx"), flag, "x"]
        )
        assert result.exit_code == 2 and "No such option" not in result.output, result.output


# -- 2. -o/--output for every output ----------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "name", "old"),
    [
        (("train",), "output", None),
        (("export",), "output", None),
        (("report",), "output", None),
        (("experiment",), "out", "--out"),
        (("vnnlib",), "results_file", "--results-file"),
        (("run",), "json_out", "--json"),
    ],
)
def test_output_is_dash_o(path: tuple[str, ...], name: str, old: str | None) -> None:
    opts = _param(path, name).opts
    assert opts[:2] == ["-o", "--output"]
    assert old is None or old in opts


def test_run_writes_its_document_with_dash_o(tmp_path: Path) -> None:
    for flag in ("-o", "--output", "--json"):
        out = tmp_path / f"{flag.strip('-')}.json"
        result = _run_golden(tmp_path, flag, str(out))
        assert result.exit_code == 0, result.output
        assert json.loads(out.read_text())["property"]["name"] == "cr"


# -- 3. choices that shell completion offers ----------------------------------------------------


def _complete(args: list[str], incomplete: str) -> list[str]:
    complete = ShellComplete(cli, {}, "verify", "_VERIFY_COMPLETE")
    return [item.value for item in complete.get_completions(args, incomplete)]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["train", "--regime"], {"baseline", "constraint", "certified", "lipschitz"}),
        (["train", "--property"], {"sr", "lr", "cr", "scr"}),
        (["train", "--sampler"], {"uniform", "fgsm", "pgd"}),
        (["train", "--arch"], {"mlp"}),
        (["run", "--property"], {"sr", "lr", "cr", "scr"}),
        (["experiment", "--regimes"], {"baseline", "adversarial", "constraint-sr"}),
        (["experiment", "--data"], {"fashion-mnist", "gtsrb"}),
        (["experiment", "--cert-props"], {"sr", "scr"}),
    ],
)
def test_completion_offers_the_choices(args: list[str], expected: set[str]) -> None:
    assert expected <= set(_complete(args, ""))


def test_completion_through_the_console_script() -> None:
    """The README's recipe: click 8's ``_VERIFY_COMPLETE=bash_complete`` protocol."""
    verify = Path(sys.executable).parent / "verify"
    env = {
        **os.environ,
        "_VERIFY_COMPLETE": "bash_complete",
        "COMP_WORDS": "verify experiment --regimes constraint-s",
        "COMP_CWORD": "3",
    }
    out = subprocess.run([str(verify)], env=env, capture_output=True, text=True, check=True)
    assert "plain,constraint-sr" in out.stdout and "plain,constraint-scr" in out.stdout
    env["_VERIFY_COMPLETE"] = "bash_source"
    script = subprocess.run([str(verify)], env=env, capture_output=True, text=True, check=True)
    assert "complete -o nosort -F _verify_completion verify" in script.stdout


# -- 4. help on every option ---------------------------------------------------------------------


def test_every_option_of_every_command_has_help() -> None:
    missing = [
        f"verify {' '.join(path)} {param.opts[0]}"
        for path, command in _commands()
        for param in command.params
        if isinstance(param, click.Option) and "--help" not in param.opts and not param.help
    ]
    assert not missing


# -- 5. progress bars on a terminal only, unless --progress ----------------------------------


@pytest.mark.parametrize(
    "path", [("train",), ("run",), ("experiment",), ("data", "fetch")], ids="-".join
)
def test_progress_flags(path: tuple[str, ...]) -> None:
    param = _param(path, "progress")
    assert param.opts == ["--progress"] and param.secondary_opts == ["--no-progress"]
    assert param.default is None  # None: when stderr is a terminal


def test_run_shows_no_bar_off_a_terminal_unless_asked(tmp_path: Path) -> None:
    quiet = _run_golden(tmp_path)  # CliRunner's stderr is not a terminal
    assert quiet.exit_code == 0 and "cr eps=0.1" not in quiet.stderr, quiet.stderr
    shown = _run_golden(tmp_path, "--progress")
    assert shown.exit_code == 0 and "cr eps=0.1" in shown.stderr, shown.output
    hidden = _run_golden(tmp_path, "--no-progress")
    assert hidden.exit_code == 0 and "cr eps=0.1" not in hidden.stderr


# -- 6. --debug after the subcommand ---------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["--debug", "run", "--property", "cr", "--net", "missing.onnx"],
        ["run", "--property", "cr", "--net", "missing.onnx", "--debug"],
        ["data", "fetch", "gtsrb", "--cache-dir", "{file}/sub", "--debug"],
    ],
)
def test_debug_before_or_after_the_subcommand(tmp_path: Path, args: list[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    args = [a.replace("{file}", str(blocker)) for a in args]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code in (2, 3), result.output
    assert "Traceback" in result.stderr, result.stderr
    plain = CliRunner().invoke(cli, [a for a in args if a != "--debug"])
    assert plain.exit_code == result.exit_code and "Traceback" not in plain.stderr


# -- 7. reasons name each layer once -------------------------------------------------------------


def test_portfolio_reasons_name_each_layer_once() -> None:
    reports: list[Report | None] = [
        Report(Status.UNKNOWN, None, "milp: Time limit reached", "milp"),
        Report(Status.UNKNOWN, None, "milp: Time limit reached", "milp"),
        Report(Status.UNKNOWN, None, "time limit reached before all input boxes", "marabou"),
        None,
    ]
    assert unknown_reason(reports) == (
        "portfolio: milp: Time limit reached; marabou: time limit reached before all input boxes"
    )
    assert unknown_reason([None]) == "portfolio: no answer"
    assert racer_reason("milp", "milp: sat", " first: ") == "milp first: sat"
    assert racer_reason("portfolio", "portfolio: x") == "portfolio: x"
    assert racer_reason("z3", "timeout") == "z3: timeout"


def test_readme_commands_document_the_style() -> None:
    readme = (Path(__file__).parents[3] / "README.md").read_text(encoding="utf-8")
    commands = readme.split("## Commands\n", 1)[1].split("\n## ", 1)[0]
    text = " ".join(commands.split())
    assert 'eval "$(_VERIFY_COMPLETE=bash_source verify)"' in text
    assert "--progress" in text and "-o/--output" in text and "--dataset " not in commands
