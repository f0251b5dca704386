"""Reading and validating image/label arrays from an ``.npz`` archive.

Accepted layout: keys ``x`` and ``y`` (one set of points, served for either split), or
``x_train``/``y_train`` and ``x_test``/``y_test`` (the bundled slice's layout). ``x`` is
``(N, ...)`` with any per-sample shape, either uint8 (0..255, scaled by 1/255) or float with
every value finite and in [0, 1]. ``y`` is ``(N,)`` integer labels ``0 <= y < n_classes``;
``n_classes`` is the optional scalar key ``n_classes``, else one more than the largest label
of ``y``, ``y_train`` and ``y_test``. Every rejection is an :class:`InputError` naming the
file and the problem.

Only those keys are read, each member's header (shape, dtype) is checked before its data is
inflated, object arrays are refused, and the arrays read from one file may hold at most
:data:`~robustprop.training.npz_reader.MAX_NPZ_BYTES` bytes. Rows are selected (``select``)
before ``x`` is converted to float32, so a few points of a big file cost a few points.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from robustprop.properties.errors import InputError
from robustprop.training.npz_reader import READ_ERRORS, Member, NpzArchive

__all__ = [
    "READ_ERRORS",
    "LabelledArrays",
    "RowSelector",
    "read_npz_dataset",
    "to_unit_float32",
]

#: Given the number of rows N, the row indices to keep (in [0, N)).
RowSelector = Callable[[int], npt.NDArray[np.int64]]

_LABEL_KEYS: Final = ("y", "y_train", "y_test")
_CHUNK_VALUES: Final = 1 << 22  # values of x checked at a time (bounded temporaries)


@dataclass(frozen=True, eq=False)
class LabelledArrays:
    """Validated arrays: ``x`` float32 ``(N, n)`` in [0, 1], ``y`` int64 ``(N,)``; ``rows``
    are their indices in the file (all rows unless a selector chose some)."""

    x: npt.NDArray[np.float32]
    y: npt.NDArray[np.int64]
    n_classes: int
    input_shape: tuple[int, ...]
    rows: npt.NDArray[np.int64]


def _check_values(path: Path, key: str, x: npt.NDArray[np.generic]) -> None:
    """Float ``x``: every value finite and in [0, 1], checked a chunk of rows at a time."""
    if x.dtype == np.uint8:
        return
    if not np.issubdtype(x.dtype, np.floating):
        raise InputError(_dtype_problem(path, key, x.dtype))
    rows = max(1, _CHUNK_VALUES // max(1, x[0].size if len(x) else 1))
    bad, lo, hi = 0, np.inf, -np.inf
    for start in range(0, len(x), rows):
        part = x[start : start + rows]
        finite = np.isfinite(part)
        bad += int(part.size - np.count_nonzero(finite))
        if not bad and part.size:
            lo, hi = min(lo, float(part.min())), max(hi, float(part.max()))
    if bad:
        raise InputError(f"{path}: '{key}' has {bad} non-finite values (NaN or inf)")
    if lo < 0.0 or hi > 1.0:
        raise InputError(
            f"{path}: '{key}' values must lie in [0, 1], found [{lo:g}, {hi:g}] "
            "(store images as uint8 or scale them to [0, 1])"
        )


def _dtype_problem(path: Path, key: str, dtype: np.dtype[np.generic]) -> str:
    return f"{path}: '{key}' has dtype {dtype}; expected uint8 (0..255) or float in [0, 1]"


def to_unit_float32(path: Path, key: str, x: npt.NDArray[np.generic]) -> npt.NDArray[np.float32]:
    """uint8 -> value / 255; float -> checked finite and in [0, 1]; anything else rejected."""
    _check_values(path, key, x)
    return _converted(x)


def _converted(x: npt.NDArray[np.generic]) -> npt.NDArray[np.float32]:
    if x.dtype == np.uint8:
        return x.astype(np.float32) / np.float32(255.0)
    return x.astype(np.float32, copy=False)


def _keys_for(archive: NpzArchive, path: Path, split: str) -> tuple[str, str]:
    for xk, yk in ((f"x_{split}", f"y_{split}"), ("x", "y")):
        if xk in archive and yk in archive:
            return xk, yk
    for xk, yk in ((f"x_{split}", f"y_{split}"), ("x", "y")):
        if xk in archive or yk in archive:
            missing = yk if xk in archive else xk
            raise InputError(f"{path}: has '{xk if xk in archive else yk}' but no '{missing}'")
    # A key is shown as is when printable, else as its repr (control characters escaped).
    found = ", ".join(k if k.isprintable() else repr(k) for k in sorted(archive.keys)) or "none"
    raise InputError(
        f"{path}: missing keys 'x' and 'y' (or 'x_{split}', 'y_{split}'); found: {found}"
    )


def _check_headers(path: Path, x: Member, y: Member) -> None:
    """Everything the headers tell, before any data is inflated."""
    xk, yk = x.key, y.key
    if len(x.shape) < 2:
        raise InputError(f"{path}: '{xk}' must have shape (N, ...) with N samples, got {x.shape}")
    if len(y.shape) != 1:
        raise InputError(f"{path}: '{yk}' must have shape (N,), got {y.shape}")
    if x.shape[0] != y.shape[0]:
        raise InputError(
            f"{path}: '{xk}' has {x.shape[0]} samples but '{yk}' has {y.shape[0]} labels"
        )
    if x.shape[0] == 0:
        raise InputError(f"{path}: '{xk}' is empty (0 samples)")
    if 0 in x.shape[1:]:
        raise InputError(f"{path}: '{xk}' samples are empty, shape {x.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise InputError(f"{path}: '{yk}' must hold integer labels, got dtype {y.dtype}")
    if x.dtype != np.uint8 and not np.issubdtype(x.dtype, np.floating):
        raise InputError(_dtype_problem(path, xk, x.dtype))


def _n_classes(archive: NpzArchive, path: Path, y: npt.NDArray[np.generic]) -> int:
    if "n_classes" in archive:
        head = archive.member("n_classes")
        if head.shape != () or not np.issubdtype(head.dtype, np.integer):
            raise InputError(
                f"{path}: 'n_classes' must be a positive integer scalar, "
                f"got {head.dtype} {head.shape}"
            )
        value = int(archive.read("n_classes"))
        if value < 1:
            raise InputError(f"{path}: 'n_classes' must be a positive integer scalar, got {value}")
        return value
    highest = int(y.max())
    for key in _LABEL_KEYS:
        if key in archive:
            head = archive.member(key)
            if len(head.shape) == 1 and head.shape[0] and np.issubdtype(head.dtype, np.integer):
                highest = max(highest, int(archive.read(key).max()))
    return highest + 1


def read_npz_dataset(path: Path, split: str, select: RowSelector | None = None) -> LabelledArrays:
    """The validated points of ``split`` (see the module docstring for the accepted layout).

    ``select(N)`` picks the rows to return (all when ``None``); every row is still checked
    (labels, finite values in [0, 1]), but only the chosen ones are converted.
    """
    try:
        with NpzArchive(path) as archive:
            xk, yk = _keys_for(archive, path, split)
            x_head, y_head = archive.member(xk), archive.member(yk)
            _check_headers(path, x_head, y_head)
            archive.check_budget(xk, yk)
            y = archive.read(yk)
            n_classes = _n_classes(archive, path, y)
            lo, hi = int(y.min()), int(y.max())
            if lo < 0 or hi >= n_classes:
                raise InputError(
                    f"{path}: '{yk}' labels must lie in 0..{n_classes - 1}, found {lo}..{hi}"
                )
            x = archive.read(xk)
    except InputError:
        raise
    except READ_ERRORS as err:
        raise InputError(f"{path}: unreadable or corrupt .npz file ({err})") from err
    _check_values(path, xk, x)
    rows = np.arange(len(x), dtype=np.int64) if select is None else select(len(x))
    chosen = x if select is None else x[rows]
    flat = _converted(chosen).reshape(len(chosen), -1)
    return LabelledArrays(
        x=np.ascontiguousarray(flat),
        y=y[rows].astype(np.int64),
        n_classes=n_classes,
        input_shape=tuple(int(d) for d in x.shape[1:]),
        rows=rows,
    )
