"""run_isolated: results, hard time limits, crashes, errors; the parent's stdout stays clean."""

from __future__ import annotations

import os
import time

import pytest

from robustprop.properties.errors import InputError
from robustprop.verify.engine.isolation import Failure, run_isolated


def add(a: int, b: int) -> int:
    return a + b


def sleep_forever() -> None:
    time.sleep(3600)


def crash() -> None:
    os._exit(7)


def fail() -> None:
    raise ZeroDivisionError("boom")


def bad_input() -> None:
    raise InputError("solver package 'x' is not installed")


def chatty() -> str:
    os.write(1, b"solver noise on fd 1\n")
    print("python noise on stdout", flush=True)
    return "done"


def test_result_comes_back() -> None:
    assert run_isolated(add, (2, 3), 10.0) == 5


def test_hang_is_killed_at_the_limit() -> None:
    start = time.monotonic()
    out = run_isolated(sleep_forever, (), 0.5, grace_s=0.5)
    assert isinstance(out, Failure) and out.kind == "timeout"
    assert "timed out" in out.reason
    assert time.monotonic() - start < 5.0


def test_crash_is_a_failure() -> None:
    out = run_isolated(crash, (), 10.0)
    assert isinstance(out, Failure) and out.kind == "crash"
    assert "exit code 7" in out.reason


def test_exception_is_a_failure_with_its_message() -> None:
    out = run_isolated(fail, (), 10.0)
    assert isinstance(out, Failure) and out.kind == "error"
    assert "ZeroDivisionError: boom" in out.reason


def test_input_error_is_reraised() -> None:
    with pytest.raises(InputError, match="solver package 'x'"):
        run_isolated(bad_input, (), 10.0)


def test_worker_output_never_reaches_stdout(capfd: pytest.CaptureFixture[str]) -> None:
    assert run_isolated(chatty, (), 10.0) == "done"
    # (Where stderr goes is the fork server's: the stderr of the process when it started.)
    assert "noise" not in capfd.readouterr().out
