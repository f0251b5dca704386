"""Downloading the named data sets from their official sources into the data cache.

:func:`fetch` is the one place robustprop downloads anything, and only when asked
(``verify data fetch NAME``); loading never downloads. Each file is pinned by its checksum:

- **Fashion-MNIST**: the four IDX ``.gz`` files of zalando's release, from its S3 mirror
  (the address its README gives), else from the GitHub repository, pinned by SHA-256 (that of
  the byte-identical files in ``../shared/data/fashion_mnist``, whose MD5s equal the ones
  zalando publishes). They are stored as they are: ``<cache>/fashion_mnist/*.gz``, what
  :func:`~robustprop.training.data.load_dataset` reads.
- **GTSRB**: the three archives of the official benchmark (INI, Ruhr-Universität Bochum; hosted
  at ERDA): final training images, final test images, test ground truth. Their publishers give
  no SHA-256; they are pinned by the MD5s that torchvision (test archives) and DeepMind's
  dm_nevis (training archive) publish for them. They are converted into
  ``<cache>/gtsrb/gtsrb_32x32.npz`` (:mod:`robustprop.training.gtsrb_source`), what the loader
  reads, and then removed.

The cache is ``--cache-dir``, else ``$ROBUSTPROP_DATA``, else ``~/.cache/robustprop/data``
(``$ROBUSTPROP_CACHE_DIR/data`` when that is set).
A download goes to ``NAME.part`` beside its target, is checked, then renamed: a file with the
wrong checksum is deleted and raises :class:`ChecksumError` naming the file and both
checksums; an interrupted download is resumed from its ``.part`` (HTTP range request) on the
next run. A present file with the right checksum is not downloaded again.

``$ROBUSTPROP_DATA_URL`` replaces every source's address by ``<that URL>/<file name>`` (a
local mirror; the tests serve files from 127.0.0.1).
"""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol

from robustprop.properties.errors import InputError
from robustprop.training.cache import cache_dir as robustprop_cache_dir
from robustprop.training.gtsrb_source import NPZ_NAME, build_from_official

__all__ = [
    "DATA_CACHE_ENV",
    "DATA_URL_ENV",
    "SOURCES",
    "ChecksumError",
    "FetchResult",
    "Progress",
    "Remote",
    "Source",
    "data_cache_dir",
    "fetch",
    "file_digest",
]

logger = logging.getLogger(__name__)

DATA_CACHE_ENV: Final = "ROBUSTPROP_DATA"
DATA_URL_ENV: Final = "ROBUSTPROP_DATA_URL"
_CHUNK: Final = 1 << 20
_TIMEOUT_S: Final = 60.0
_ALGORITHMS: Final = ("sha256", "md5")


class Progress(Protocol):
    """What a download reports to: a ``tqdm`` bar fits."""

    def update(self, n: int) -> object: ...

    def close(self) -> None: ...


#: ``(file name, total bytes or None) -> Progress``; the CLI passes a tqdm bar on a terminal.
ProgressFactory = Callable[[str, "int | None"], Progress]


class _Silent:
    def update(self, n: int) -> object:
        return None

    def close(self) -> None:
        return None


def _no_progress(name: str, total: int | None) -> Progress:
    return _Silent()


class ChecksumError(InputError):
    """A downloaded file's checksum is not the pinned one (the file was deleted)."""

    def __init__(self, path: Path, url: str, algorithm: str, expected: str, actual: str) -> None:
        super().__init__(
            f"{path.name}: {algorithm} checksum mismatch for {url}: expected {expected}, "
            f"got {actual}; the download was deleted and nothing stored in its place (a "
            "broken mirror or a damaged transfer: run the command again)"
        )
        self.path, self.expected, self.actual = path, expected, actual


@dataclass(frozen=True)
class Remote:
    """One file to download: its name in the cache, its addresses (tried in order), its
    checksum (``algorithm`` ``sha256`` or ``md5``) and, when known, its size in bytes."""

    name: str
    urls: tuple[str, ...]
    digest: str
    algorithm: str = "sha256"
    size: int | None = None

    def __post_init__(self) -> None:
        if self.algorithm not in _ALGORITHMS:
            raise ValueError(f"{self.name}: checksum algorithm must be one of {_ALGORITHMS}")
        if not self.urls or "/" in self.name:
            raise ValueError(f"{self.name}: needs a plain file name and at least one URL")


@dataclass(frozen=True)
class Source:
    """A data set: the files to download into ``<cache>/<folder>/``, and how to turn them into
    what the loader reads (``build``: downloaded paths, target folder -> the files it wrote;
    ``None``: the downloads are what the loader reads). ``product`` names the built files; when
    they are all present, nothing is downloaded."""

    name: str
    folder: str
    remotes: tuple[Remote, ...]
    build: Callable[[dict[str, Path], Path], None] | None = None
    product: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class FetchResult:
    """Where the data set now is, and which files this call downloaded."""

    folder: Path
    downloaded: tuple[str, ...]
    present: tuple[str, ...]
    built: tuple[str, ...]


