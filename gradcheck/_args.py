"""Argument checks shared by the public functions: one place for what a valid number or callable is, and for the
wording of the errors (the argument, its value, the fix)."""

from __future__ import annotations

import math
from typing import Any

from gradcheck.errors import InvalidArgument, InvalidType

__all__ = ["check_callable", "finite", "float_dtype", "is_real", "non_negative"]


def is_real(value: Any) -> bool:
    """A real number (Python or numpy), and not a bool."""
    import numpy as np

    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def finite(value: Any) -> bool:
    """Finite as a float; an int beyond float's range is not."""
    try:
        return math.isfinite(value)
    except (OverflowError, TypeError):
        return False


def non_negative(name: str, value: Any) -> float:
    """``value`` as a float, or an :class:`InvalidArgument` naming ``name``."""
    if not is_real(value) or not finite(value) or value < 0:
        raise InvalidArgument(f"{name}={value!r}; it must be a finite number >= 0")
    return float(value)


def check_callable(name: str, value: Any, usage: str) -> None:
    """An :class:`InvalidType` naming ``name`` unless ``value`` is callable; ``usage`` shows the right call."""
    if not callable(value):
        raise InvalidType(f"{name} must be callable, got {type(value).__name__}; {usage}")


def float_dtype(name: str, value: Any) -> Any:
    """``value`` as np.float64 or np.float32 (the dtypes a Network computes in), or an :class:`InvalidType` naming
    ``name``."""
    import numpy as np

    try:
        dtype = np.dtype(value)
    except (TypeError, ValueError):
        dtype = None
    if dtype is None or dtype not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise InvalidType(f"{name}={value!r}; a Network computes in np.float64 or np.float32")
    return dtype
