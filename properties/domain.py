"""The input domain: a box ``[lower, upper]`` that every admissible input lies in."""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from robustprop.properties.errors import InputError

FloatArray = npt.NDArray[np.float64]
Bound = float | tuple[float, ...]


@dataclass(frozen=True)
class Domain:
    """Input box ``[lower, upper]``; each bound is one float for every feature or one per feature.

    Per-feature bounds are stored as tuples (so the domain is hashable); use
    :meth:`from_arrays` to build one from arrays. Every bound is finite and ``lower < upper``.
    """

    lower: Bound = 0.0
    upper: Bound = 1.0

    def __post_init__(self) -> None:
        lower = _normalise("lower", self.lower)
        upper = _normalise("upper", self.upper)
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "upper", upper)
        lo = np.atleast_1d(np.asarray(lower, dtype=np.float64))
        hi = np.atleast_1d(np.asarray(upper, dtype=np.float64))
        if lo.size > 1 and hi.size > 1 and lo.size != hi.size:
            raise InputError(
                f"domain lower and upper must have the same length, got {lo.size} and {hi.size}"
            )
        bad = np.flatnonzero(~(np.broadcast_to(lo, np.broadcast(lo, hi).shape) < hi))
        if bad.size:
            i = int(bad[0])
            raise InputError(
                f"domain needs lower < upper, got lower={lo[min(i, lo.size - 1)]} "
                f"and upper={hi[min(i, hi.size - 1)]} at feature {i}"
            )

    @classmethod
    def from_arrays(cls, lower: npt.ArrayLike, upper: npt.ArrayLike) -> Domain:
        """Build a domain from scalars or 1-D arrays of per-feature bounds."""
        return cls(_as_bound("lower", lower), _as_bound("upper", upper))

    @property
    def n_features(self) -> int | None:
        """Number of features fixed by per-feature bounds, or ``None`` if both are scalars."""
        for bound in (self.lower, self.upper):
            if isinstance(bound, tuple):
                return len(bound)
        return None

    def bounds(self, n: int) -> tuple[FloatArray, FloatArray]:
        """``(lower, upper)`` as float64 arrays of shape ``(n,)``."""
        if self.n_features is not None and self.n_features != n:
            raise InputError(f"domain has {self.n_features} features but the input has {n}")
        lo = np.broadcast_to(np.asarray(self.lower, dtype=np.float64), (n,)).copy()
        hi = np.broadcast_to(np.asarray(self.upper, dtype=np.float64), (n,)).copy()
        return lo, hi


def _as_bound(name: str, value: npt.ArrayLike) -> Bound:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise InputError(f"domain {name} must be numbers, got {value!r}") from err
    if arr.ndim == 0:
        return float(arr)
    if arr.ndim != 1 or arr.size == 0:
        raise InputError(f"domain {name} must be a scalar or a non-empty 1-D array, got {value!r}")
    return tuple(float(v) for v in arr)


def _normalise(name: str, value: object) -> Bound:
    if isinstance(value, bool) or not isinstance(value, numbers.Real | tuple | list | np.ndarray):
        raise InputError(f"domain {name} must be a number or a tuple of numbers, got {value!r}")
    if isinstance(value, tuple | list | np.ndarray) and any(isinstance(v, bool) for v in value):
        raise InputError(f"domain {name} must hold numbers, got {value!r}")
    bound = float(value) if isinstance(value, numbers.Real) else _as_bound(name, value)
    if not np.all(np.isfinite(bound)):
        raise InputError(f"domain {name} must be finite, got {value!r}")
    return bound