def data_cache_dir(cache_dir: Path | str | None = None) -> Path:
    """``cache_dir``, else ``$ROBUSTPROP_DATA``, else ``data/`` in robustprop's cache directory
    (``$ROBUSTPROP_CACHE_DIR``, else ``~/.cache/robustprop``); not created here."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get(DATA_CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return robustprop_cache_dir() / "data"


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """The hex digest of ``path``'s bytes."""
    digest = hashlib.new(algorithm)
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _urls(remote: Remote) -> tuple[str, ...]:
    base = os.environ.get(DATA_URL_ENV)
    if base:
        return (f"{base.rstrip('/')}/{remote.name}",)
    return remote.urls


def _transfer(url: str, part: Path, progress: ProgressFactory, size: int | None) -> None:
    """Append ``url``'s bytes to ``part``, resuming from its length when the server allows."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "robustprop"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:
        if have and response.status != 206:  # the server sends the whole file again
            logger.info("%s: the server does not resume; downloading it again", url)
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else size
        bar = progress(part.name.removesuffix(".part"), total)
        try:
            bar.update(have)
            with part.open("ab" if have else "wb") as out:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    bar.update(len(chunk))
        finally:
            bar.close()


def _download(remote: Remote, folder: Path, progress: ProgressFactory) -> Path:
    target = folder / remote.name
    part = folder / f"{remote.name}.part"
    errors = []
    for url in _urls(remote):
        try:
            _transfer(url, part, progress, remote.size)
        except (urllib.error.URLError, OSError, ValueError) as err:
            reason = _reason(err)
            errors.append(f"{url}: {reason}")
            logger.warning("download failed: %s: %s", url, reason)
            continue
        actual = file_digest(part, remote.algorithm)
        if actual != remote.digest:
            part.unlink()
            raise ChecksumError(target, url, remote.algorithm, remote.digest, actual)
        os.replace(part, target)
        return target
    kept = f"; the partial file {part} is resumed on the next run" if part.exists() else ""
    raise InputError(f"{remote.name}: could not download it ({'; '.join(errors)}){kept}")


def _reason(err: Exception) -> str:
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    return str(getattr(err, "reason", err))


def _is_good(path: Path, remote: Remote) -> bool:
    if not path.is_file():
        return False
    actual = file_digest(path, remote.algorithm)
    if actual == remote.digest:
        return True
    logger.warning(
        "%s: %s %s is not the pinned %s; downloading it again",
        *(path, remote.algorithm, actual, remote.digest),
    )
    return False


def fetch(
    source: Source, cache_dir: Path | str | None = None, progress: ProgressFactory | None = None
) -> FetchResult:
    """Download ``source`` into ``data_cache_dir(cache_dir) / source.folder`` (see the module).

    Raises:
        ChecksumError: a downloaded file is not the pinned one (it is deleted).
        InputError: every address of a file failed, or the cache cannot be written.
    """
    folder = data_cache_dir(cache_dir) / source.folder
    if source.product and all((folder / name).is_file() for name in source.product):
        return FetchResult(folder, (), source.product, ())
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"cannot create the data cache {folder} ({err})") from err
    report = progress or _no_progress
    downloaded, present, paths = [], [], {}
    for remote in source.remotes:
        path = folder / remote.name
        if _is_good(path, remote):
            present.append(remote.name)
        else:
            path = _download(remote, folder, report)
            downloaded.append(remote.name)
        paths[remote.name] = path
    built: tuple[str, ...] = ()
    if source.build is not None:
        source.build(paths, folder)
        built = source.product
        for path in paths.values():  # the archives served their purpose
            path.unlink(missing_ok=True)
    return FetchResult(folder, tuple(downloaded), tuple(present), built)


# ---- the official sources -----------------------------------------------------------------

_FASHION_S3 = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com"
_FASHION_GITHUB = "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion"
_FASHION: Final = (
    ("train-images-idx3-ubyte.gz", 26_421_880,
     "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
    ("train-labels-idx1-ubyte.gz", 29_515,
     "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"),
    ("t10k-images-idx3-ubyte.gz", 4_422_102,
     "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
    ("t10k-labels-idx1-ubyte.gz", 5_148,
     "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
)  # fmt: skip

_GTSRB_BASE = "https://sid.erda.dk/public/archives/daaeac0d7ce1152aea9b61d9f1e19370"
_GTSRB: Final = (
    ("GTSRB_Final_Training_Images.zip", "f33fd80ac59bff73c82d25ab499e03a3"),
    ("GTSRB_Final_Test_Images.zip", "c7e4e6327067d32654124b0fe9e82185"),
    ("GTSRB_Final_Test_GT.zip", "fe31e9c9270bbcd7b84b7f21a9d9d9e5"),
)


def _fashion_source() -> Source:
    remotes = tuple(
        Remote(name, (f"{_FASHION_S3}/{name}", f"{_FASHION_GITHUB}/{name}"), digest, size=size)
        for name, size, digest in _FASHION
    )
    return Source("fashion-mnist", "fashion_mnist", remotes)


def _gtsrb_source() -> Source:
    remotes = tuple(
        Remote(name, (f"{_GTSRB_BASE}/{name}",), digest, algorithm="md5") for name, digest in _GTSRB
    )
    return Source(
        "gtsrb",
        "gtsrb",
        remotes,
        build=build_from_official,
        product=(NPZ_NAME,),
    )


#: The data sets ``verify data fetch`` knows, by name.
SOURCES: Final[dict[str, Source]] = {"fashion-mnist": _fashion_source(), "gtsrb": _gtsrb_source()}
