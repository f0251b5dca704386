"""Datasets as flat float32 arrays in [0, 1], read from standard files (never downloaded here:
``verify data fetch NAME`` downloads them into the data cache, :mod:`robustprop.training.fetch`).

Names accepted by :func:`load_dataset`:

============================  ==========================================================
``fashion-mnist``             Zalando IDX ``.gz`` files in ``<data dir>/fashion_mnist/``;
                              (1, 28, 28), 10 classes
``fashion-mnist-slice``       the slice bundled with the package (2,000 train + 500 test,
                              class-balanced; ``training/slices/make_slice.py``)
``gtsrb``                     ``<data dir>/gtsrb/gtsrb_32x32.npz`` as grayscale (1, 32, 32),
                              43 classes
``gtsrb48``                   the same, resized to grayscale (1, 48, 48) like the paper's code
a path to an ``.npz`` file    keys ``x``, ``y`` (or ``x_train`` ... ``y_test``); see
                              :mod:`robustprop.training.npz_data`
============================  ==========================================================

The data directory is, in order: the ``data_dir`` argument, ``$ROBUSTPROP_DATA_DIR``, or
``../shared/data`` beside the repository root; without the first two, a data set that is not
in ``../shared/data`` is looked for in the data cache (``$ROBUSTPROP_DATA``, else
``~/.cache/robustprop/data``: where ``verify data fetch`` puts it). Decoded GTSRB arrays are
cached in the cache directory (:mod:`robustprop.training.cache`).

Reading is bounded: an ``.npz`` file is read key by key within
:data:`~robustprop.training.npz_reader.MAX_NPZ_BYTES`, an IDX file within
:data:`~robustprop.training.idx.MAX_IDX_BYTES`, each checked from its header before the
data are inflated. :func:`load_subset` converts only the rows it returns.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from robustprop.properties.errors import InputError
from robustprop.training.fetch import data_cache_dir
from robustprop.training.gtsrb import GTSRB_CLASSES, GTSRB_FILE, GTSRB_SIDES, load_gtsrb
from robustprop.training.idx import read_idx
from robustprop.training.npz_data import RowSelector, read_npz_dataset

__all__ = [
    "DATASET_NAMES",
    "SPLITS",
    "Dataset",
    "load_dataset",
    "load_subset",
    "resolve_data_dir",
    "subset",
    "subset_indices",
]

logger = logging.getLogger(__name__)

Rows = npt.NDArray[np.int64]  # row indices in the split

DATA_ENV: Final = "ROBUSTPROP_DATA_DIR"
SPLITS: Final = ("train", "test")
DATASET_NAMES: Final = ("fashion-mnist", "fashion-mnist-slice", "gtsrb", "gtsrb48")
SLICE_FILE: Final = "fashion_mnist_slice.npz"
_REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR: Final = _REPO_ROOT.parent / "shared" / "data"
_FASHION_FILES: Final = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_HOW_TO_POINT = f"pass --data-dir DIR (data_dir=...) or set {DATA_ENV}"
_FETCH_NAME: Final = {"fashion_mnist": "fashion-mnist", "gtsrb": "gtsrb"}


def _how_to_get(sub: str) -> str:
    """How to get the data set stored in folder ``sub`` (``fashion_mnist``, ``gtsrb``)."""
    return (
        f"download it with `verify data fetch {_FETCH_NAME[sub]}` (into {data_cache_dir()}, "
        f"where it is found by default), or {_HOW_TO_POINT} to a folder holding {sub}/"
    )


@dataclass(frozen=True, eq=False)
class Dataset:
    """Labelled points, flattened: ``x`` float32 ``(N, n)`` in [0, 1], ``y`` int64 ``(N,)``.

    ``input_shape`` is the per-sample shape before flattening (``prod(input_shape) == n``),
    e.g. ``(1, 28, 28)``. The arrays are not copied; treat them as read-only.
    """

    x: npt.NDArray[np.float32]
    y: npt.NDArray[np.int64]
    n_classes: int
    input_shape: tuple[int, ...]
    name: str

    def __post_init__(self) -> None:
        n = int(np.prod(self.input_shape, dtype=np.int64))
        if self.x.ndim != 2 or self.x.shape[1] != n or self.x.dtype != np.float32:
            raise InputError(
                f"dataset {self.name}: x must be float32 (N, {n}) for input shape "
                f"{self.input_shape}, got {self.x.dtype} {self.x.shape}"
            )
        if self.y.shape != (len(self.x),) or self.y.dtype != np.int64:
            raise InputError(
                f"dataset {self.name}: y must be int64 ({len(self.x)},), "
                f"got {self.y.dtype} {self.y.shape}"
            )
        if self.n_classes < 1:
            raise InputError(f"dataset {self.name}: n_classes must be >= 1, got {self.n_classes}")

    def __len__(self) -> int:
        return len(self.y)

    @property
    def n_inputs(self) -> int:
        """Number of input features ``n`` (the flattened sample size)."""
        return int(self.x.shape[1])

    def take(self, indices: npt.ArrayLike) -> Dataset:
        """The points at ``indices`` (in that order), as a new dataset with the same name."""
        idx = np.asarray(indices, dtype=np.int64)
        if idx.ndim != 1 or (idx.size and (idx.min() < -len(self) or idx.max() >= len(self))):
            raise InputError(f"dataset {self.name}: indices out of range 0..{len(self) - 1}")
        return Dataset(self.x[idx], self.y[idx], self.n_classes, self.input_shape, self.name)


def subset_indices(n_total: int, n: int, seed: int | None = 0) -> npt.NDArray[np.int64]:
    """``min(n, n_total)`` distinct indices in increasing order, chosen deterministically.

    ``seed=None`` takes the first ``n``; an integer seed draws without replacement with
    ``np.random.default_rng(seed)``, so the same (n_total, n, seed) gives the same points.
    """
    if n < 1:
        raise InputError(f"number of points must be >= 1, got {n}")
    if n >= n_total:
        if n > n_total:
            logger.warning("asked for %d points but only %d exist; using all", n, n_total)
        return np.arange(n_total, dtype=np.int64)
    if seed is None:
        return np.arange(n, dtype=np.int64)
    chosen = np.random.default_rng(seed).choice(n_total, size=n, replace=False)
    return np.sort(chosen).astype(np.int64)


def subset(ds: Dataset, n: int, seed: int | None = 0) -> Dataset:
    """The points of ``ds`` at :func:`subset_indices` ``(len(ds), n, seed)``."""
    return ds.take(subset_indices(len(ds), n, seed))


def resolve_data_dir(data_dir: Path | str | None = None) -> Path:
    """The data directory: ``data_dir``, else ``$ROBUSTPROP_DATA_DIR``, else ../shared/data,
    else the data cache (``$ROBUSTPROP_DATA``, ``~/.cache/robustprop/data``)."""
    if data_dir is not None:
        path = Path(data_dir).expanduser()
        if not path.is_dir():
            raise InputError(f"data directory {path} does not exist or is not a directory")
        return path
    env = os.environ.get(DATA_ENV)
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise InputError(f"{DATA_ENV}={env}: not a directory")
        return path
    defaults = _default_dirs()
    if defaults:
        return defaults[0]
    raise InputError(
        f"no data directory found: {_HOW_TO_POINT} to the folder holding fashion_mnist/ "
        f"and gtsrb/ (neither the default {DEFAULT_DATA_DIR} nor the data cache "
        f"{data_cache_dir()} exists); files are never downloaded implicitly: get them with "
        "`verify data fetch fashion-mnist` or `verify data fetch gtsrb`"
    )


def _default_dirs() -> list[Path]:
    """The data directories used when none is given: ../shared/data, then the data cache."""
    return [d for d in (DEFAULT_DATA_DIR, data_cache_dir()) if d.is_dir()]


def _dataset_folder(data_dir: Path | str | None, sub: str, marker: str) -> Path:
    """The folder holding a data set's files: in the given directory; else the first default
    directory that holds ``marker`` (a file of the data set), else the first one."""
    root = resolve_data_dir(data_dir)
    if data_dir is not None or os.environ.get(DATA_ENV):
        return _subdir(root, sub, marker)
    folders = [_subdir(d, sub, marker) for d in _default_dirs()]
    return next((f for f in folders if (f / marker).is_file()), folders[0])


def _subdir(root: Path, sub: str, marker: str) -> Path:
    """``root/sub``, or ``root`` itself when it directly holds ``marker``."""
    if not (root / sub).is_dir() and (root / marker).exists():
        return root
    return root / sub


def _idx_file(folder: Path, stem: str) -> Path:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    raise InputError(f"{folder / stem}.gz: no such file; {_how_to_get('fashion_mnist')}")


def _fashion_mnist(split: str, data_dir: Path | str | None) -> Dataset:
    images_stem, labels_stem = _FASHION_FILES[split]
    folder = _dataset_folder(data_dir, "fashion_mnist", f"{images_stem}.gz")
    images_path, labels_path = _idx_file(folder, images_stem), _idx_file(folder, labels_stem)
    images, labels = read_idx(images_path, 3), read_idx(labels_path, 1)
    if len(images) != len(labels):
        raise InputError(
            f"{images_path}: {len(images)} images but {labels_path} has {len(labels)} labels"
        )
    if labels.size and int(labels.max()) > 9:
        raise InputError(f"{labels_path}: labels must lie in 0..9, found {int(labels.max())}")
    if images.shape[1:] != (28, 28):
        raise InputError(f"{images_path}: expected 28x28 images, got {images.shape[1:]}")
    x = images.reshape(len(images), -1).astype(np.float32) / np.float32(255.0)
    return Dataset(x, labels.astype(np.int64), 10, (1, 28, 28), "fashion-mnist")


def _gtsrb(variant: str, split: str, data_dir: Path | str | None) -> Dataset:
    path = _dataset_folder(data_dir, "gtsrb", GTSRB_FILE) / GTSRB_FILE
    if not path.is_file():
        raise InputError(f"{path}: no such file; {_how_to_get('gtsrb')}")
    x, y = load_gtsrb(path, variant, split)
    side = GTSRB_SIDES[variant]
    return Dataset(x, y, GTSRB_CLASSES, (1, side, side), variant)


def _bundled_slice(split: str, select: RowSelector | None) -> tuple[Dataset, Rows]:
    ref = resources.files("robustprop.training") / "slices" / SLICE_FILE
    with resources.as_file(ref) as path:
        arrays = read_npz_dataset(path, split, select)
    ds = Dataset(arrays.x, arrays.y, 10, (1, 28, 28), "fashion-mnist-slice")
    return ds, arrays.rows


def _npz(path: Path, split: str, select: RowSelector | None) -> tuple[Dataset, Rows]:
    arrays = read_npz_dataset(path, split, select)
    ds = Dataset(arrays.x, arrays.y, arrays.n_classes, arrays.input_shape, str(path))
    return ds, arrays.rows


def _load(
    name: str, split: str, data_dir: Path | str | None, select: RowSelector | None
) -> tuple[Dataset, Rows]:
    if split not in SPLITS:
        raise InputError(f"split must be 'train' or 'test', got {split!r}")
    key = name.strip().lower().replace("_", "-")
    if key in DATASET_NAMES and not Path(name).is_file():
        if key == "fashion-mnist-slice":
            return _bundled_slice(split, select)
        ds = (
            _fashion_mnist(split, data_dir)
            if key == "fashion-mnist"
            else _gtsrb(key, split, data_dir)
        )
        rows = np.arange(len(ds), dtype=np.int64) if select is None else select(len(ds))
        return (ds if select is None else ds.take(rows)), rows
    path = Path(name).expanduser()
    if path.suffix == ".npz" or path.exists():
        return _npz(path, split, select)
    raise InputError(
        f"unknown dataset {name!r}: choose one of {', '.join(DATASET_NAMES)} "
        "or give the path of an .npz file with arrays x and y"
    )


def load_dataset(name: str, split: str, data_dir: Path | str | None = None) -> Dataset:
    """Load split ``"train"`` or ``"test"`` of a named dataset or an ``.npz`` file.

    ``data_dir`` is used by the named datasets only (see :func:`resolve_data_dir`). Missing,
    truncated or malformed files raise :class:`InputError` naming the file.
    """
    return _load(name, split, data_dir, None)[0]


def load_subset(
    name: str, split: str, n: int, seed: int | None = 0, data_dir: Path | str | None = None
) -> tuple[Dataset, Rows]:
    """The points at :func:`subset_indices` ``(N, n, seed)`` of a split, and those indices.

    The same points as ``subset(load_dataset(name, split, data_dir), n, seed)``; an ``.npz``
    file (the bundled slice included) converts only the chosen rows to float32, so a few
    points of a big file cost a few points of memory.
    """
    if n < 1:
        raise InputError(f"number of points must be >= 1, got {n}")
    return _load(name, split, data_dir, lambda total: subset_indices(total, n, seed))
