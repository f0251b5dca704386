"""Reading and validating image/label arrays from an ``.npz`` archive.

Accepted layout: keys ``x`` and ``y`` (one set of points, served for either split), or
``x_train``/``y_train`` and ``x_test``/``y_test`` (the bundled slice's layout). ``x`` is
``(N, ...)`` with any per-sample shape, either uint8 (0..255, scaled by 1/255) or float with
every value finite and in [0, 1]. ``y`` is ``(N,)`` integer labels ``0 <= y < n_classes``;
``n_classes`` is the optional scalar key ``n_classes``, else one more than the largest label
in the file. Every rejection is an :class:`InputError` naming the file and the problem.
"""

from __future__ import annotations

import lzma
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from robustprop.properties.errors import InputError

__all__ = ["READ_ERRORS", "LabelledArrays", "open_npz", "read_npz_dataset", "to_unit_float32"]

# What numpy/zipfile raise on a missing, truncated or corrupt archive or entry.
READ_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    ValueError,
    EOFError,
    KeyError,
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
)


@dataclass(frozen=True, eq=False)
class LabelledArrays:
    """Validated arrays: ``x`` float32 ``(N, n)`` in [0, 1], ``y`` int64 ``(N,)``."""

    x: npt.NDArray[np.float32]
    y: npt.NDArray[np.int64]
    n_classes: int
    input_shape: tuple[int, ...]


def open_npz(path: Path) -> dict[str, npt.NDArray[np.generic]]:
    """Every array of an ``.npz`` file, read eagerly; unreadable files raise ``InputError``."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    # We own the handle: np.load leaks its own on some corrupt inputs.
    try:
        with path.open("rb") as handle:
            if handle.read(2) != b"PK":  # else numpy guesses "pickle" and says so
                raise InputError(f"{path}: not an .npz archive (no zip signature)")
            handle.seek(0)
            loaded = np.load(handle, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                raise InputError(f"{path}: not an .npz archive (it holds a single array)")
            return {key: loaded[key] for key in loaded.files}
    except InputError:  # a ValueError, which READ_ERRORS would swallow
        raise
    except READ_ERRORS as err:
        raise InputError(f"{path}: unreadable or corrupt .npz file ({err})") from err


def to_unit_float32(path: Path, key: str, x: npt.NDArray[np.generic]) -> npt.NDArray[np.float32]:
    """uint8 -> value / 255; float -> checked finite and in [0, 1]; anything else rejected."""
    if x.dtype == np.uint8:
        return x.astype(np.float32) / np.float32(255.0)
    if not np.issubdtype(x.dtype, np.floating):
        raise InputError(
            f"{path}: '{key}' has dtype {x.dtype}; expected uint8 (0..255) or float in [0, 1]"
        )
    finite = np.isfinite(x)
    if not finite.all():
        bad = int(x.size - np.count_nonzero(finite))
        raise InputError(f"{path}: '{key}' has {bad} non-finite values (NaN or inf)")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        raise InputError(
            f"{path}: '{key}' values must lie in [0, 1], found [{lo:g}, {hi:g}] "
            "(store images as uint8 or scale them to [0, 1])"
        )
    return x.astype(np.float32, copy=False)


def _keys_for(
    arrays: dict[str, npt.NDArray[np.generic]], path: Path, split: str
) -> tuple[str, str]:
    for xk, yk in ((f"x_{split}", f"y_{split}"), ("x", "y")):
        if xk in arrays and yk in arrays:
            return xk, yk
    for xk, yk in ((f"x_{split}", f"y_{split}"), ("x", "y")):
        if xk in arrays or yk in arrays:
            missing = yk if xk in arrays else xk
            raise InputError(f"{path}: has '{xk if xk in arrays else yk}' but no '{missing}'")
    found = ", ".join(sorted(arrays)) or "none"
    raise InputError(
        f"{path}: missing keys 'x' and 'y' (or 'x_{split}', 'y_{split}'); found: {found}"
    )


def _n_classes(
    arrays: dict[str, npt.NDArray[np.generic]], path: Path, y: npt.NDArray[np.generic]
) -> int:
    if "n_classes" in arrays:
        value = arrays["n_classes"]
        if value.shape != () or not np.issubdtype(value.dtype, np.integer) or int(value) < 1:
            raise InputError(
                f"{path}: 'n_classes' must be a positive integer scalar, got {value!r}"
            )
        return int(value)
    label_arrays = [a for k, a in arrays.items() if k == "y" or k.startswith("y_")]
    label_arrays = [a for a in label_arrays if a.size and np.issubdtype(a.dtype, np.integer)]
    return int(max(int(a.max()) for a in [y, *label_arrays])) + 1


def read_npz_dataset(path: Path, split: str) -> LabelledArrays:
    """The validated points of ``split`` (see the module docstring for the accepted layout)."""
    arrays = open_npz(path)
    xk, yk = _keys_for(arrays, path, split)
    x, y = arrays[xk], arrays[yk]
    if x.ndim < 2:
        raise InputError(f"{path}: '{xk}' must have shape (N, ...) with N samples, got {x.shape}")
    if y.ndim != 1:
        raise InputError(f"{path}: '{yk}' must have shape (N,), got {y.shape}")
    if len(x) != len(y):
        raise InputError(f"{path}: '{xk}' has {len(x)} samples but '{yk}' has {len(y)} labels")
    if len(x) == 0:
        raise InputError(f"{path}: '{xk}' is empty (0 samples)")
    if x[0].size == 0:
        raise InputError(f"{path}: '{xk}' samples are empty, shape {x.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise InputError(f"{path}: '{yk}' must hold integer labels, got dtype {y.dtype}")
    n_classes = _n_classes(arrays, path, y)
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= n_classes:
        raise InputError(f"{path}: '{yk}' labels must lie in 0..{n_classes - 1}, found {lo}..{hi}")
    flat = to_unit_float32(path, xk, x).reshape(len(x), -1)
    return LabelledArrays(
        x=np.ascontiguousarray(flat),
        y=y.astype(np.int64),
        n_classes=n_classes,
        input_shape=tuple(int(d) for d in x.shape[1:]),
    )
