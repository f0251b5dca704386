"""Reading chosen arrays of an ``.npz`` archive within a byte budget, headers checked first.

An ``.npz`` file is a zip archive of ``.npy`` members; a member is deflated, so a few
kilobytes can inflate to gigabytes, and its header may claim any shape. ``np.load`` followed
by ``archive[key]`` allocates what the header claims and inflates the whole member, and a
loop over ``archive.files`` does that for members nobody needs. :class:`NpzArchive` instead
reads a member's header alone (shape, dtype; object arrays refused, nothing unpickled),
lets the caller check it, and inflates the data only when the running total of array bytes
stays within :data:`MAX_NPZ_BYTES`. Every problem is an :class:`InputError` naming the file.
"""

from __future__ import annotations

import lzma
import math
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Final

import numpy as np
import numpy.typing as npt

from robustprop.properties.errors import InputError

__all__ = ["MAX_NPZ_BYTES", "READ_ERRORS", "Member", "NpzArchive"]

#: The most array bytes read (inflated) from one ``.npz`` file, over the members used: 2 GiB.
#: The largest bundled or documented data set (GTSRB, 39,209 RGB 32×32 training images) needs
#: 120 MB; the cap only stops a small file from inflating to exhaust memory.
MAX_NPZ_BYTES: Final = 2 * 1024**3

# What numpy/zipfile raise on a missing, truncated or corrupt archive or entry.
READ_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    ValueError,
    EOFError,
    KeyError,
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    NotImplementedError,  # zipfile: an unsupported compression method
)
_CHUNK_BYTES = 1 << 20  # inflated per read
_HEADER_BYTES = 10_000  # numpy's own limit on a .npy header (np.load's max_header_size)


@dataclass(frozen=True)
class Member:
    """A member's ``.npy`` header: what it claims, before any data is read."""

    key: str
    shape: tuple[int, ...]
    dtype: np.dtype[np.generic]
    fortran_order: bool

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


class NpzArchive:
    """An open ``.npz`` file: its keys, each member's header, and bounded reads (a context
    manager; ``budget`` is the most array bytes :meth:`read` inflates over all members)."""

    def __init__(self, path: Path, budget: int | None = None) -> None:
        self.path = path
        self.budget = MAX_NPZ_BYTES if budget is None else budget
        if not path.is_file():
            raise InputError(f"{path}: no such file")
        self._handle: IO[bytes] = path.open("rb")
        try:
            head = self._handle.read(6)
            if head == b"\x93NUMPY":
                raise InputError(f"{path}: not an .npz archive (it holds a single array, .npy)")
            if not head.startswith(b"PK"):
                raise InputError(f"{path}: not an .npz archive (no zip signature)")
            self._handle.seek(0)
            self._zip = zipfile.ZipFile(self._handle)
        except InputError:
            self._handle.close()
            raise
        except READ_ERRORS as err:
            self._handle.close()
            raise InputError(f"{path}: unreadable or corrupt .npz file ({err})") from err
        self._names = {
            name.removesuffix(".npy"): name
            for name in self._zip.namelist()
            if name.endswith(".npy")
        }
        self._headers: dict[str, Member] = {}

    def __enter__(self) -> NpzArchive:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()
        self._handle.close()

    @property
    def keys(self) -> list[str]:
        """The array names (member names without ``.npy``), in archive order."""
        return list(self._names)

    def __contains__(self, key: object) -> bool:
        return key in self._names

    def member(self, key: str) -> Member:
        """The header of ``key`` (its data is not read); object dtypes are refused here."""
        if key not in self._headers:
            with self._open(key) as stream:
                self._headers[key] = self._header(key, stream)
        return self._headers[key]

    def check_budget(self, *keys: str) -> None:
        """Refuse, from their headers alone, arrays that together exceed the budget left."""
        total = sum(self.member(key).nbytes for key in keys)
        if total > self.budget:
            held = ", ".join(
                f"{key!r} {self.member(key).dtype} {self.member(key).shape}" for key in keys
            )
            raise InputError(
                f"{self.path}: {held} would inflate to {total:,} bytes, over the cap of "
                f"{MAX_NPZ_BYTES:,} bytes on the arrays read from one .npz file (MAX_NPZ_BYTES)"
            )

    def read(self, key: str) -> npt.NDArray[np.generic]:
        """The array ``key``, inflating no more than its header's size (counted against the
        budget, which is checked before anything is inflated)."""
        member = self.member(key)
        self.check_budget(key)
        self.budget -= member.nbytes
        out = np.empty(member.shape, member.dtype, order="F" if member.fortran_order else "C")
        flat = out.reshape(-1, order="A")  # a view: out is contiguous in its own order
        view = flat.view(np.uint8).data if member.nbytes else None
        try:
            with self._open(key) as stream:
                self._header(key, stream)
                filled = 0
                while view is not None and filled < member.nbytes:
                    chunk = stream.read(min(_CHUNK_BYTES, member.nbytes - filled))
                    if not chunk:
                        break
                    view[filled : filled + len(chunk)] = chunk
                    filled += len(chunk)
        except READ_ERRORS as err:
            raise InputError(f"{self.path}: {key!r} is unreadable or corrupt ({err})") from err
        if view is not None and filled < member.nbytes:
            raise InputError(
                f"{self.path}: {key!r} is truncated: its header says {member.shape} "
                f"{member.dtype} ({member.nbytes:,} bytes), the file holds {filled:,}"
            )
        return out

    def _open(self, key: str) -> IO[bytes]:
        if key not in self._names:
            raise InputError(f"{self.path}: no array {key!r}")
        try:
            return self._zip.open(self._names[key])
        except READ_ERRORS as err:
            raise InputError(f"{self.path}: {key!r} is unreadable or corrupt ({err})") from err

    def _header(self, key: str, stream: IO[bytes]) -> Member:
        fmt = np.lib.format
        try:
            version = fmt.read_magic(stream)
            if version == (1, 0):
                shape, fortran, dtype = fmt.read_array_header_1_0(stream, _HEADER_BYTES)
            elif version == (2, 0):
                shape, fortran, dtype = fmt.read_array_header_2_0(stream, _HEADER_BYTES)
            else:
                raise InputError(f"{self.path}: {key!r} has .npy format {version}, not 1.0/2.0")
        except InputError:
            raise
        except READ_ERRORS as err:
            raise InputError(f"{self.path}: {key!r} has no valid .npy header ({err})") from err
        if dtype.hasobject:
            raise InputError(
                f"{self.path}: {key!r} is an object array (dtype {dtype}); object arrays are "
                "never loaded (they would run pickled code)"
            )
        if any(d < 0 for d in shape):
            raise InputError(f"{self.path}: {key!r} has a negative dimension {shape}")
        return Member(key, tuple(int(d) for d in shape), dtype, bool(fortran))
