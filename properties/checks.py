"""Validation of numeric parameters; each failure is an :class:`InputError` naming the value."""

from __future__ import annotations

import math
import numbers

from robustprop.properties.errors import InputError


def check_number(name: str, value: object) -> float:
    """``value`` as a float; :class:`InputError` unless it is a finite real number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(f"{name} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise InputError(f"{name} must be finite, got {value}")
    return number


def check_positive(name: str, value: object) -> float:
    """``value`` as a float; :class:`InputError` unless it is a finite number > 0."""
    number = check_number(name, value)
    if number <= 0:
        raise InputError(f"{name} must be > 0, got {value}")
    return number
