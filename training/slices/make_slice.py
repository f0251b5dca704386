"""Write ``fashion_mnist_slice.npz``: a small class-balanced Fashion-MNIST slice.

Run from the repository root (reads ``../shared/data`` unless told otherwise)::

    .venv/bin/python -m robustprop.training.slices.make_slice [--data-dir DIR] [--out PATH]

The slice holds 200 training and 50 test images per class (2,000 + 500), drawn without
replacement with a fixed seed and kept in their original order, as uint8 under the keys
``x_train``, ``y_train``, ``x_test``, ``y_test`` (images ``(N, 28, 28)``). The archive is
what ``np.savez_compressed`` writes (deflated ``.npy`` members), but with fixed member
timestamps, so rerunning the script reproduces the file byte for byte.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO

import numpy as np
import numpy.typing as npt

from robustprop.training.cache import atomic_write
from robustprop.training.data import load_dataset

__all__ = ["balanced_indices", "main", "write_npz_reproducibly"]

SEED = 20240521
PER_CLASS = {"train": 200, "test": 50}
DEFAULT_OUT = Path(__file__).resolve().parent / "fashion_mnist_slice.npz"
_EPOCH = (1980, 1, 1, 0, 0, 0)


def balanced_indices(
    y: npt.NDArray[np.int64], per_class: int, rng: np.random.Generator
) -> npt.NDArray[np.int64]:
    """``per_class`` indices of each label, drawn without replacement, in increasing order."""
    picks = [
        rng.choice(np.flatnonzero(y == label), size=per_class, replace=False)
        for label in np.unique(y)
    ]
    return np.sort(np.concatenate(picks)).astype(np.int64)


def write_npz_reproducibly(path: Path, arrays: Mapping[str, npt.NDArray[np.generic]]) -> None:
    """Like ``np.savez_compressed`` but with fixed zip timestamps; written atomically."""

    def write(handle: IO[bytes]) -> None:
        with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for key, value in arrays.items():
                member = io.BytesIO()
                np.lib.format.write_array(member, np.ascontiguousarray(value), allow_pickle=False)
                info = zipfile.ZipInfo(f"{key}.npy", date_time=_EPOCH)
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, member.getvalue(), compresslevel=9)

    atomic_write(path, write)


def main(argv: list[str] | None = None) -> None:
    """Build the slice from the full Fashion-MNIST files and write it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None, help="folder with fashion_mnist/")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output .npz path")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(SEED)
    arrays: dict[str, npt.NDArray[np.generic]] = {}
    for split, per_class in PER_CLASS.items():
        ds = load_dataset("fashion-mnist", split, args.data_dir)
        idx = balanced_indices(ds.y, per_class, rng)
        # The loader divided uint8 by 255; round-tripping recovers the bytes exactly.
        images = np.rint(ds.x[idx] * 255.0).astype(np.uint8).reshape(-1, 28, 28)
        arrays[f"x_{split}"] = images
        arrays[f"y_{split}"] = ds.y[idx].astype(np.uint8)
    write_npz_reproducibly(args.out, arrays)
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    print(f"wrote {args.out}: {args.out.stat().st_size} bytes, sha256 {digest}")


if __name__ == "__main__":
    main()
