"""Downloading data sets (`verify data fetch`) from a local HTTP server on 127.0.0.1.

The server serves bytes with the pinned checksum (the real Fashion-MNIST files of
../shared/data, or small GTSRB-shaped archives made here) and bytes with a wrong one. Nothing is
fetched from the internet: ``$ROBUSTPROP_DATA_URL`` points every source at the local server.
"""

from __future__ import annotations

import hashlib
import io
import threading
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

import robustprop.training.data as data_mod
from robustprop.properties.errors import InputError
from robustprop.training import gtsrb_source
from robustprop.training.data import DEFAULT_DATA_DIR, load_dataset
from robustprop.training.fetch import (
    DATA_CACHE_ENV,
    DATA_URL_ENV,
    SOURCES,
    ChecksumError,
    Remote,
    Source,
    data_cache_dir,
    fetch,
)
from robustprop.training.gtsrb import GTSRB_FILE
from robustprop.verify.cli.main import cli

SHARED_FASHION = DEFAULT_DATA_DIR / "fashion_mnist"
needs_shared = pytest.mark.skipif(not SHARED_FASHION.is_dir(), reason=f"{SHARED_FASHION} is absent")


@dataclass
class Server:
    """Files by name; ``ranges``: honour ``Range`` requests; ``log``: (name, Range) served."""

    files: dict[str, bytes]
    ranges: bool = True
    log: list[tuple[str, str | None]] = field(default_factory=list)
    url: str = ""


def _handler(server: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            name = self.path.lstrip("/")
            wanted = self.headers.get("Range")
            server.log.append((name, wanted))
            body = server.files.get(name)
            if body is None:
                self.send_error(404)
                return
            start = 0
            if wanted and server.ranges:
                start = int(wanted.removeprefix("bytes=").split("-")[0])
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            self.wfile.write(body[start:])

        def log_message(self, format: str, *args: object) -> None:
            return None

    return Handler


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    server = Server({})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(server))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    monkeypatch.setenv(DATA_URL_ENV, server.url)
    yield server
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(data_mod.DATA_ENV, raising=False)
    monkeypatch.setenv(DATA_CACHE_ENV, str(tmp_path / "data-cache"))
    monkeypatch.setenv("ROBUSTPROP_CACHE_DIR", str(tmp_path / "decoded"))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _source(files: Mapping[str, bytes], algorithm: str = "sha256") -> Source:
    remotes = tuple(
        Remote(n, ("http://invalid.example/" + n,), hashlib.new(algorithm, b).hexdigest(),
               algorithm=algorithm)
        for n, b in files.items()
    )  # fmt: skip
    return Source("test", "test", remotes)


# ---- Fashion-MNIST through the command line ------------------------------------------------


@needs_shared
def test_fetch_fashion_mnist_checks_stores_and_loads(serve: Server, tmp_path: Path) -> None:
    serve.files = {p.name: p.read_bytes() for p in SHARED_FASHION.glob("*.gz")}
    cache = tmp_path / "cache"
    result = CliRunner().invoke(cli, ["data", "fetch", "fashion-mnist", "--cache-dir", str(cache)])
    assert result.exit_code == 0, result.output
    assert "downloaded train-images-idx3-ubyte.gz" in result.output
    stored = sorted(p.name for p in (cache / "fashion_mnist").iterdir())
    assert stored == sorted(serve.files)  # no .part left over
    for name, body in serve.files.items():
        assert (cache / "fashion_mnist" / name).read_bytes() == body
    test = load_dataset("fashion-mnist", "test", cache)
    assert len(test) == 10_000 and test.input_shape == (1, 28, 28)

    served = len(serve.log)
    again = CliRunner().invoke(cli, ["data", "fetch", "fashion-mnist", "--cache-dir", str(cache)])
    assert again.exit_code == 0 and "already present" in again.output
    assert len(serve.log) == served  # nothing downloaded again


def test_wrong_checksum_exits_2_naming_file_and_both_checksums(
    serve: Server, tmp_path: Path
) -> None:
    bogus = b"not fashion-mnist\n"
    serve.files = {r.name: bogus for r in SOURCES["fashion-mnist"].remotes}
    cache = tmp_path / "cache"
    result = CliRunner().invoke(cli, ["data", "fetch", "fashion-mnist", "--cache-dir", str(cache)])
    assert result.exit_code == 2, result.output
    first = SOURCES["fashion-mnist"].remotes[0]
    assert first.name in result.output
    assert first.digest in result.output and _sha256(bogus) in result.output
    assert list((cache / "fashion_mnist").iterdir()) == []  # nothing kept, not even a .part


