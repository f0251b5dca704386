"""Writing a user-named output file atomically, with errors that name the option and path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import IO

from robustprop.properties.errors import InputError
from robustprop.training.cache import atomic_write

__all__ = ["write_output"]


def write_output(path: Path, option: str, write: Callable[[IO[bytes]], None]) -> None:
    """Create ``path``'s folder and write it via :func:`robustprop.training.cache.atomic_write`.

    A killed run leaves the old file or the complete new one, never a partial one. A folder at
    ``path``, an unwritable parent or a full disk is an :class:`InputError` naming ``option``
    and ``path``; nothing is left behind.
    """
    if path.is_dir():
        raise InputError(f"{option} {path}: is a directory, expected a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, write)
    except OSError as err:
        raise InputError(f"{option} {path}: cannot write ({err.strerror or err})") from err
