"""Writing a user-named output file (``--json``, ``--junit``, ...), with errors that name the
option and the path.

What the path names decides how it is written (:func:`robustprop.training.cache.atomic_write`):

- ``-``: standard output (pathlib reads ``./-`` as ``-`` too: a file named ``-`` needs its
  absolute path);
- a new path or a regular file: replaced atomically (temporary file beside it, then renamed);
  a symbolic link is followed and its target replaced, the link stays;
- a character device (``/dev/null``, a terminal) or a FIFO: written in place, never replaced;
  ``/dev/stdout`` redirected to a file appends to it;
- a directory, a socket or a block device: refused.

Every failure (a full disk or ``/dev/full``, an unwritable folder, a refused kind) is an
:class:`InputError` naming the option, the path and the reason; nothing is left behind.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO

from robustprop.properties.errors import InputError
from robustprop.training.cache import IN_PLACE_KINDS, OutputKindError, atomic_write, output_kind
from robustprop.verify.formats.text import printable

__all__ = [
    "STDOUT",
    "check_output",
    "is_stdout",
    "output_kind",
    "write_output",
    "writes_in_place",
]

#: The path that means standard output.
STDOUT = Path("-")


def is_stdout(path: Path) -> bool:
    """``path`` is ``-``: the output goes to standard output."""
    return path == STDOUT


def writes_in_place(path: Path) -> bool:
    """``path`` is ``-``, a device, a FIFO or a standard stream: written, not replaced.

    Such a path has no folder of its own: nothing else (a store, figures) belongs beside it.
    """
    return is_stdout(path) or output_kind(path) not in ("new", "regular file", "directory")


def check_output(path: Path, option: str) -> None:
    """Refuse, before any work is done, an output :func:`write_output` could not write.

    ``-``, a character device, a FIFO and a standard stream pass (written in place); a
    directory, a socket or a block device is refused; a new path or a regular file (after a
    symbolic link) needs an existing, writable folder.
    """
    if is_stdout(path):
        return
    shown = printable(path)
    try:
        kind = output_kind(path)
    except OSError as err:  # a loop of links, a folder we may not search
        raise InputError(f"{option} {shown}: cannot write ({err.strerror or err})") from err
    if kind == "directory":
        raise InputError(f"{option} {shown}: is a directory, expected a file name")
    if kind in IN_PLACE_KINDS or kind == "standard stream":
        return
    if kind not in ("new", "regular file"):
        raise InputError(
            f"{option} {shown}: is a {kind}, not a file; robustprop replaces regular files "
            "and writes character devices and FIFOs in place"
        )
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"{option} {shown}: folder {printable(parent)} does not exist")
    if not os.access(parent, os.W_OK):
        raise InputError(f"{option} {shown}: folder {printable(parent)} is not writable")


def write_output(path: Path, option: str, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``path`` (see the module docstring) through ``write``; errors name ``option``.

    A killed run leaves the old file or the complete new one, never a partial one. A folder at
    ``path``, an unwritable parent, a full disk or a refused kind is an :class:`InputError`
    naming ``option`` and ``path``; nothing is left behind.
    """
    shown = printable(path)
    if is_stdout(path):
        _write_stdout(option, write)
        return
    if path.is_dir():
        raise InputError(f"{option} {shown}: is a directory, expected a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, write)
    except OutputKindError as err:
        raise InputError(
            f"{option} {shown}: {err.strerror}; robustprop replaces regular files and writes "
            "character devices and FIFOs in place"
        ) from err
    except OSError as err:
        raise InputError(f"{option} {shown}: cannot write ({err.strerror or err})") from err


def _write_stdout(option: str, write: Callable[[IO[bytes]], None]) -> None:
    buffer = io.BytesIO()
    write(buffer)
    stream = sys.stdout
    if stream is None:
        raise InputError(f"{option} -: there is no standard output to write to")
    try:
        stream.flush()
        binary = getattr(stream, "buffer", None)
        if binary is not None:
            binary.write(buffer.getvalue())
            binary.flush()
        else:
            stream.write(buffer.getvalue().decode("utf-8", errors="replace"))
            stream.flush()
    except (OSError, ValueError) as err:  # a closed pipe, a full disk, a closed stream
        reason = getattr(err, "strerror", None) or err
        raise InputError(f"{option} -: cannot write to standard output ({reason})") from err
