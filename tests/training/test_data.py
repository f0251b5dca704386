"""Dataset loading: real files from ../shared/data, the bundled slice, and .npz validation."""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import os
import struct
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from robustprop.properties.errors import InputError
from robustprop.training import data as data_mod
from robustprop.training import gtsrb as gtsrb_mod
from robustprop.training.data import (
    DEFAULT_DATA_DIR,
    Dataset,
    load_dataset,
    resolve_data_dir,
    subset,
    subset_indices,
)
from robustprop.training.slices import make_slice

SHARED = DEFAULT_DATA_DIR
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"{SHARED} is absent")

# Per-class counts of the GTSRB test split, from ../shared/data/gtsrb/README.md.
GTSRB_TEST_COUNTS = [
    60, 720, 750, 450, 660, 630, 150, 450, 450, 480, 660, 420, 690, 720, 270, 210,
    150, 360, 390, 60, 90, 90, 120, 150, 90, 480, 180, 60, 150, 90, 150, 270, 60,
    210, 120, 390, 120, 60, 690, 90, 90, 60, 90,
]  # fmt: skip


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the caller's data-dir setting or writes the user's cache."""
    monkeypatch.delenv(data_mod.DATA_ENV, raising=False)
    monkeypatch.delenv("ROBUSTPROP_DATA", raising=False)  # the download cache (verify data fetch)
    monkeypatch.setenv("ROBUSTPROP_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="session")
def gtsrb_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for all real-GTSRB tests, so each variant is decoded once per session."""
    return tmp_path_factory.mktemp("gtsrb-cache")


def _save_npz(path: Path, **arrays: npt.ArrayLike) -> Path:
    np.savez(path, **arrays)  # type: ignore[arg-type]  # numpy's stub confuses **kwargs
    return path


# --- real data ------------------------------------------------------------------------


@needs_shared
@pytest.mark.parametrize(("split", "count"), [("train", 6000), ("test", 1000)])
def test_fashion_mnist_matches_readme(split: str, count: int) -> None:
    ds = load_dataset("fashion-mnist", split)
    assert ds.x.shape == (10 * count, 784) and ds.x.dtype == np.float32
    assert ds.y.dtype == np.int64 and ds.input_shape == (1, 28, 28) and ds.n_classes == 10
    assert np.bincount(ds.y).tolist() == [count] * 10
    assert ds.x.min() == 0.0 and ds.x.max() == 1.0
    mean = {"train": 72.94, "test": 73.15}[split] / 255
    assert abs(float(ds.x.mean()) - mean) < 0.01 / 255


@needs_shared
def test_gtsrb_test_split_matches_readme(
    monkeypatch: pytest.MonkeyPatch, gtsrb_cache: Path
) -> None:
    monkeypatch.setenv("ROBUSTPROP_CACHE_DIR", str(gtsrb_cache))
    g32 = load_dataset("gtsrb", "test")
    g48 = load_dataset("gtsrb48", "test")
    assert g32.x.shape == (12630, 1024) and g32.input_shape == (1, 32, 32)
    assert g48.x.shape == (12630, 2304) and g48.input_shape == (1, 48, 48)
    for ds in (g32, g48):
        assert ds.n_classes == 43 and ds.x.dtype == np.float32
        assert np.bincount(ds.y, minlength=43).tolist() == GTSRB_TEST_COUNTS
        assert ds.x.min() >= 0.0 and ds.x.max() <= 1.0
    # Bilinear upsampling preserves the mean brightness closely.
    assert abs(float(g32.x.mean()) - float(g48.x.mean())) < 1e-3
    again = load_dataset("gtsrb48", "test")  # from the cache
    assert np.array_equal(again.x, g48.x) and np.array_equal(again.y, g48.y)


# --- the bundled slice ----------------------------------------------------------------


@pytest.mark.parametrize(("split", "per_class"), [("train", 200), ("test", 50)])
def test_slice_is_class_balanced(split: str, per_class: int) -> None:
    ds = load_dataset("fashion-mnist-slice", split)
    assert ds.x.shape == (10 * per_class, 784) and ds.input_shape == (1, 28, 28)
    assert np.bincount(ds.y).tolist() == [per_class] * 10
    assert ds.x.min() >= 0.0 and ds.x.max() <= 1.0 and ds.name == "fashion-mnist-slice"


