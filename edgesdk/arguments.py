"""Checks of the kinds of arguments the public API takes.

Python converts too willingly: ``"no"`` is truthy, ``True`` is 1, ``int(2.5)`` is 2
and ``float("0.4")`` is 0.4, so a wrong kind of argument would otherwise mean
something the caller did not ask for, silently. numpy scalars count as the
Python numbers and bools they stand for.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from edgesdk.errors import InputError


def _integral(v: Any) -> bool:
    """An integer of Python or numpy, not a bool (which Python counts as an int)."""
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _real(v: Any) -> bool:
    """A real number of Python or numpy (NaN and inf included), not a bool."""
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def is_int(v: Any, low: int) -> bool:
    """An integer (not a bool) >= ``low``."""
    return bool(_integral(v) and v >= low)


def is_number(v: Any) -> bool:
    """A finite real number (not a bool, not a string)."""
    return bool(_real(v) and math.isfinite(v))


def check_flag(value: Any, name: str) -> bool:
    """``value`` as a bool if it is one; otherwise an InputError naming ``name``."""
    if not isinstance(value, (bool, np.bool_)):
        raise InputError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_count(value: Any, name: str, low: int, high: Optional[int] = None) -> int:
    """``value`` as an int if it is an integer in [``low``, ``high``]; otherwise an InputError naming ``name``."""
    if not is_int(value, low) or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise InputError(f"{name} must be an integer {bound}, got {value!r}")
    return int(value)


def check_int(value: Any, name: str) -> int:
    """``value`` as an int if it is an integer (any sign: ranges are the caller's to check)."""
    if not _integral(value):
        raise InputError(f"{name} must be an integer, got {value!r}")
    return int(value)


def check_real(value: Any, name: str) -> float:
    """``value`` as a float if it is a real number (NaN included: ranges are the caller's to check)."""
    if not _real(value):
        raise InputError(f"{name} must be a number, got {value!r}")
    return float(value)


def check_threshold(value: Any, name: str = "threshold", low_fraction: float = 1.0) -> float:
    """An edge threshold: a number in (0, 1] that stays above 0 as float32, where maps are compared.

    ``low_fraction`` is the hysteresis low threshold as a fraction of this one; it must stay
    above 0 too (1e-46 is 0 in float32, and a threshold of 0 makes every pixel an edge).
    """
    t = check_real(value, name)
    if not 0.0 < t <= 1.0:  # NaN fails too
        raise InputError(f"{name} must be a number in (0, 1], got {value!r}")
    if np.float32(t * low_fraction) <= 0:
        raise InputError(f"{name} {value!r} is 0 in float32, where edge maps are compared; use at least 1e-30")
    return t