def test_the_cache_directory_comes_from_the_environment(
    serve: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve.files = {"a.bin": b"alpha"}
    monkeypatch.setenv(DATA_CACHE_ENV, str(tmp_path / "env-cache"))
    assert data_cache_dir() == tmp_path / "env-cache"
    assert data_cache_dir(tmp_path / "given") == tmp_path / "given"
    monkeypatch.delenv(DATA_CACHE_ENV)
    assert data_cache_dir() == tmp_path / "decoded" / "data"  # in $ROBUSTPROP_CACHE_DIR
    monkeypatch.delenv("ROBUSTPROP_CACHE_DIR")
    assert data_cache_dir() == Path.home() / ".cache" / "robustprop" / "data"


def test_unknown_data_set_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["data", "fetch", "cifar-10"])
    assert result.exit_code == 2 and "fashion-mnist" in result.output


# ---- the download itself -------------------------------------------------------------------


def test_an_interrupted_download_resumes(serve: Server, tmp_path: Path) -> None:
    body = bytes(range(256)) * 40
    serve.files = {"blob.bin": body}
    folder = tmp_path / "c" / "test"
    folder.mkdir(parents=True)
    (folder / "blob.bin.part").write_bytes(body[:1000])
    result = fetch(_source(serve.files), tmp_path / "c")
    assert result.downloaded == ("blob.bin",)
    assert (folder / "blob.bin").read_bytes() == body
    assert serve.log == [("blob.bin", "bytes=1000-")]
    assert not (folder / "blob.bin.part").exists()


def test_a_server_without_ranges_sends_the_whole_file_again(serve: Server, tmp_path: Path) -> None:
    body = b"0123456789" * 100
    serve.files, serve.ranges = {"blob.bin": body}, False
    folder = tmp_path / "c" / "test"
    folder.mkdir(parents=True)
    (folder / "blob.bin.part").write_bytes(b"stale bytes of another file")
    fetch(_source(serve.files), tmp_path / "c")
    assert (folder / "blob.bin").read_bytes() == body


def test_present_files_are_kept_or_replaced_by_their_checksum(
    serve: Server, tmp_path: Path
) -> None:
    serve.files = {"good.bin": b"good", "bad.bin": b"right bytes"}
    folder = tmp_path / "c" / "test"
    folder.mkdir(parents=True)
    (folder / "good.bin").write_bytes(b"good")
    (folder / "bad.bin").write_bytes(b"wrong bytes")
    result = fetch(_source(serve.files), tmp_path / "c")
    assert result.present == ("good.bin",) and result.downloaded == ("bad.bin",)
    assert [name for name, _ in serve.log] == ["bad.bin"]
    assert (folder / "bad.bin").read_bytes() == b"right bytes"


def test_checksum_error_deletes_the_download(serve: Server, tmp_path: Path) -> None:
    source = _source({"blob.bin": b"expected"})
    serve.files = {"blob.bin": b"tampered"}
    with pytest.raises(ChecksumError) as caught:
        fetch(source, tmp_path / "c")
    assert caught.value.expected == _sha256(b"expected")
    assert caught.value.actual == _sha256(b"tampered")
    assert list((tmp_path / "c" / "test").iterdir()) == []


def test_an_unreachable_source_says_so(serve: Server, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"missing\.bin: could not download it .*404"):
        fetch(_source({"missing.bin": b"x"}), tmp_path / "c")


# ---- GTSRB: the official archives, converted ------------------------------------------------


def _ppm(image: np.ndarray) -> bytes:
    h, w, _ = image.shape
    return f"P6\n# made by the test\n{w} {h}\n255\n".encode() + image.tobytes()


