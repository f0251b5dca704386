"""Click options that several ``verify`` subcommands share, each defined once, as decorators.

A subcommand stacks them like ``click.option`` (``@progress_option()`` where it had the
``--progress/--no-progress`` block); a text that differs between subcommands (what the progress
bar shows, what the backend choice means there) is an argument, so every ``--help`` reads as
before. :func:`shown` is ``click.option`` with the default shown, :data:`FILE` / :data:`FOLDER`
the path types of a file or folder option. What an option means once parsed lives here too
(:func:`show_progress`, :func:`use_threads`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from robustprop.lazy import load as load_heavy
from robustprop.training.data import DATASET_NAMES
from robustprop.verify.cli.param_types import NameOrFile, OldNames, TableChoice
from robustprop.verify.run.config import BACKEND_CHOICES
from robustprop.verify.run.stages import Strategy

__all__ = [
    "FILE",
    "FOLDER",
    "data_dir_option",
    "data_option",
    "output_file_option",
    "progress_option",
    "show_progress",
    "shown",
    "solver_options",
    "stacked",
    "threads_option",
    "use_threads",
]

F = TypeVar("F", bound=Callable[..., Any])

#: A path option naming a file (a folder is refused), as a :class:`~pathlib.Path`.
FILE = click.Path(path_type=Path, dir_okay=False)
#: A path option naming a folder (a file is refused), as a :class:`~pathlib.Path`.
FOLDER = click.Path(path_type=Path, file_okay=False)

_PROGRESS_HELP = "Progress bar on stderr (default: when stderr is a terminal)."
_DATA_DIR_HELP = (
    "Folder with fashion_mnist/ and gtsrb/ (default: $ROBUSTPROP_DATA_DIR or ../shared/data)."
)


def stacked(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    """The decorators as one, applied as if written one above the other (the first on top)."""

    def apply(f: F) -> F:
        for decorator in reversed(decorators):
            f = decorator(f)
        return f

    return apply


def shown(*decls: str, **attrs: Any) -> Callable[[F], F]:
    """``click.option`` whose default ``--help`` shows."""
    return click.option(*decls, show_default=True, **attrs)


def progress_option(help: str = _PROGRESS_HELP) -> Callable[[F], F]:
    """``--progress/--no-progress`` (``None`` when neither: see :func:`show_progress`)."""
    return click.option("--progress/--no-progress", default=None, help=help)


def show_progress(progress: bool | None) -> bool:
    """``--progress`` / ``--no-progress``, else whether stderr is a terminal."""
    return sys.stderr.isatty() if progress is None else progress


def threads_option(help: str) -> Callable[[F], F]:
    """``--threads N``: torch's intra-op threads (``None``: torch's own default)."""
    return click.option("--threads", type=click.IntRange(min=1), default=None, help=help)


def use_threads(threads: int | None) -> None:
    """Apply ``--threads`` to this process (torch's ``set_num_threads``); None: leave it."""
    if threads is not None:
        load_heavy("torch").set_num_threads(threads)


def data_option(help: str, **attrs: Any) -> Callable[[F], F]:
    """``--data NAME|FILE.npz`` (old spelling ``--dataset``), into the parameter ``dataset``."""
    return click.option(
        "--data",
        "--dataset",
        "dataset",
        cls=OldNames,
        old=("--dataset",),
        type=NameOrFile(DATASET_NAMES, ".npz"),
        help=help,
        **attrs,
    )


def data_dir_option(help: str = _DATA_DIR_HELP) -> Callable[[F], F]:
    """``--data-dir FOLDER`` (``None``: the default data folder)."""
    return click.option("--data-dir", type=FOLDER, default=None, help=help)


def output_file_option(
    *more: str,
    help: str,
    **attrs: Any,
) -> Callable[[F], F]:
    """``-o/--output FILE``; ``more``: other spellings and the parameter name, if any."""
    return click.option("-o", "--output", *more, type=FILE, help=help, **attrs)


def solver_options(*, backend_help: str, strategy_help: str) -> Callable[[F], F]:
    """``--backend`` (``auto`` or a :class:`BackendName`) and ``--strategy`` (staged, plain)."""
    return stacked(
        shown(
            "--backend",
            type=TableChoice("backend", BACKEND_CHOICES),
            default="auto",
            help=backend_help,
        ),
        shown(
            "--strategy",
            type=TableChoice("strategy", [s.value for s in Strategy]),
            default="staged",
            help=strategy_help,
        ),
    )
