"""``verify``'s start-up: a subcommand's modules load on demand, with the cyclic garbage
collector paused while they import and their objects exempt from its later collections
(torch's import alone triggers several full collections; about 0.3 s of a small instance's
wall time). The collector must be on again afterwards: a run's own garbage is collected."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from robustprop.verify.cli.main import _exit_status
from tests.fresh_python import fresh_python


def test_a_subcommand_loads_with_the_collector_paused_and_leaves_it_on() -> None:
    code = (
        "import gc, sys, click; from robustprop.verify.cli.main import cli; "
        "assert 'torch' not in sys.modules; frozen = gc.get_freeze_count(); "
        "cli.get_command(click.Context(cli), 'vnnlib'); "
        "print('torch' in sys.modules, gc.isenabled(), gc.get_freeze_count() > frozen)"
    )
    assert fresh_python(code).split() == ["True", "True", "True"]


def _main(code: str) -> subprocess.CompletedProcess[str]:
    """``python -c code`` where ``code`` ends by calling the console script's ``main``, with
    stdout block-buffered (as a pipe is, unless PYTHONUNBUFFERED is set)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, env=env
    )


def test_the_console_script_ends_after_its_exit_handlers_and_with_their_output_flushed(
    tmp_path: Path,
) -> None:
    """``main`` skips the interpreter's teardown (0.1–0.15 s with torch loaded) but not the
    atexit handlers, buffered output, or the exit status: a usage error still exits 2."""
    mark = tmp_path / "handler-ran"
    code = (
        "import atexit, pathlib, sys; from robustprop.verify.cli.main import main; "
        f"atexit.register(pathlib.Path({str(mark)!r}).write_text, 'yes'); "
        "sys.stdout.write('buffered, no newline'); "
        "sys.argv = ['verify', 'vnnlib', '--no-such-option']; main()"
    )
    done = _main(code)
    assert done.returncode == 2, done.stderr
    assert done.stdout == "buffered, no newline"
    assert "--no-such-option" in done.stderr
    assert mark.read_text() == "yes"


def test_the_console_script_leaves_as_usual_while_another_thread_runs(tmp_path: Path) -> None:
    """A thread still running when the command returns is waited for (the interpreter's own
    shutdown), not cut off: its last write lands, and the status is the command's (0)."""
    mark = tmp_path / "thread-done"
    code = (
        "import pathlib, sys, threading, time; from robustprop.verify.cli.main import main; "
        f"t = threading.Thread(target=lambda: (time.sleep(1.0), "
        f"pathlib.Path({str(mark)!r}).write_text('done'))); t.start(); "
        "sys.argv = ['verify', '--version']; main()"
    )
    done = _main(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("verify")
    assert mark.read_text() == "done"


def test_an_exit_status_is_the_interpreters() -> None:
    assert _exit_status(None) == 0
    assert _exit_status(3) == 3
    assert _exit_status("a message") == 1
