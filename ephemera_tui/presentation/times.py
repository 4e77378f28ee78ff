"""Spans of time and how long ago things happened, the same in the CLI and the app.

One rule for both: a span is shown in its largest whole unit, cut down, never rounded up
(``59s``, ``1 min``, ``2 h``, ``3 days``), so "2 h ago" never means 1 h 31 min. A negative span
(a clock that moved back) reads as none; None reads ``-`` as a span and ``never`` as an age;
NaN and infinity read ``-``.
"""

from __future__ import annotations

from datetime import datetime

from .numbers import MISSING, finite

MINUTE = 60
HOUR = 3600
DAY = 86400
DATED_AFTER_DAYS = 30
"""From this many days back, :func:`relative_time` gives the date instead of a count."""


def duration(seconds: float | None) -> str:
    """How long something lasted or has waited: ``0s``, ``42s``, ``5 min``, ``3 h``, ``1 day``,
    ``12 days``."""
    number = finite(seconds)
    if number is None:
        return MISSING
    span = max(0.0, number)
    if span < MINUTE:
        return f"{int(span)}s"
    if span < HOUR:
        return f"{int(span // MINUTE)} min"
    if span < DAY:
        return f"{int(span // HOUR)} h"
    days = int(span // DAY)
    return f"{days:,} day" if days == 1 else f"{days:,} days"


def age(seconds: float | None) -> str:
    """How long ago, from the seconds since: ``never`` (None), ``just now`` (under a minute),
    ``5 min ago``, ``3 h ago``, ``yesterday``, ``12 days ago``; ``in the future`` more than a
    minute ahead."""
    if seconds is None:
        return "never"
    number = finite(seconds)
    if number is None:
        return MISSING
    if number < -MINUTE:
        return "in the future"
    if number < MINUTE:
        return "just now"
    if DAY <= number < 2 * DAY:
        return "yesterday"
    return f"{duration(number)} ago"


def relative_time(when: float, now: float) -> str:
    """How long before ``now`` the Unix time ``when`` was, as :func:`age`; from 30 days back
    the local date instead ('14 Nov', '14 Nov 2022' before the last year)."""
    delta = now - when
    if finite(delta) is None or delta < DATED_AFTER_DAYS * DAY:
        return age(delta)
    moment = datetime.fromtimestamp(when)
    return moment.strftime("%d %b" if delta < 365 * DAY else "%d %b %Y")
