"""The ``verify`` console script: one click group, one module per subcommand.

Exit codes (DESIGN.md §7): 0 all gates pass; 1 a gate failed; 2 usage or input error;
3 internal or solver error; 128 + the signal when stopped by one (130 SIGINT, 143 SIGTERM).
Library errors carry their exit code (``robustprop.properties.errors``); this module turns
them into one-line messages on stderr (``--debug`` shows the traceback).
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import importlib
import logging
import os
import sys
import threading
import traceback
from typing import Any, Final, NoReturn

import click

from robustprop.properties.errors import RobustpropError
from robustprop.verify.cli.version import tool_version
from robustprop.verify.formats.text import printable
from robustprop.verify.run.allocator import tune_allocator
from robustprop.verify.run.signals import Interrupted

_DEBUG_KEY = "robustprop.debug"


def _one_line(err: BaseException) -> str:
    """The message of ``err`` on one line (library and numpy messages may span several)."""
    return printable(" ".join(str(err).split()))


def _debug(ctx: click.Context) -> bool:
    """``verify --debug …`` or ``--debug`` after a subcommand (see :func:`_add_debug`)."""
    return bool(ctx.params.get("debug")) or bool(ctx.meta.get(_DEBUG_KEY))


def _set_debug(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta[_DEBUG_KEY] = True  # meta is shared by every context of one invocation


def _add_debug(command: click.Command) -> None:
    """Accept ``--debug`` after ``command`` (and its subcommands) too."""
    command.params.append(
        click.Option(
            ["--debug"],
            is_flag=True,
            expose_value=False,
            is_eager=True,
            callback=_set_debug,
            help="Show tracebacks for errors (as verify --debug).",
        )
    )
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _add_debug(sub)


# Each subcommand's module, imported only when that subcommand runs (or help lists it): a
# ``verify vnnlib`` call then skips the experiment and report modules' imports (0.3 s of its
# start-up on a small instance).
_SUBCOMMANDS: Final = ("data", "experiment", "export", "report", "run", "train", "vnnlib")


def _import_frozen(name: str) -> Any:
    """Import ``name`` with the cyclic garbage collector paused, then exempt everything alive
    (modules, classes, functions: nothing an import makes is garbage later) from its later
    collections. torch's import alone triggers several full collections over its objects."""
    gc.disable()
    try:
        return importlib.import_module(name)
    finally:
        gc.freeze()
        gc.enable()


class _Group(click.Group):
    """Loads its subcommands lazily and maps library exceptions to exit codes."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_SUBCOMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in _SUBCOMMANDS and cmd_name not in self.commands:
            module = _import_frozen(f"robustprop.verify.cli.{cmd_name}")
            command: click.Command = module.command
            _add_debug(command)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RobustpropError as err:
            if _debug(ctx):
                traceback.print_exc()
            click.echo(f"error: {_one_line(err)}", err=True)
            sys.exit(err.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except KeyboardInterrupt as err:  # Ctrl-C, or SIGTERM within verify run
            stopped = err if isinstance(err, Interrupted) else Interrupted()
            click.echo(str(stopped), err=True)
            sys.exit(stopped.exit_code)
        except Exception as err:  # a bug: say so in one line, exit 3
            if _debug(ctx):
                traceback.print_exc()
            click.echo(
                f"internal error: {type(err).__name__}: {_one_line(err)} (rerun with --debug)",
                err=True,
            )
            sys.exit(3)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(tool_version(), prog_name="verify")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-v info, -vv debug).")
def cli(debug: bool, verbose: int) -> None:
    """Train, export and verify neural networks against robustness properties."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def _exit_status(code: object) -> int:
    """The process status for ``SystemExit(code)``, as the interpreter makes it: None is 0,
    an int is itself, anything else is printed to stderr and gives 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _alone() -> bool:
    """Whether this process has no other thread and no live child: then nothing is left for
    the interpreter's shutdown to wait for beyond the atexit handlers."""
    if threading.active_count() != 1:
        return False
    mp = sys.modules.get("multiprocessing")
    return mp is None or not mp.active_children()


def _leave(status: int) -> NoReturn:
    """End the process with ``status`` after the atexit handlers (logging's flush, pools'
    and temporary folders' finalizers) and a flush of stdout and stderr, skipping the
    interpreter's teardown of every module: with torch loaded that teardown takes 0.1–0.15 s
    of a ``verify vnnlib`` call's 2 s (ACAS Xu 1_1/prop_2). Where another thread or a child
    process is alive, the interpreter shuts down as usual."""
    if not _alone():
        sys.exit(status)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # closed, or a pipe's reader left
            stream.flush()
    os._exit(status)


def main() -> None:
    """The console script: :data:`cli`, then :func:`_leave` with its exit status."""
    tune_allocator()
    try:
        cli(prog_name="verify")
        status = 0
    except SystemExit as stop:
        status = _exit_status(stop.code)
    finally:
        # Exempt what is alive now from the collections at interpreter exit: with torch
        # loaded they take 0.3 s (`python -c 'import torch'`: 1.30 s wall, 1.06 s with
        # this), where the interpreter's own shutdown still runs (see _leave).
        gc.freeze()
    _leave(status)


if __name__ == "__main__":
    main()