def _zip(members: Mapping[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, body in members.items():
            archive.writestr(name, body)
    return out.getvalue()


HEADER = "Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\n"


def _gtsrb_archives(rng: np.random.Generator) -> tuple[dict[str, bytes], list[np.ndarray]]:
    train: dict[str, bytes] = {}
    for cls in (0, 42):
        folder = f"GTSRB/Final_Training/Images/{cls:05d}/"
        rows = HEADER
        for frame in range(2):
            image = rng.integers(0, 256, size=(40 + frame, 35, 3), dtype=np.uint8)
            name = f"00000_{frame:05d}.ppm"
            train[folder + name] = _ppm(image)
            rows += f"{name};35;{40 + frame};5;5;30;{35 + frame};{cls}\n"
        train[f"{folder}GT-{cls:05d}.csv"] = rows.encode()
    tests, truth = [], HEADER
    test_members = {}
    for i, cls in enumerate((7, 3, 42)):
        image = rng.integers(0, 256, size=(30 + i, 33, 3), dtype=np.uint8)
        tests.append(image)
        test_members[f"GTSRB/Final_Test/Images/{i:05d}.ppm"] = _ppm(image)
        truth += f"{i:05d}.ppm;33;{30 + i};1;1;30;{27 + i};{cls}\n"
    files = {
        gtsrb_source.TRAIN_ARCHIVE: _zip(train),
        gtsrb_source.TEST_ARCHIVE: _zip(test_members),
        gtsrb_source.GT_ARCHIVE: _zip({"GT-final_test.csv": truth.encode()}),
    }
    return files, tests


def test_gtsrb_archives_become_the_npz_the_loader_reads(
    serve: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files, test_images = _gtsrb_archives(np.random.default_rng(0))
    serve.files = files
    official = SOURCES["gtsrb"]
    assert {r.name for r in official.remotes} == set(files)
    assert official.product == (GTSRB_FILE,)
    # the official source, with the checksums of the archives made here
    remotes = tuple(
        Remote(r.name, r.urls, hashlib.md5(files[r.name]).hexdigest(), algorithm="md5")
        for r in official.remotes
    )
    source = Source(official.name, official.folder, remotes, official.build, official.product)
    cache = tmp_path / "cache"
    result = fetch(source, cache)
    assert result.built == (GTSRB_FILE,)
    folder = cache / "gtsrb"
    assert sorted(p.name for p in folder.iterdir()) == [GTSRB_FILE]  # archives removed
    with np.load(folder / GTSRB_FILE) as npz:
        assert npz["x_train"].shape == (4, 32, 32, 3) and npz["x_train"].dtype == np.uint8
        assert npz["y_train"].tolist() == [0, 0, 42, 42]
        assert npz["frame_train"].tolist() == [0, 1, 0, 1]
        assert npz["y_test"].tolist() == [7, 3, 42]
        assert npz["size_test"].tolist() == [[33, 30], [33, 31], [33, 32]]
        for got, image in zip(npz["x_test"], test_images, strict=True):
            assert np.array_equal(got, gtsrb_source.resize_bilinear(image))
    # found by the loader through the data-cache fallback, with no directory given
    monkeypatch.setattr(data_mod, "DEFAULT_DATA_DIR", tmp_path / "absent")
    monkeypatch.setenv(DATA_CACHE_ENV, str(cache))
    test = load_dataset("gtsrb", "test")
    assert test.y.tolist() == [7, 3, 42] and test.input_shape == (1, 32, 32)
    served = len(serve.log)
    assert fetch(source, cache).present == (GTSRB_FILE,) and len(serve.log) == served


def test_resize_matches_bilinear_interpolation() -> None:
    """Against torch's bilinear resize (half-pixel centres, no antialiasing): the same up to
    rounding."""
    rng = np.random.default_rng(1)
    for h, w in ((40, 35), (25, 25), (232, 266), (32, 32), (20, 50)):
        image = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        ours = gtsrb_source.resize_bilinear(image).astype(np.float64)
        ref = (
            F.interpolate(
                torch.from_numpy(image.astype(np.float64)).permute(2, 0, 1)[None],
                size=(32, 32),
                mode="bilinear",
                align_corners=False,
                antialias=False,
            )[0]
            .permute(1, 2, 0)
            .numpy()
        )
        assert np.abs(ours - ref).max() <= 0.5 + 1e-9, (h, w)
    same = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    assert np.array_equal(gtsrb_source.resize_bilinear(same), same)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"P5\n2 2\n255\n" + bytes(4), "not a binary PPM"),
        (b"P6\n2 2\n65535\n" + bytes(24), "unsupported PPM"),
        (b"P6\n2 2\n255\n" + bytes(5), "truncated PPM data"),
        (b"P6\n2", "truncated PPM header"),
    ],
)
def test_bad_ppm_is_named(data: bytes, message: str) -> None:
    with pytest.raises(InputError, match=f"img.ppm: {message}"):
        gtsrb_source.read_ppm(data, "img.ppm")


# ---- a missing data set says how to get it; the cache is the fallback ------------------------


def test_missing_data_set_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"verify data fetch fashion-mnist.*--data-dir"):
        load_dataset("fashion-mnist", "test", tmp_path)
    with pytest.raises(
        InputError, match=r"gtsrb_32x32\.npz: no such file.*verify data fetch gtsrb"
    ):
        load_dataset("gtsrb", "test", tmp_path)


def test_no_data_directory_at_all_says_how_to_get_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(data_mod, "DEFAULT_DATA_DIR", tmp_path / "absent")
    with pytest.raises(InputError, match=r"verify data fetch fashion-mnist"):
        load_dataset("fashion-mnist", "test")


@needs_shared
def test_the_data_cache_is_the_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "data-cache"
    (cache / "fashion_mnist").mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (cache / "fashion_mnist" / name).write_bytes((SHARED_FASHION / name).read_bytes())
    monkeypatch.setattr(data_mod, "DEFAULT_DATA_DIR", tmp_path / "absent")
    assert len(load_dataset("fashion-mnist", "test")) == 10_000
    # ../shared/data without the data set: the cache still serves it
    empty = tmp_path / "shared-without-fashion"
    empty.mkdir()
    monkeypatch.setattr(data_mod, "DEFAULT_DATA_DIR", empty)
    assert len(load_dataset("fashion-mnist", "test")) == 10_000
