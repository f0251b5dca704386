"""The documented cache directory and atomic writes into it.

Cache directory: ``$ROBUSTPROP_CACHE_DIR`` if set, else ``~/.cache/robustprop``. It holds
decoded arrays only (e.g. GTSRB, whose LZMA-compressed source takes ~10 s to decode); every
entry can be deleted at any time and is rebuilt from the source file on the next load.
Nothing else in robustprop writes outside the paths the user names (DESIGN.md §1, §8).
"""

from __future__ import annotations

import logging
import os
import secrets
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

import numpy as np
import numpy.typing as npt

__all__ = ["atomic_write", "cache_dir", "load_arrays", "store_arrays"]

logger = logging.getLogger(__name__)

CACHE_ENV = "ROBUSTPROP_CACHE_DIR"


def cache_dir() -> Path:
    """``$ROBUSTPROP_CACHE_DIR``, else ``~/.cache/robustprop`` (not created here)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "robustprop"


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write`` on a temporary file beside ``path``, then rename it onto ``path``.

    Readers see either the old file or the complete new one, never a partial file; on any
    error the temporary file is removed and the error propagates (``OSError`` for I/O).
    """
    # Not tempfile.mkstemp: its 0600 mode would stick to the final file; "xb" honours umask.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        with tmp.open("xb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_arrays(path: Path) -> dict[str, npt.NDArray[np.generic]] | None:
    """The arrays of a cache entry, or ``None`` if it is absent or unreadable (logged)."""
    if not path.is_file():
        return None
    try:
        with path.open("rb") as handle:  # ours to close, whatever np.load makes of the bytes
            loaded = np.load(handle, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                raise ValueError("not an .npz archive")
            return {key: loaded[key] for key in loaded.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
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
