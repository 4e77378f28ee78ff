"""Numbers as people read them, the same in the CLI and the app.

The rules, one per kind of figure, wherever it is shown:

- counts: whole, with thousands separators (``1,234``); ``plural`` adds the noun;
- times in milliseconds: three significant figures (``0.04``, ``4.80``, ``12.5``, ``130``),
  from a second on in seconds with three significant figures too (``1.72s``, ``12.3s``);
- sizes in bytes: whole bytes, then one decimal in KB, MB, GB, TB of 1024 (``178.3 MB``);
- fractions: whole percent (``25%``); ratios such as recall three decimals (``0.987``).

The precision is picked after rounding, so 9.996 ms reads ``10.0``, not ``10.00``, and 999.6 ms
reads ``1.00s``. Nothing to show (None) and values that are not numbers (NaN, infinity) read
``-``; negative values keep their sign; a negative zero loses it.
"""

from __future__ import annotations

import math

MISSING = "-"
"""What a figure reads when there is nothing to show."""

SIZE_UNITS = ("B", "KB", "MB", "GB", "TB")


def finite(value: float | None) -> float | None:
    """``value`` as a float, or None when there is nothing to show (None, NaN, infinity)."""
    if value is None or isinstance(value, bool):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _fixed(value: float, decimals: int) -> str:
    return f"{round(value, decimals) + 0.0:,.{decimals}f}"  # + 0.0 turns -0.0 into 0.0


def significant(value: float | None) -> str:
    """Three significant figures, never fewer than the whole part: ``4.80``, ``12.5``,
    ``130``, ``1,720``."""
    number = finite(value)
    if number is None:
        return MISSING
    size = abs(number)
    if round(size, 2) < 10:
        return _fixed(number, 2)
    if round(size, 1) < 100:
        return _fixed(number, 1)
    return _fixed(number, 0)


def count(value: float | None) -> str:
    """A whole count with thousands separators: ``0``, ``1``, ``1,234``, ``-3``."""
    number = finite(value)
    if number is None:
        return MISSING
    return _fixed(number, 0)


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """``1 memory``, ``2 memories``, ``1,451 memories``, ``0 days`` (a regular plural needs
    no ``nouns``: ``-s``, or ``-ies`` after a consonant and ``y``)."""
    if nouns is None:
        consonant_y = noun.endswith("y") and noun[-2:-1] not in ("a", "e", "i", "o", "u")
        nouns = noun[:-1] + "ies" if consonant_y else noun + "s"
    return f"{count(n)} {noun if n == 1 else nouns}"


def milliseconds(value: float | None, *, unit: bool = False) -> str:
    """A time in milliseconds: ``4.80`` (``4.80 ms`` with ``unit``), ``1.72s`` from a second
    on (``1.72 s`` with ``unit``)."""
    number = finite(value)
    if number is None:
        return MISSING
    if round(abs(number)) >= 1000:
        return significant(number / 1000) + (" s" if unit else "s")
    return significant(number) + (" ms" if unit else "")


def size(value: float | None) -> str:
    """A size in bytes: ``0 B``, ``1023 B``, ``1.0 KB``, ``178.3 MB`` (units of 1024)."""
    number = finite(value)
    if number is None:
        return MISSING
    amount = abs(number)
    if round(amount) < 1024:
        return f"{_fixed(number, 0)} B"
    for unit in SIZE_UNITS[1:]:
        amount /= 1024
        if round(amount, 1) < 1024 or unit == SIZE_UNITS[-1]:
            return f"{_fixed(math.copysign(amount, number), 1)} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover - the loop always returns


def percent(fraction: float | None) -> str:
    """A fraction as a whole percent: ``0%``, ``25%``, ``100%``."""
    number = finite(fraction)
    if number is None:
        return MISSING
    return f"{_fixed(number * 100, 0)}%"


def ratio(value: float | None) -> str:
    """A ratio from 0 to 1 (recall, a score) to three decimals: ``0.987``."""
    number = finite(value)
    if number is None:
        return MISSING
    return _fixed(number, 3)
