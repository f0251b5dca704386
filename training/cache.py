"""The documented cache directory, and the one writer of files (:func:`atomic_write`).

Cache directory: ``$ROBUSTPROP_CACHE_DIR`` if set, else ``~/.cache/robustprop``. It holds
decoded arrays (e.g. GTSRB, whose LZMA-compressed source takes ~10 s to decode; every such
entry can be deleted at any time and is rebuilt from the source file on the next load) and,
under ``data/``, the data sets ``verify data fetch`` downloads (:mod:`robustprop.training.fetch`;
written only by that command).
Nothing else in robustprop writes outside the paths the user names (DESIGN.md §1, §8).

:func:`atomic_write` replaces only regular files (and makes new ones); a device or FIFO the
user names is written in place, a socket, block device or folder is refused, a symbolic
link is followed (its target replaced, the link kept).
"""

from __future__ import annotations

import errno
import io
import logging
import os
import secrets
import stat
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Final

import numpy as np
import numpy.typing as npt

from robustprop.properties.errors import InputError
from robustprop.training.npz_reader import NpzArchive

__all__ = [
    "IN_PLACE_KINDS",
    "OutputKindError",
    "atomic_write",
    "cache_dir",
    "file_kind",
    "load_arrays",
    "output_kind",
    "store_arrays",
]

logger = logging.getLogger(__name__)

CACHE_ENV = "ROBUSTPROP_CACHE_DIR"


def cache_dir() -> Path:
    """``$ROBUSTPROP_CACHE_DIR``, else ``~/.cache/robustprop`` (not created here)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "robustprop"


class OutputKindError(OSError):
    """The path names something that is neither written in place nor replaced (see
    :func:`atomic_write`); ``kind`` says what it is, e.g. ``"socket"``."""

    def __init__(self, path: Path, kind: str) -> None:
        super().__init__(errno.EINVAL, f"is a {kind}, not a file", str(path))
        self.kind = kind


def file_kind(mode: int) -> str:
    """What an ``st_mode`` is, in words: ``"regular file"``, ``"FIFO"``, ``"socket"``, ..."""
    for test, kind in (
        (stat.S_ISREG, "regular file"),
        (stat.S_ISDIR, "directory"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISFIFO, "FIFO"),
        (stat.S_ISSOCK, "socket"),
    ):
        if test(mode):
            return kind
    return "special file"


#: Kinds written in place (opened and written, never renamed over or created).
IN_PLACE_KINDS: Final = ("character device", "FIFO")


def output_kind(path: Path) -> str:
    """How :func:`atomic_write` treats ``path``: ``"new"``, ``"regular file"`` (both replaced
    atomically), ``"standard stream"`` (this process's stdout or stderr, e.g. ``/dev/stdout``
    redirected to a file: written through that descriptor), or the :func:`file_kind` of what
    is there (``"character device"`` and ``"FIFO"`` are written in place, others refused)."""
    try:
        st = os.stat(path)  # follows symbolic links: the kind of the target
    except FileNotFoundError:
        return "new"
    if stat.S_ISREG(st.st_mode) and _standard_fd(st) is not None:
        return "standard stream"
    return file_kind(st.st_mode)


def _standard_fd(st: os.stat_result) -> int | None:
    """1 or 2 when ``st`` is the file this process's stdout or stderr writes to."""
    for fd in (1, 2):
        try:
            if os.path.samestat(st, os.fstat(fd)):
                return fd
        except OSError:
            continue
    return None


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``path`` through ``write``, never leaving a partial regular file.

    - A new path or a regular file: ``write`` fills a temporary file beside it, which is then
      renamed onto it (keeping the old file's permission bits). Readers see the old file or
      the complete new one; on any error the temporary file is removed and the error
      propagates (``OSError`` for I/O).
    - A symbolic link is followed: the temporary file goes beside the link's target and is
      renamed onto the target, never over the link itself (a dangling link makes its target).
    - A character device (``/dev/null``, a terminal) or a FIFO is opened and written in place,
      as a shell redirection would (a FIFO waits for its reader); nothing is created or
      renamed. Errors propagate (``/dev/full``: ``ENOSPC``).
    - This process's standard output or error (``/dev/stdout`` when it is redirected to a
      file) is written through that descriptor, after the stream is flushed, so the output
      lands after what was printed and before what is printed next.
    - A directory, socket or block device raises :class:`OutputKindError`.
    """
    kind = output_kind(path)
    if kind == "standard stream":
        _write_to_stream(path, write)
        return
    if kind in IN_PLACE_KINDS:
        _write_in_place(path, write)
        return
    if kind not in ("new", "regular file"):
        raise OutputKindError(path, kind)
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    if kind == "regular file" and not os.path.samestat(os.stat(target), os.stat(path)):
        # e.g. /proc/self/fd/N of a deleted file: its "target" is a name, not that file
        raise OutputKindError(path, "link to a file that has no name to replace")
    mode = os.stat(target).st_mode & 0o7777 if kind == "regular file" else None
    _replace(target, write, mode)


def _replace(path: Path, write: Callable[[IO[bytes]], None], mode: int | None) -> None:
    # Not tempfile.mkstemp: its 0600 mode would stick to the final file; "xb" honours umask.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        with tmp.open("xb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _flush_standard_streams() -> None:
    for stream in (sys.stdout, sys.stderr):  # what this process printed comes first
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass


def _write_in_place(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    _flush_standard_streams()
    # No O_CREAT and no O_TRUNC: this never makes a file, nor truncates one.
    fd = os.open(path, os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC)
    with os.fdopen(fd, "wb") as handle:
        if stat.S_ISREG(os.fstat(fd).st_mode):  # replaced by a file since we looked
            raise OutputKindError(path, "file that appeared while it was opened")
        write(handle)
        handle.flush()


def _write_to_stream(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Through descriptor 1 or 2 itself: it shares the stream's file offset."""
    fd = _standard_fd(os.stat(path))
    if fd is None:  # redirected elsewhere since we looked
        raise OutputKindError(path, "standard stream that moved")
    buffer = io.BytesIO()
    write(buffer)
    _flush_standard_streams()
    data = memoryview(buffer.getbuffer())
    while data:
        data = data[os.write(fd, data) :]


def load_arrays(path: Path, keys: Sequence[str]) -> dict[str, npt.NDArray[np.generic]] | None:
    """The arrays ``keys`` of a cache entry, or ``None`` if it is absent, incomplete or
    unreadable (logged); read within :data:`~robustprop.training.npz_reader.MAX_NPZ_BYTES`."""
    if not path.is_file():
        return None
    try:
        with NpzArchive(path) as archive:
            return {key: archive.read(key) for key in keys}
    except InputError as err:
        logger.warning("ignoring unreadable cache entry %s (%s); rebuilding it", path, err)
        return None


def store_arrays(path: Path, arrays: Mapping[str, npt.NDArray[np.generic]]) -> None:
    """Write a cache entry atomically (uncompressed npz); failures are logged, not raised."""

    def write(handle: IO[bytes]) -> None:
        np.savez(
            handle, allow_pickle=False, **arrays
        )  # uncompressed: fast loading is the point of the cache

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, write)
    except OSError as err:
        logger.warning("could not write cache entry %s (%s); continuing without it", path, err)
    else:
        logger.info("cached %s", path)