def test_slice_file_is_small_uint8() -> None:
    path = make_slice.DEFAULT_OUT
    assert path.stat().st_size <= 2 * 1024 * 1024
    with np.load(path) as archive:
        assert sorted(archive.files) == ["x_test", "x_train", "y_test", "y_train"]
        assert archive["x_train"].dtype == np.uint8 and archive["x_train"].shape == (2000, 28, 28)


@needs_shared
def test_slice_is_reproducible_from_shared_data(tmp_path: Path) -> None:
    out = tmp_path / "slice.npz"
    make_slice.main(["--out", str(out)])
    committed = make_slice.DEFAULT_OUT.read_bytes()
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(committed).digest()


# --- GTSRB decoding and its cache (on a small fake archive) -----------------------------


@pytest.fixture
def fake_gtsrb(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    folder = tmp_path / "data" / "gtsrb"
    folder.mkdir(parents=True)
    x = rng.integers(0, 256, size=(5, 32, 32, 3), dtype=np.uint8)
    x[0] = [255, 0, 0]  # pure red: luma 0.299
    x[1] = 255  # white: luma 1
    _save_npz(folder / "gtsrb_32x32.npz", x_test=x, y_test=np.array([0, 1, 2, 42, 7], np.uint8))
    return tmp_path / "data"


def test_gtsrb_luma_and_resize(fake_gtsrb: Path) -> None:
    g32 = load_dataset("gtsrb", "test", fake_gtsrb)
    g48 = load_dataset("gtsrb48", "test", fake_gtsrb)
    assert g32.y.tolist() == [0, 1, 2, 42, 7] and g32.n_classes == 43
    np.testing.assert_allclose(g32.x[0], 0.299, atol=1e-6)
    np.testing.assert_allclose(g48.x[0], 0.299, atol=1e-6)  # a constant image stays constant
    assert g32.x[1].min() == 1.0 and g48.x[1].max() == 1.0


def test_gtsrb_cache_is_used_and_keyed_by_mtime(
    fake_gtsrb: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = load_dataset("gtsrb48", "test", fake_gtsrb)
    entries = list(Path(os.environ["ROBUSTPROP_CACHE_DIR"]).iterdir())
    assert len(entries) == 1 and entries[0].name.startswith("gtsrb48-test-")

    def no_decode(*args: object) -> None:
        raise AssertionError("decoded despite a valid cache entry")

    monkeypatch.setattr(gtsrb_mod, "_decode", no_decode)
    assert np.array_equal(load_dataset("gtsrb48", "test", fake_gtsrb).x, first.x)
    source = fake_gtsrb / "gtsrb" / "gtsrb_32x32.npz"
    os.utime(source, ns=(0, 10**18))  # a changed source must not be served from the cache
    with pytest.raises(AssertionError, match="decoded"):
        load_dataset("gtsrb48", "test", fake_gtsrb)


def test_gtsrb_corrupt_cache_is_rebuilt(fake_gtsrb: Path, caplog: pytest.LogCaptureFixture) -> None:
    first = load_dataset("gtsrb", "test", fake_gtsrb)
    (entry,) = Path(os.environ["ROBUSTPROP_CACHE_DIR"]).iterdir()
    entry.write_bytes(b"garbage")
    with caplog.at_level(logging.WARNING):
        again = load_dataset("gtsrb", "test", fake_gtsrb)
    assert np.array_equal(again.x, first.x) and "unreadable cache entry" in caplog.text


def test_gtsrb_missing_split_names_file(fake_gtsrb: Path) -> None:
    with pytest.raises(InputError, match=r"gtsrb_32x32\.npz.*x_train"):
        load_dataset("gtsrb", "train", fake_gtsrb)


# --- Fashion-MNIST IDX errors (fake files) ---------------------------------------------


def _write_idx(path: Path, array: npt.NDArray[np.uint8], *, truncate: int = 0) -> None:
    header = struct.pack(">HBB", 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.tobytes()
    with gzip.open(path, "wb") as handle:
        handle.write(raw[: len(raw) - truncate])


@pytest.fixture
def fake_fashion(tmp_path: Path) -> Path:
    folder = tmp_path / "fashion_mnist"
    folder.mkdir()
    _write_idx(folder / "t10k-images-idx3-ubyte.gz", np.full((3, 28, 28), 255, np.uint8))
    _write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.array([0, 9, 4], np.uint8))
    return tmp_path


def test_fake_fashion_mnist_loads(fake_fashion: Path) -> None:
    ds = load_dataset("fashion-mnist", "test", fake_fashion)
    assert ds.y.tolist() == [0, 9, 4] and ds.x.shape == (3, 784) and ds.x.max() == 1.0
    # The folder itself may be given as the data dir.
    assert len(load_dataset("fashion-mnist", "test", fake_fashion / "fashion_mnist")) == 3


def test_truncated_idx_names_file(fake_fashion: Path) -> None:
    images = fake_fashion / "fashion_mnist" / "t10k-images-idx3-ubyte.gz"
    _write_idx(images, np.zeros((3, 28, 28), np.uint8), truncate=100)
    with pytest.raises(InputError, match=r"t10k-images-idx3-ubyte\.gz: truncated"):
        load_dataset("fashion-mnist", "test", fake_fashion)


def test_corrupt_gzip_names_file(fake_fashion: Path) -> None:
    labels = fake_fashion / "fashion_mnist" / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x03abc")[:-6])
    with pytest.raises(InputError, match=r"t10k-labels-idx1-ubyte\.gz"):
        load_dataset("fashion-mnist", "test", fake_fashion)


def test_wrong_idx_magic_and_count_mismatch(fake_fashion: Path) -> None:
    folder = fake_fashion / "fashion_mnist"
    _write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.array([1, 2], np.uint8))
    with pytest.raises(InputError, match=r"3 images but .*t10k-labels.* has 2 labels"):
        load_dataset("fashion-mnist", "test", fake_fashion)
    _write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.zeros((3, 1), np.uint8))
    with pytest.raises(InputError, match=r"t10k-labels-idx1-ubyte\.gz: not a uint8 IDX"):
        load_dataset("fashion-mnist", "test", fake_fashion)


