"""GTSRB from ``gtsrb_32x32.npz`` (RGB uint8 HWC), as grayscale 32×32 or 48×48 in [0, 1].

Grayscale is ITU-R BT.601 luma ``0.299 R + 0.587 G + 0.114 B``; the 48×48 variant (the input
size of the paper's code) is a bilinear resize of the 32×32 grayscale image with
``F.interpolate(..., mode="bilinear", align_corners=False)``. Decoding the LZMA-compressed
source takes seconds, so decoded arrays are cached (see :mod:`robustprop.training.cache`) under a
name
keyed by the source's resolved path, size and mtime, the variant and the split.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import cast

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from robustprop.properties.errors import InputError
from robustprop.training.cache import cache_dir, load_arrays, store_arrays
from robustprop.training.npz_reader import READ_ERRORS, NpzArchive

__all__ = ["GTSRB_CLASSES", "GTSRB_FILE", "GTSRB_SIDES", "load_gtsrb"]

logger = logging.getLogger(__name__)

GTSRB_FILE = "gtsrb_32x32.npz"
GTSRB_CLASSES = 43
GTSRB_SIDES = {"gtsrb": 32, "gtsrb48": 48}
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_CHUNK = 4096
_CACHE_FORMAT = 1  # bump when the decoding changes, so stale entries are not reused


def _grayscale(path: Path, rgb: npt.NDArray[np.generic], side: int) -> npt.NDArray[np.float32]:
    if rgb.dtype != np.uint8 or rgb.ndim != 4 or rgb.shape[1:] != (32, 32, 3):
        raise InputError(
            f"{path}: expected uint8 images of shape (N, 32, 32, 3), got {rgb.dtype} {rgb.shape}"
        )
    out = np.empty((len(rgb), side * side), dtype=np.float32)
    for start in range(0, len(rgb), _CHUNK):
        luma = (rgb[start : start + _CHUNK].astype(np.float32) @ _LUMA) / np.float32(255.0)
        if side != 32:
            resized = F.interpolate(
                torch.from_numpy(luma[:, None]),
                size=(side, side),
                mode="bilinear",
                align_corners=False,
            )
            luma = resized.numpy()
        out[start : start + len(luma)] = luma.reshape(len(luma), -1)
    np.clip(out, 0.0, 1.0, out=out)  # rounding could step a hair outside [0, 1]
    return out


def _decode(
    path: Path, split: str, side: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    logger.info("decoding %s (%s split); this takes a few seconds", path, split)
    xk, yk = f"x_{split}", f"y_{split}"
    try:
        with NpzArchive(path) as archive:
            missing = [k for k in (xk, yk) if k not in archive]
            if missing:
                raise InputError(f"{path}: missing key(s) {', '.join(missing)}")
            head = archive.member(xk)
            if head.dtype != np.uint8 or len(head.shape) != 4 or head.shape[1:] != (32, 32, 3):
                raise InputError(
                    f"{path}: expected uint8 images of shape (N, 32, 32, 3), "
                    f"got {head.dtype} {head.shape}"
                )
            archive.check_budget(xk, yk)
            labels = archive.read(yk)
            if labels.ndim != 1 or len(labels) != head.shape[0] or len(labels) == 0:
                raise InputError(
                    f"{path}: '{yk}' must have one label per image of '{xk}', "
                    f"got {labels.shape} for {head.shape}"
                )
            rgb = archive.read(xk)
    except InputError:  # a ValueError, which READ_ERRORS would swallow
        raise
    except READ_ERRORS as err:
        raise InputError(f"{path}: unreadable or corrupt GTSRB archive ({err})") from err
    if not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"{path}: '{yk}' must hold integer labels, got dtype {labels.dtype}")
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi >= GTSRB_CLASSES:
        raise InputError(f"{path}: '{yk}' labels must lie in 0..42, found {lo}..{hi}")
    return _grayscale(path, rgb, side), labels.astype(np.int64)


def _cache_path(path: Path, variant: str, split: str) -> Path:
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{variant}|{split}|{_CACHE_FORMAT}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return cache_dir() / f"{variant}-{split}-{digest}.npz"


def load_gtsrb(
    path: Path, variant: str, split: str
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """``(x, y)``: ``x`` float32 ``(N, side²)`` in [0, 1], ``y`` int64 ``(N,)`` in 0..42."""
    side = GTSRB_SIDES[variant]
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    entry = _cache_path(path, variant, split)
    cached = load_arrays(entry, ("x", "y"))
    if cached is not None and {"x", "y"} <= cached.keys():
        x, y = cached["x"], cached["y"]
        if x.dtype == np.float32 and y.dtype == np.int64 and x.shape == (len(y), side * side):
            logger.debug("loaded %s %s from cache %s", variant, split, entry)
            return cast("npt.NDArray[np.float32]", x), cast("npt.NDArray[np.int64]", y)
        logger.warning("ignoring malformed cache entry %s; rebuilding it", entry)
    x, y = _decode(path, split, side)
    store_arrays(entry, {"x": x, "y": y})
    return x, y
