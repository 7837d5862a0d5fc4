"""Range checks of metric options, run when a metric is built (before any image is read).

``in_range`` returns the option as a number when it is a finite number in its range, and otherwise
raises ``OptionRangeError`` naming the metric, the option, its value and the range expected, so a
``threshold=-1`` or ``topk=0`` stops the run at once instead of scoring every image as a miss.
"""

from __future__ import annotations

import math


class OptionRangeError(ValueError):
    """A metric option outside its range (or not a finite number); the message names both."""


def in_range(metric: str, option: str, value, low: float | None = None, high: float | None = None, *,
             low_open: bool = False, high_open: bool = False, integer: bool = False):
    """``value`` as ``int``/``float`` when it is a finite number with ``low (<|<=) value (<|<=) high``."""
    lo = "" if low is None else f"{low} {'<' if low_open else '<='} "
    hi = "" if high is None else f" {'<' if high_open else '<='} {high}"
    expected = f"expected {'an integer' if integer else 'a number'} {lo}{option}{hi}".replace("  ", " ")
    try:
        number = float(value)
        ok = not isinstance(value, bool) and math.isfinite(number) and (not integer or number == int(number))
    except (TypeError, ValueError):
        ok = False
    if ok and low is not None:
        ok = number > low if low_open else number >= low
    if ok and high is not None:
        ok = number < high if high_open else number <= high
    if not ok:
        raise OptionRangeError(f"config field 'metric.options.{option}' of metric {metric!r} is {value!r}; {expected}")
    return int(number) if integer else number