def test_missing_fashion_file_says_how_to_point(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"train-images-idx3-ubyte\.gz.*ROBUSTPROP_DATA_DIR"):
        load_dataset("fashion-mnist", "train", tmp_path)


# --- data directory resolution ---------------------------------------------------------


def test_data_dir_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    arg, env = tmp_path / "arg", tmp_path / "env"
    arg.mkdir()
    env.mkdir()
    monkeypatch.setenv("ROBUSTPROP_DATA_DIR", str(env))
    assert resolve_data_dir(arg) == arg
    assert resolve_data_dir() == env
    monkeypatch.setenv("ROBUSTPROP_DATA_DIR", str(tmp_path / "nope"))
    with pytest.raises(InputError, match="ROBUSTPROP_DATA_DIR"):
        resolve_data_dir()
    monkeypatch.delenv("ROBUSTPROP_DATA_DIR")
    monkeypatch.setattr(data_mod, "DEFAULT_DATA_DIR", tmp_path / "absent")
    with pytest.raises(InputError, match=r"--data-dir.*ROBUSTPROP_DATA_DIR.*never downloaded"):
        resolve_data_dir()
    with pytest.raises(InputError, match=r"nope.*does not exist"):
        resolve_data_dir(tmp_path / "nope")


def test_unknown_name_and_bad_split() -> None:
    with pytest.raises(InputError, match=r"unknown dataset 'cifar'.*fashion-mnist"):
        load_dataset("cifar", "train")
    with pytest.raises(InputError, match="split must be"):
        load_dataset("fashion-mnist-slice", "valid")


# --- .npz files ------------------------------------------------------------------------


def test_npz_uint8_any_sample_shape(tmp_path: Path) -> None:
    path = _save_npz(
        tmp_path / "d.npz", x=np.full((4, 3, 2), 51, np.uint8), y=np.array([0, 2, 1, 2])
    )
    ds = load_dataset(str(path), "test")
    assert ds.x.shape == (4, 6) and ds.input_shape == (3, 2) and ds.n_classes == 3
    np.testing.assert_allclose(ds.x, 0.2)
    assert ds.name == str(path)


def test_npz_split_keys_and_n_classes(tmp_path: Path) -> None:
    path = _save_npz(
        tmp_path / "d.npz",
        x_train=np.zeros((2, 4), np.float32),
        y_train=np.array([0, 1]),
        x_test=np.ones((1, 4), np.float64),
        y_test=np.array([3]),
        n_classes=np.int64(5),
    )
    train, test = load_dataset(str(path), "train"), load_dataset(str(path), "test")
    assert len(train) == 2 and len(test) == 1 and train.n_classes == test.n_classes == 5
    assert test.x.dtype == np.float32


