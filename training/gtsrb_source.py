"""The official GTSRB archives, converted into ``gtsrb_32x32.npz`` (what the loader reads).

Input: the three archives of the benchmark (see :mod:`robustprop.training.fetch`):

- ``GTSRB_Final_Training_Images.zip``: ``GTSRB/Final_Training/Images/000CC/*.ppm`` with one
  ``GT-000CC.csv`` per class (``Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId``);
- ``GTSRB_Final_Test_Images.zip``: ``GTSRB/Final_Test/Images/NNNNN.ppm``;
- ``GTSRB_Final_Test_GT.zip``: ``GT-final_test.csv``, the test labels.

Output: the layout of ``../shared/data/gtsrb/gtsrb_32x32.npz`` (its README): ``x_train``
``(N, 32, 32, 3)`` uint8 RGB, ``y_train`` uint8, ``x_test``, ``y_test``, ``track_train``,
``frame_train``, ``size_*`` and ``roi_*``; training rows sorted by class, then in the order of
the class's CSV; test rows in the order of ``GT-final_test.csv``. Every whole image is resized
to 32×32 bilinearly with OpenCV's ``cv2.resize`` convention (pixel centres at half-integers,
no antialiasing, round to nearest), as the shared file was made, but in numpy: a pixel may
differ from the shared file by a rounding step, so the file is not byte-identical to it.
Only numpy and the standard library: fetching needs no torch.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from robustprop.properties.errors import InputError

__all__ = [
    "GT_ARCHIVE",
    "NPZ_NAME",
    "TEST_ARCHIVE",
    "TRAIN_ARCHIVE",
    "build_from_official",
    "read_ppm",
    "resize_bilinear",
]

logger = logging.getLogger(__name__)

NPZ_NAME: Final = "gtsrb_32x32.npz"
TRAIN_ARCHIVE: Final = "GTSRB_Final_Training_Images.zip"
TEST_ARCHIVE: Final = "GTSRB_Final_Test_Images.zip"
GT_ARCHIVE: Final = "GTSRB_Final_Test_GT.zip"
SIDE: Final = 32
CLASSES: Final = 43
_TRAIN_CSV = re.compile(r"(?:^|/)GT-(\d{5})\.csv$")
_TRACK = re.compile(r"^(\d{5})_(\d{5})\.ppm$")
_MAX_SIDE: Final = 4096  # GTSRB images are at most 266 pixels wide


def read_ppm(data: bytes, name: str) -> npt.NDArray[np.uint8]:
    """A binary PPM (``P6``, maxval 255) as ``(height, width, 3)`` uint8 RGB."""
    pos, fields = 0, list[bytes]()
    while len(fields) < 4:
        while pos < len(data) and data[pos : pos + 1].isspace():
            pos += 1
        if data[pos : pos + 1] == b"#":  # a comment runs to the end of its line
            end = data.find(b"\n", pos)
            pos = len(data) if end < 0 else end + 1
            continue
        start = pos
        while pos < len(data) and not data[pos : pos + 1].isspace():
            pos += 1
        if start == pos:
            raise InputError(f"{name}: truncated PPM header")
        fields.append(data[start:pos])
    magic, width, height, maxval = fields
    if magic != b"P6" or not all(f.isdigit() for f in (width, height, maxval)):
        raise InputError(f"{name}: not a binary PPM (P6) image")
    w, h = int(width), int(height)
    if int(maxval) != 255 or not (0 < w <= _MAX_SIDE and 0 < h <= _MAX_SIDE):
        raise InputError(f"{name}: unsupported PPM ({w}x{h}, maxval {int(maxval)})")
    raster = data[pos + 1 : pos + 1 + w * h * 3]
    if len(raster) != w * h * 3:
        raise InputError(f"{name}: truncated PPM data ({len(raster)} of {w * h * 3} bytes)")
    return np.frombuffer(raster, dtype=np.uint8).reshape(h, w, 3)


def _axis(
    n_in: int, n_out: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.float64]]:
    src = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    src = np.clip(src, 0.0, n_in - 1)
    low = np.floor(src).astype(np.intp)
    high = np.minimum(low + 1, n_in - 1)
    return low, high, src - low


def resize_bilinear(image: npt.NDArray[np.uint8], side: int = SIDE) -> npt.NDArray[np.uint8]:
    """``image`` ``(h, w, c)`` resized to ``(side, side, c)`` like ``cv2.resize`` (linear)."""
    y0, y1, wy = _axis(image.shape[0], side)
    x0, x1, wx = _axis(image.shape[1], side)
    img = image.astype(np.float64)
    rows = img[y0] * (1 - wy)[:, None, None] + img[y1] * wy[:, None, None]
    out = rows[:, x0] * (1 - wx)[None, :, None] + rows[:, x1] * wx[None, :, None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _csv_rows(data: bytes, name: str) -> list[dict[str, str]]:
    text = data.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text), delimiter=";"))
    need = {"Filename", "Width", "Height", "Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2", "ClassId"}
    if not rows or not need <= set(rows[0]):
        raise InputError(f"{name}: not a GTSRB annotation file (columns {sorted(need)})")
    return rows


def _open(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as err:
        raise InputError(f"{path}: not a readable zip archive ({err})") from err


class _Split:
    def __init__(self) -> None:
        self.images: list[npt.NDArray[np.uint8]] = []
        self.labels: list[int] = []
        self.sizes: list[tuple[int, int]] = []
        self.rois: list[tuple[int, int, int, int]] = []

    def add(self, image: npt.NDArray[np.uint8], row: Mapping[str, str], where: str) -> None:
        try:
            label = int(row["ClassId"])
            size = (int(row["Width"]), int(row["Height"]))
            roi = tuple(int(row[f"Roi.{k}"]) for k in ("X1", "Y1", "X2", "Y2"))
        except ValueError as err:
            raise InputError(f"{where}: malformed annotation row {dict(row)} ({err})") from err
        if not 0 <= label < CLASSES:
            raise InputError(f"{where}: class id {label} outside 0..{CLASSES - 1}")
        self.images.append(resize_bilinear(image))
        self.labels.append(label)
        self.sizes.append(size)
        self.rois.append((roi[0], roi[1], roi[2], roi[3]))

    def arrays(self, split: str) -> dict[str, npt.NDArray[np.generic]]:
        return {
            f"x_{split}": np.stack(self.images).astype(np.uint8),
            f"y_{split}": np.asarray(self.labels, dtype=np.uint8),
            f"size_{split}": np.asarray(self.sizes, dtype=np.uint16),
            f"roi_{split}": np.asarray(self.rois, dtype=np.uint16),
        }


def _train(path: Path) -> dict[str, npt.NDArray[np.generic]]:
    split, tracks, frames = _Split(), [], []
    with _open(path) as archive:
        names = set(archive.namelist())
        sheets = sorted((m.group(1), n) for n in names if (m := _TRAIN_CSV.search(n)))
        if not sheets:
            raise InputError(f"{path}: no GTSRB/Final_Training/Images/000CC/GT-000CC.csv inside")
        for _, sheet in sheets:
            folder = sheet.rsplit("/", 1)[0] + "/" if "/" in sheet else ""
            for row in _csv_rows(archive.read(sheet), f"{path}:{sheet}"):
                member = folder + row["Filename"]
                if member not in names:
                    raise InputError(f"{path}: {sheet} names {member}, which is not there")
                image = read_ppm(archive.read(member), f"{path}:{member}")
                split.add(image, row, f"{path}:{sheet}")
                match = _TRACK.match(row["Filename"])
                tracks.append(int(match.group(1)) if match else -1)
                frames.append(int(match.group(2)) if match else -1)
    arrays = split.arrays("train")
    arrays["track_train"] = np.asarray(tracks, dtype=np.int16)
    arrays["frame_train"] = np.asarray(frames, dtype=np.int16)
    return arrays


def _test(images: Path, truth: Path) -> dict[str, npt.NDArray[np.generic]]:
    with _open(truth) as archive:
        sheets = [n for n in archive.namelist() if n.rsplit("/", 1)[-1] == "GT-final_test.csv"]
        if not sheets:
            raise InputError(f"{truth}: no GT-final_test.csv inside")
        rows = _csv_rows(archive.read(sheets[0]), f"{truth}:{sheets[0]}")
    split = _Split()
    with _open(images) as archive:
        members = {n.rsplit("/", 1)[-1]: n for n in archive.namelist() if n.endswith(".ppm")}
        for row in rows:
            member = members.get(row["Filename"])
            if member is None:
                raise InputError(f"{images}: no image {row['Filename']} (named in {truth})")
            split.add(read_ppm(archive.read(member), f"{images}:{member}"), row, str(truth))
    return split.arrays("test")


def build_from_official(paths: Mapping[str, Path], folder: Path) -> None:
    """Write ``folder / NPZ_NAME`` from the three archives (``paths``: file name -> path).

    Written beside the target and renamed, so a reader never sees a partial file.
    """
    logger.info("converting the GTSRB archives into %s (a few minutes)", folder / NPZ_NAME)
    arrays = {**_train(paths[TRAIN_ARCHIVE]), **_test(paths[TEST_ARCHIVE], paths[GT_ARCHIVE])}
    for split in ("train", "test"):
        missing = sorted(set(range(CLASSES)) - set(np.unique(arrays[f"y_{split}"]).tolist()))
        if missing:
            logger.warning("GTSRB %s split has no images of class(es) %s", split, missing)
    target = folder / NPZ_NAME
    part = folder / f"{NPZ_NAME}.part"
    try:
        with part.open("wb") as handle:
            np.savez_compressed(handle, **arrays)  # type: ignore[arg-type]
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)
