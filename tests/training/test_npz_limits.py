"""Bounded resources for data files: a small ``.npz`` or IDX file never costs gigabytes.

- ``.npz``: only the keys the loader needs are read; each member's header is checked before
  its data is inflated; object arrays are refused; the arrays read from one file hold at
  most ``MAX_NPZ_BYTES``; rows are selected before ``x`` is converted to float32.
- IDX: the header's size is checked against ``MAX_IDX_BYTES`` (and a raw file's length)
  before any data is read, and a gzip stream is inflated only as far as the header claims.
"""

from __future__ import annotations

import gzip
import io
import struct
import tracemalloc
import zipfile
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt
import pytest

from robustprop.properties.errors import InputError
from robustprop.training import idx as idx_module
from robustprop.training import npz_reader
from robustprop.training.data import load_dataset, load_subset, subset
from robustprop.training.idx import read_idx


def _member(archive: zipfile.ZipFile, key: str, array: npt.NDArray[Any]) -> None:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=True)
    archive.writestr(f"{key}.npy", buffer.getvalue(), compress_type=zipfile.ZIP_DEFLATED)


def _claiming(archive: zipfile.ZipFile, key: str, shape: tuple[int, ...], dtype: str) -> None:
    """A member whose header claims ``shape`` but which holds 1 MiB of zeros."""
    header = {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape}
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    buffer.write(bytes(1 << 20))
    archive.writestr(f"{key}.npy", buffer.getvalue(), compress_type=zipfile.ZIP_DEFLATED)


_X = np.full((3, 4), 0.5, np.float32)
_Y = np.array([0, 1, 2])


def test_a_huge_member_nobody_reads_costs_nothing(tmp_path: Path) -> None:
    """Before: every member was inflated, so a few kB claiming 8 TB broke a good file."""
    path = tmp_path / "extra.npz"
    with zipfile.ZipFile(path, "w") as archive:
        _member(archive, "x", _X)
        _member(archive, "y", _Y)
        _claiming(archive, "unused", (1_000_000, 1_000_000), "<f8")
    assert path.stat().st_size < 10_000
    ds = load_dataset(str(path), "test")
    assert ds.x.shape == (3, 4) and ds.n_classes == 3


def test_header_over_the_cap_is_refused_before_inflating(tmp_path: Path) -> None:
    path = tmp_path / "claims.npz"
    with zipfile.ZipFile(path, "w") as archive:
        _claiming(archive, "x", (4_000_000, 784), "|u1")  # 3.1 GB claimed, ~1 kB stored
        _claiming(archive, "y", (4_000_000,), "<i8")
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match="MAX_NPZ_BYTES") as info:
            load_dataset(str(path), "test")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(path) in str(info.value) and "'x'" in str(info.value)
    assert peak < 50 * 2**20