_GOOD_X = np.zeros((3, 4), np.float32)
_GOOD_Y = np.array([0, 1, 2])
_NAN_X = np.array([[0.5, np.nan, 0, 0]] * 3, np.float32)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x": np.zeros(3, np.float32), "y": _GOOD_Y}, r"shape \(N, \.\.\.\)"),
        ({"x": _GOOD_X, "y": _GOOD_Y[:, None]}, r"'y' must have shape \(N,\)"),
        ({"x": _GOOD_X, "y": _GOOD_Y[:2]}, "3 samples but 'y' has 2 labels"),
        ({"x": _NAN_X, "y": _GOOD_Y}, "non-finite"),
        ({"x": _GOOD_X + 2, "y": _GOOD_Y}, r"must lie in \[0, 1\]"),
        ({"x": _GOOD_X.astype(np.int64), "y": _GOOD_Y}, "dtype int64"),
        ({"x": _GOOD_X, "y": np.array([0, -1, 2])}, r"labels must lie in 0\.\.2, found -1\.\.2"),
        ({"x": _GOOD_X, "y": _GOOD_Y, "n_classes": np.int64(2)}, r"labels must lie in 0\.\.1"),
        ({"x": _GOOD_X, "y": _GOOD_Y.astype(np.float32)}, "integer labels"),
        ({"x": np.zeros((0, 4), np.float32), "y": np.zeros(0, np.int64)}, "empty"),
        ({"a": _GOOD_X}, r"missing keys 'x' and 'y'.*found: a"),
        ({"x": _GOOD_X}, "has 'x' but no 'y'"),
    ],
    ids=[
        "x-1d",
        "y-2d",
        "length-mismatch",
        "nan",
        "out-of-unit-range",
        "int64-images",
        "negative-label",
        "label-above-n_classes",
        "float-labels",
        "empty",
        "no-keys",
        "no-y",
    ],
)
def test_npz_rejections_name_the_file(
    tmp_path: Path, arrays: dict[str, npt.NDArray[np.generic]], message: str
) -> None:
    path = _save_npz(tmp_path / "bad.npz", **arrays)
    with pytest.raises(InputError, match=message) as info:
        load_dataset(str(path), "train")
    assert str(path) in str(info.value)


def _truncated_npz(path: Path) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, x=_GOOD_X, y=_GOOD_Y)
    path.write_bytes(buffer.getvalue()[:-40])


def _npy_named_npz(path: Path) -> None:
    with path.open("wb") as handle:
        np.save(handle, _GOOD_X)


@pytest.mark.parametrize(
    "make",
    [
        lambda p: p.write_bytes(b"this is not a zip archive at all"),
        lambda p: p.write_bytes(b""),
        _truncated_npz,
        _npy_named_npz,
    ],
    ids=["garbage", "empty-file", "truncated", "npy"],
)
def test_corrupt_npz_names_the_file(tmp_path: Path, make: object) -> None:
    path = tmp_path / "broken.npz"
    make(path)  # type: ignore[operator]
    with pytest.raises(InputError) as info:
        load_dataset(str(path), "test")
    assert str(path) in str(info.value)


def test_missing_npz_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"absent\.npz: no such file"):
        load_dataset(str(tmp_path / "absent.npz"), "test")


# --- Dataset, subset --------------------------------------------------------------------


def test_dataset_checks_its_arrays() -> None:
    with pytest.raises(InputError, match="float32"):
        Dataset(np.zeros((2, 3), np.float32), np.zeros(2, np.int64), 2, (1, 2, 2), "t")
    with pytest.raises(InputError, match="int64"):
        Dataset(np.zeros((2, 4), np.float32), np.zeros(3, np.int64), 2, (1, 2, 2), "t")


def test_subset_is_deterministic_sorted_and_distinct() -> None:
    ds = load_dataset("fashion-mnist-slice", "test")
    a, b = subset(ds, 40, seed=7), subset(ds, 40, seed=7)
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y) and len(a) == 40
    idx = subset_indices(len(ds), 40, seed=7)
    assert np.all(np.diff(idx) > 0) and np.array_equal(a.y, ds.y[idx])
    assert not np.array_equal(idx, subset_indices(len(ds), 40, seed=8))
    assert subset_indices(500, 3, seed=None).tolist() == [0, 1, 2]
    assert len(subset(ds, 10_000)) == len(ds)
    with pytest.raises(InputError, match=">= 1"):
        subset(ds, 0)


def test_public_names_exist() -> None:
    for module in (data_mod, gtsrb_mod, make_slice):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"
