"""Reader for IDX files (the MNIST / Fashion-MNIST format), gzip-compressed or raw.

Header (big-endian): two zero bytes, a type code (0x08 = uint8), the number of dimensions
``k``, then ``k`` uint32 sizes; the data follow in C order. Only uint8 data are accepted.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np
import numpy.typing as npt

from robustprop.properties.errors import InputError

__all__ = ["read_idx"]

_UINT8 = 0x08


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except FileNotFoundError as err:
        raise InputError(f"{path}: no such file") from err
    except (OSError, EOFError, zlib.error) as err:  # gzip.BadGzipFile is an OSError
        raise InputError(f"{path}: unreadable, truncated or not gzip-compressed ({err})") from err


def read_idx(path: Path, ndim: int) -> npt.NDArray[np.uint8]:
    """The uint8 array stored in ``path``; it must have ``ndim`` dimensions."""
    raw = _read_bytes(path)
    header = 4 + 4 * ndim
    if len(raw) < 4:
        raise InputError(f"{path}: too short for an IDX header ({len(raw)} bytes)")
    zero, dtype, k = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != _UINT8 or k != ndim:
        magic = raw[:4].hex()
        raise InputError(
            f"{path}: not a uint8 IDX file with {ndim} dimension(s) "
            f"(magic 0x{magic}, expected 0x0000080{ndim})"
        )
    if len(raw) < header:
        raise InputError(f"{path}: truncated IDX header ({len(raw)} bytes)")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(dims, dtype=np.int64))
    actual = len(raw) - header
    if actual != expected:
        what = "truncated" if actual < expected else "has trailing bytes"
        raise InputError(
            f"{path}: {what}: header says {dims} = {expected} values, file holds {actual}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)
