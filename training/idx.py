"""Reader for IDX files (the MNIST / Fashion-MNIST format), gzip-compressed or raw.

Header (big-endian): two zero bytes, a type code (0x08 = uint8), the number of dimensions
``k``, then ``k`` uint32 sizes; the data follow in C order. Only uint8 data are accepted.

The header is read and checked first: the data it claims may not exceed
:data:`MAX_IDX_BYTES`, and a raw file must be exactly as long as the header says. A gzip
file is inflated only up to the size the header claims (plus one byte, to notice trailing
data), so a small file that inflates to gigabytes costs nothing.
"""

from __future__ import annotations

import gzip
import io
import math
import struct
import zlib
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from robustprop.properties.errors import InputError

__all__ = ["MAX_IDX_BYTES", "read_idx"]

#: The most data bytes one IDX file may hold: 1 GiB (Fashion-MNIST's training images are 47 MB).
MAX_IDX_BYTES: Final = 1024**3

_UINT8 = 0x08


def _open(path: Path) -> io.BufferedIOBase:
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        if path.suffix == ".gz":
            return gzip.open(path, "rb")
        return path.open("rb")
    except OSError as err:
        raise InputError(f"{path}: unreadable ({err})") from err


def _read(handle: io.BufferedIOBase, n: int) -> bytes:
    """Up to ``n`` bytes (fewer only at the end of the data)."""
    parts, left = [], n
    while left > 0:
        part = handle.read(min(left, 1 << 24))
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def read_idx(path: Path, ndim: int) -> npt.NDArray[np.uint8]:
    """The uint8 array stored in ``path``; it must have ``ndim`` dimensions."""
    header = 4 + 4 * ndim
    try:
        with _open(path) as handle:
            head = _read(handle, header)
            dims = _check_header(path, head, ndim)
            expected = math.prod(dims)
            if path.suffix != ".gz":
                actual = path.stat().st_size - header
                if actual != expected:
                    raise _size_problem(path, dims, expected, actual)
            data = _read(handle, expected + 1)
    except InputError:
        raise
    except (OSError, EOFError, zlib.error) as err:  # gzip.BadGzipFile is an OSError
        raise InputError(f"{path}: unreadable, truncated or not gzip-compressed ({err})") from err
    if len(data) != expected:  # gzip: only one byte past the claimed size was inflated
        raise _size_problem(path, dims, expected, len(data) if len(data) < expected else None)
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)


def _check_header(path: Path, head: bytes, ndim: int) -> tuple[int, ...]:
    if len(head) < 4:
        raise InputError(f"{path}: too short for an IDX header ({len(head)} bytes)")
    zero, dtype, k = struct.unpack(">HBB", head[:4])
    if zero != 0 or dtype != _UINT8 or k != ndim:
        raise InputError(
            f"{path}: not a uint8 IDX file with {ndim} dimension(s) "
            f"(magic 0x{head[:4].hex()}, expected 0x0000080{ndim})"
        )
    if len(head) < 4 + 4 * ndim:
        raise InputError(f"{path}: truncated IDX header ({len(head)} bytes)")
    dims: tuple[int, ...] = struct.unpack(f">{ndim}I", head[4:])
    if math.prod(dims) > MAX_IDX_BYTES:
        raise InputError(
            f"{path}: header says {dims} = {math.prod(dims):,} values, over the cap of "
            f"{MAX_IDX_BYTES:,} bytes for one IDX file (MAX_IDX_BYTES)"
        )
    return dims


def _size_problem(
    path: Path, dims: tuple[int, ...], expected: int, actual: int | None
) -> InputError:
    """``actual``: the data bytes found, ``None`` for "more than expected" (not inflated)."""
    what = "truncated" if actual is not None and actual < expected else "has trailing bytes"
    held = "file holds more" if actual is None else f"file holds {actual}"
    return InputError(f"{path}: {what}: header says {dims} = {expected} values, {held}")
