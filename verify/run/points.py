"""The data points a ``verify run`` checks: which file, which rows, which input domain."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from robustprop.properties import Domain
from robustprop.properties.errors import InputError
from robustprop.training.data import load_subset

__all__ = ["PointSelection", "Points", "domain_from_metadata", "load_points"]


@dataclass(frozen=True, eq=False)
class Points:
    """``x`` (N, n) float64 centers, ``y`` (N,) labels, their row ``indices`` in the split."""

    x: npt.NDArray[np.float64]
    y: npt.NDArray[np.int64]
    indices: npt.NDArray[np.int64]
    source: str


@dataclass(frozen=True)
class PointSelection:
    """Where the points come from: a dataset name or ``.npz`` path, its split, how many."""

    data: str
    split: str = "test"
    count: int = 100
    seed: int | None = None  # None: the first ``count`` rows; else a seeded sample
    data_dir: Path | None = None
    from_metadata: bool = False  # ``data`` is the data set named in the model's metadata


def load_points(selection: PointSelection, n_inputs: int) -> Points:
    """The selected rows, checked against the network's input size and for finiteness."""
    if selection.count < 1:
        raise InputError(f"--points must be >= 1, got {selection.count}")
    # only the chosen rows are converted (a few points of a big file cost a few points)
    ds, idx = load_subset(
        selection.data, selection.split, selection.count, selection.seed, selection.data_dir
    )
    if ds.n_inputs != n_inputs:
        raise InputError(
            f"data {selection.data!r} has {ds.n_inputs} features per point, "
            f"the network takes {n_inputs} inputs"
        )
    x = np.asarray(ds.x, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise InputError(f"data {selection.data!r} contains NaN or infinite values")
    indices = np.asarray(idx, dtype=np.int64)
    return Points(x, np.asarray(ds.y, dtype=np.int64), indices, ds.name)


def domain_from_metadata(metadata: dict[str, str], source: str) -> Domain:
    """The input box stored by ``export`` (key ``domain``, JSON ``[lo, hi]``), else [0, 1]."""
    raw = metadata.get("domain")
    if raw is None:
        return Domain()
    try:
        lo, hi = json.loads(raw)
        return Domain(float(lo), float(hi))
    except (ValueError, TypeError) as err:
        raise InputError(f"{source}: metadata 'domain' is not [lo, hi]: {raw!r}") from err
