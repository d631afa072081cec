"""Numbers as people read them: float noise at a bound printed as the bound, never ``-0.0``.

A stock that ran out reads ``7.105e-15`` after floating-point arithmetic, a difference of
two equal means ``-1.11e-16``, an entropy ``-0.0``. :func:`tidy` snaps a value within
1e-9 (relative, for large values) of a whole number, zero included, to that number.
"""

from __future__ import annotations

import math
from typing import Any

EPS = 1e-9


def tidy(value: float, eps: float = EPS) -> float:
    """``value`` snapped to the nearest whole number when within ``eps`` of it; ``-0.0`` -> ``0.0``."""
    if not math.isfinite(value):
        return value
    nearest = round(value)
    if abs(value - nearest) <= eps * max(1.0, abs(value)):
        value = float(nearest)
    return value + 0.0  # -0.0 + 0.0 is 0.0


def num(value: Any, digits: int = 4) -> str:
    """A number with ``digits`` significant digits after :func:`tidy`; other values as str."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return str(value)
    return f"{tidy(value):.{digits}g}"


def tidy_frame(table: Any) -> Any:
    """A copy of a pandas table with :func:`tidy` applied to its float columns (NaN kept)."""
    out = table.copy()
    for column in out.columns:
        if out[column].dtype.kind == "f":
            out[column] = [tidy(float(v)) for v in out[column]]
    return out