def test_real_inflation_over_the_cap_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A complete, valid file whose arrays inflate past the cap (lowered here to 1 MiB)."""
    path = tmp_path / "bomb.npz"
    np.savez_compressed(path, x=np.zeros((4096, 784), np.uint8), y=np.zeros(4096, np.int64))
    assert path.stat().st_size < 50_000  # 3.2 MB of arrays
    monkeypatch.setattr(npz_reader, "MAX_NPZ_BYTES", 2**20)
    with pytest.raises(InputError, match=r"cap of 1,048,576 bytes .*\(MAX_NPZ_BYTES\)"):
        load_dataset(str(path), "test")


class _Boom:
    """Unpickling it would leave a file behind: proof that nothing is unpickled."""

    flag = ""

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path(self.flag).write_text, ("unpickled",))


def test_object_arrays_are_refused_never_unpickled(tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    boom = _Boom()
    boom.flag = str(flag)
    path = tmp_path / "objects.npz"
    with zipfile.ZipFile(path, "w") as archive:
        _member(archive, "x", _X)
        _member(archive, "y", np.array([0, boom, 1], dtype=object))
    with pytest.raises(InputError, match="'y' is an object array"):
        load_dataset(str(path), "test")
    assert not flag.exists()


def test_label_keys_of_other_splits_are_checked_from_the_header(tmp_path: Path) -> None:
    """n_classes comes from y, y_train, y_test only; a huge unrelated y_* is not read."""
    path = tmp_path / "splits.npz"
    with zipfile.ZipFile(path, "w") as archive:
        _member(archive, "x_test", _X)
        _member(archive, "y_test", _Y)
        _member(archive, "y_train", np.array([4]))
        _claiming(archive, "y_extra", (10**12,), "<i8")
    assert load_dataset(str(path), "test").n_classes == 5


def test_subset_converts_only_the_chosen_rows(tmp_path: Path) -> None:
    path = tmp_path / "big.npz"
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (20_000, 784), dtype=np.uint8)  # 15.7 MB; 62.7 MB as float32
    y = rng.integers(0, 10, 20_000)
    np.savez(path, x=x, y=y)
    tracemalloc.start()
    try:
        few, rows = load_subset(str(path), "test", 5, seed=3)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 40 * 2**20, f"peak {peak / 2**20:.1f} MiB: x was converted whole"
    whole = subset(load_dataset(str(path), "test"), 5, seed=3)
    assert np.array_equal(few.x, whole.x) and np.array_equal(few.y, whole.y)
    assert rows.tolist() == sorted(rows.tolist()) and len(rows) == 5
    np.testing.assert_allclose(few.x, x[rows] / np.float32(255.0))


def test_subset_of_named_datasets_matches_subset() -> None:
    few, rows = load_subset("fashion-mnist-slice", "test", 7, seed=1)
    whole = load_dataset("fashion-mnist-slice", "test")
    assert np.array_equal(few.x, whole.x[rows]) and np.array_equal(few.y, whole.y[rows])
    with pytest.raises(InputError, match=">= 1"):
        load_subset("fashion-mnist-slice", "test", 0)


# -- IDX ---------------------------------------------------------------------------------------


def _idx_header(dims: tuple[int, ...]) -> bytes:
    return struct.pack(">HBB", 0, 0x08, len(dims)) + struct.pack(f">{len(dims)}I", *dims)


def test_idx_header_over_the_cap_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "images-idx3-ubyte.gz"
    dims = (1000, 28, 28)
    with gzip.open(path, "wb") as handle:
        handle.write(_idx_header(dims) + bytes(1000 * 28 * 28))
    monkeypatch.setattr(idx_module, "MAX_IDX_BYTES", 100_000)
    with pytest.raises(InputError, match=r"784,000 values, over the cap .*MAX_IDX_BYTES"):
        read_idx(path, 3)


def test_idx_raw_file_is_checked_against_its_size_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "images-idx3-ubyte"
    path.write_bytes(_idx_header((60_000, 28, 28)) + bytes(100))
    with pytest.raises(InputError, match=r"truncated: header says .* file holds 100"):
        read_idx(path, 3)


def test_idx_gzip_is_inflated_only_as_far_as_the_header_claims(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "labels-idx1-ubyte.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(_idx_header((10,)))
        handle.write(bytes(64 << 20))  # 64 MiB of trailing zeros in ~64 kB
    inflated = [0]
    real_open = gzip.open

    class Counting(io.RawIOBase):
        def __init__(self, inner: IO[bytes]) -> None:
            self.inner = inner

        def read(self, size: int = -1) -> bytes:
            data = self.inner.read(size)
            inflated[0] += len(data)
            return data

        def readable(self) -> bool:
            return True

        def close(self) -> None:
            self.inner.close()
            super().close()

    def counting_open(*args: Any, **kwargs: Any) -> Any:
        return Counting(real_open(*args, **kwargs))

    monkeypatch.setattr(gzip, "open", counting_open)
    with pytest.raises(InputError, match="has trailing bytes"):
        read_idx(path, 1)
    assert inflated[0] <= 8 + 10 + 1
