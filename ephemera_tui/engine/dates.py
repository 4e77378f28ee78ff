"""Dates and times as people type them, and the range of dates a journal accepts.

Two readers share one grammar of dates:

- :func:`parse_when` turns an expression into a span (query filters: ``on:yesterday`` is the
  whole day, ``after:2024-05`` starts at the month).
- :func:`resolve_when` turns it into one moment (``--at``, the capture form's When field,
  ``created_at`` in imports). A time alone (``10:30``) is today at that time, or yesterday if
  that is still to come; relative dates (``yesterday``, ``2 days ago``) keep the current time of
  day; calendar dates without a time (``2024-05-01``) mean midnight, so an import reads the
  same whatever the hour. A moment in the future is accepted with a warning.

Every date that enters must lie between :data:`MIN_DATE` and :data:`MAX_DATE` (local time, in
any time zone); :func:`safe_local_datetime` lets display code survive any stored value.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from .errors import ValidationError

MIN_DATE = date(1900, 1, 1)
MAX_DATE = date(2200, 12, 31)
RANGE_TEXT = f"{MIN_DATE.isoformat()} to {MAX_DATE.isoformat()}"
# Stored timestamps: every local time from MIN_DATE to MAX_DATE in any time zone (UTC-12 to
# UTC+14), so whether an import is accepted does not depend on the zone it is read in.
_ZONE_MARGIN = 14 * 3600
MIN_TIMESTAMP = int(datetime(1900, 1, 1, tzinfo=UTC).timestamp()) - _ZONE_MARGIN
MAX_TIMESTAMP = int(datetime(2201, 1, 1, tzinfo=UTC).timestamp()) + _ZONE_MARGIN - 1
# A time typed for "now" may run this far ahead of the clock before it counts as future.
FUTURE_GRACE = 60
MILLIS_ABOVE = 1e11  # a number above this is taken as milliseconds

_UNITS = {
    "second": 1,
    "minute": 60,
    "hour": 3600,
    "day": 86400,
    "week": 7 * 86400,
    "month": 30 * 86400,
    "year": 365 * 86400,
}
_CALENDAR_UNITS = ("day", "week", "month", "year")
_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_AGO = re.compile(r"(\d+|a|an|one)\s+(second|minute|hour|day|week|month|year)s?\s+ago")
_IN = re.compile(r"in\s+(\d+|a|an|one)\s+(second|minute|hour|day|week|month|year)s?")
_PERIOD = re.compile(r"(last|this|past)\s+(week|month|year)")
_WEEKDAY = re.compile(r"(last\s+)?(monday|tuesday|wednesday|thursday|friday|saturday|sunday)")
_ISO_SHAPE = re.compile(
    r"^\d{4}(-\d{1,2}){0,2}([T ]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?([+-]\d{2}:?\d{2}|Z)?$"
)
_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")
# A clock time: 10:30, 9:15:05, 10:30am, 10 pm, noon. Hours alone need am/pm.
_TIME = (
    r"(?:(?P<h>\d{1,2})(?::(?P<m>\d{2}))?(?::(?P<s>\d{2}))?\s*(?P<ampm>[ap]\.?m\.?)?"
    r"|(?P<word>noon|midnight))"
)
_AT = r"(?P<at>at\s+)?"
_TIME_ONLY = re.compile(rf"{_AT}{_TIME}")
_TIME_AFTER = re.compile(rf"(?P<date>.+?)\s*(?:,|\s)\s*{_AT}{_TIME}")
_TIME_BEFORE = re.compile(rf"{_AT}{_TIME}\s*(?:,|\s)\s*(?:on\s+)?(?P<date>.+)")


@dataclass(frozen=True, slots=True)
class WhenResolution:
    """What a typed date means: the moment, how to show it, and a warning worth showing."""

    timestamp: int
    display: str  # local time, e.g. "Tue 1 Dec 2026 10:30"
    warning: str | None = None


def _prefix(where: str) -> str:
    return f"{where}: " if where else ""


def out_of_range(where: str, value: object) -> ValidationError:
    """The one error for a date outside the accepted range (``where`` may be empty)."""
    return ValidationError(f"{_prefix(where)}{value!r} is outside the accepted dates {RANGE_TEXT}")


def check_timestamp(ts: int, where: str = "created_at") -> int:
    """``ts`` if it lies in the accepted range; a ValidationError naming ``where`` otherwise."""
    if isinstance(ts, bool) or not isinstance(ts, int):
        raise ValidationError(f"{where}: expected Unix seconds, got {ts!r}")
    if not MIN_TIMESTAMP <= ts <= MAX_TIMESTAMP:
        raise out_of_range(where, ts)
    return ts


def safe_local_datetime(ts: object) -> datetime:
    """The local, naive datetime of a stored timestamp; never raises.

    A value outside the accepted range (written before the range was enforced, or by another
    tool) is clamped to its nearest end, so one odd row cannot break a listing or an export.
    """
    try:
        number = float(ts)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        number = 0.0
    if math.isnan(number):
        number = 0.0
    clamped = int(min(max(number, MIN_TIMESTAMP), MAX_TIMESTAMP))
    try:
        return datetime.fromtimestamp(clamped)
    except (OverflowError, OSError, ValueError):  # a platform without such local times
        return datetime(1970, 1, 1) + timedelta(seconds=clamped)


def format_moment(moment: datetime) -> str:
    """A moment as the capture form previews it: ``Tue 1 Dec 2026 10:30``."""
    return f"{moment:%a} {moment.day} {moment:%b %Y %H:%M}"


def _start_of_day(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _add_months(moment: datetime, months: int) -> datetime:
    month = moment.month - 1 + months
    return moment.replace(year=moment.year + month // 12, month=month % 12 + 1, day=1)


def _count(word: str) -> int:
    return 1 if word in ("a", "an", "one") else int(word)


def _in_range(moment: datetime, where: str, raw: str) -> datetime:
    if not MIN_DATE <= moment.date() <= MAX_DATE:
        raise out_of_range(where, raw)
    return moment


def _ts(moment: datetime) -> int:
    return int(moment.timestamp())


def _iso_moment(raw: str, where: str) -> tuple[datetime, str] | None:
    """An ISO-shaped date as (moment, precision: year|month|day|moment), local naive.

    Anything ISO-shaped that is not a real date (``2024-13-01``, ``2024-02-30``) is an error,
    not left to the natural-language reader (which would read 13 January).
    """
    if not _ISO_SHAPE.match(raw):
        return None
    year = int(raw[:4])
    if not MIN_DATE.year <= year <= MAX_DATE.year:
        raise out_of_range(where, raw)
    parts = re.split(r"[T ]", raw, maxsplit=1)
    fields = parts[0].split("-")
    try:
        if len(parts) == 1 and len(fields) < 3:
            month = int(fields[1]) if len(fields) == 2 else 1
            return datetime(year, month, 1), ("month" if len(fields) == 2 else "year")
        day = date(year, int(fields[1]), int(fields[2]))
        if len(parts) == 1:
            return datetime(day.year, day.month, day.day), "day"
        moment = datetime.fromisoformat(f"{day.isoformat()}T{parts[1].replace('Z', '+00:00')}")
    except (ValueError, IndexError):
        raise ValidationError(f"{_prefix(where)}{raw!r} is not a real date or time") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone().replace(tzinfo=None)
    return moment, "moment"


_DATE_HINT = "try 2024-05-01, yesterday, last week, 3 days ago"
_AT_HINT = "try 10:30, yesterday 18:00, 2 days ago, 2024-05-01 09:00"


def _natural(raw: str, current: datetime, where: str, hint: str = _DATE_HINT) -> datetime:
    """Other natural dates ("May 3rd", "3 May 2024 10:30"); dateparser is slow to load."""
    try:
        import dateparser

        parsed = dateparser.parse(
            raw,
            settings={"RELATIVE_BASE": current, "PREFER_DATES_FROM": "past"},
            languages=["en"],
        )
        if parsed is not None and parsed.tzinfo is not None:
            parsed = parsed.astimezone().replace(tzinfo=None)
    except Exception:  # noqa: BLE001 - dateparser raises many types on odd input
        parsed = None
    if parsed is None:
        raise ValidationError(f"{_prefix(where)}cannot understand {raw!r} as a date ({hint})")
    return _in_range(parsed, where, raw)


def _clean(value: str) -> str:
    return " ".join(value.strip().strip("\"'").split())


def parse_when(value: str, now: float, where: str = "date") -> tuple[int, int]:
    """Parse a date expression into a ``(start, end)`` span of Unix seconds (local time).

    A day ("2024-05-01", "yesterday") spans that day; a month ("2024-05") that month; a moment
    ("3 days ago" at a finer unit, "2024-05-01T10:00") one second. Raises ValidationError for
    an unknown expression or a date outside the accepted range.
    """
    raw = _clean(value)
    try:
        return _span(raw, now, where)
    except (OverflowError, OSError, ValueError):  # date arithmetic past what datetime holds
        raise out_of_range(where, raw) from None


def _span(raw: str, now: float, where: str) -> tuple[int, int]:
    text = raw.lower().replace("_", " ").replace("-", " ") if not _ISO_SHAPE.match(raw) else raw
    current = datetime.fromtimestamp(now)
    today = _start_of_day(current)

    def span(start: datetime, end: datetime) -> tuple[int, int]:
        _in_range(start, where, raw)
        return _ts(start), _ts(end)

    if text == "now":
        return int(now), int(now) + 1
    if text == "today":
        return span(today, today + timedelta(days=1))
    if text == "yesterday":
        return span(today - timedelta(days=1), today)
    if text == "tomorrow":
        return span(today + timedelta(days=1), today + timedelta(days=2))
    match = _AGO.fullmatch(text)
    if match:
        unit = match.group(2)
        moment = current - timedelta(seconds=_count(match.group(1)) * _UNITS[unit])
        if unit in _CALENDAR_UNITS:
            start = _start_of_day(moment)
            return span(start, start + timedelta(days=1))
        return span(moment, moment + timedelta(seconds=1))
    match = _PERIOD.fullmatch(text)
    if match:
        which, unit = match.groups()
        if unit == "week":
            this_start = today - timedelta(days=today.weekday())
            if which == "this":
                return span(this_start, this_start + timedelta(days=7))
            if which == "past":
                return span(today - timedelta(days=7), today + timedelta(days=1))
            return span(this_start - timedelta(days=7), this_start)
        if unit == "month":
            this_start = today.replace(day=1)
            if which == "this":
                return span(this_start, _add_months(this_start, 1))
            if which == "past":
                return span(today - timedelta(days=30), today + timedelta(days=1))
            return span(_add_months(this_start, -1), this_start)
        this_start = today.replace(month=1, day=1)
        if which == "this":
            return span(this_start, this_start.replace(year=this_start.year + 1))
        if which == "past":
            return span(today - timedelta(days=365), today + timedelta(days=1))
        return span(this_start.replace(year=this_start.year - 1), this_start)
    match = _WEEKDAY.fullmatch(text)
    if match:
        target = _WEEKDAYS.index(match.group(2))
        back = (today.weekday() - target) % 7 or 7
        start = today - timedelta(days=back)
        return span(start, start + timedelta(days=1))
    iso = _iso_moment(raw, where)
    if iso is not None:
        moment, precision = iso
        if precision == "year":
            return span(moment, moment.replace(year=moment.year + 1))
        if precision == "month":
            return span(moment, _add_months(moment, 1))
        if precision == "day":
            return span(moment, moment + timedelta(days=1))
        return span(moment, moment + timedelta(seconds=1))
    parsed = _natural(raw, current, where)
    start = (
        _start_of_day(parsed)
        if parsed.time() == current.time() or parsed.time().hour == 0
        else parsed
    )
    return span(start, start + timedelta(days=1))


def _clock_time(match: re.Match[str], where: str, raw: str) -> tuple[int, int, int] | None:
    """(hour, minute, second) of a matched clock time; None if it is only a number ("10",
    though "at 10" is a time).

    Something shaped like a time that is not one (``25:00``, ``13:00pm``) is an error rather
    than a riddle for the natural-language reader, which would find some date in it.
    """
    if match.group("word"):
        return (12, 0, 0) if match.group("word") == "noon" else (0, 0, 0)
    hour = int(match.group("h"))
    minute = int(match.group("m") or 0)
    second = int(match.group("s") or 0)
    ampm = (match.group("ampm") or "").replace(".", "")
    if match.group("m") is None and not ampm and not match.group("at"):
        return None
    if ampm:
        valid = 1 <= hour <= 12
        hour = hour % 12 + (12 if ampm == "pm" else 0)
    else:
        valid = hour <= 23
    if not valid or minute > 59 or second > 59:
        raise ValidationError(f"{where}: {raw!r} is not a real time of day")
    return hour, minute, second


def _split_time(text: str, where: str, raw: str) -> tuple[str, tuple[int, int, int]] | None:
    """Split ``yesterday at 10:30`` / ``10:30 yesterday`` / ``at 10:30`` into (date, time)."""
    match = _TIME_ONLY.fullmatch(text)
    if match:
        found = _clock_time(match, where, raw)
        return None if found is None else ("", found)
    for pattern in (_TIME_AFTER, _TIME_BEFORE):
        match = pattern.fullmatch(text)
        if match:
            found = _clock_time(match, where, raw)
            if found is not None:
                return match.group("date").strip(" ,"), found
    return None


def _relative_day(text: str, current: datetime) -> datetime | None:
    """The moment a relative expression names, at the current time of day; None if not one."""
    if text in ("now", "today"):
        return current
    if text == "yesterday":
        return current - timedelta(days=1)
    if text == "tomorrow":
        return current + timedelta(days=1)
    for pattern, sign in ((_AGO, -1), (_IN, 1)):
        match = pattern.fullmatch(text)
        if match:
            # Naive local arithmetic keeps the wall-clock time across a DST change.
            return current + sign * timedelta(
                seconds=_count(match.group(1)) * _UNITS[match.group(2)]
            )
    match = _PERIOD.fullmatch(text)
    if match and match.group(1) in ("last", "past"):
        return current - timedelta(seconds=_UNITS[match.group(2)])
    if match:
        return current
    match = _WEEKDAY.fullmatch(text)
    if match:
        back = (current.weekday() - _WEEKDAYS.index(match.group(2))) % 7 or 7
        return current - timedelta(days=back)
    return None


def resolve_when(text: str, now: float, where: str = "--at") -> WhenResolution:
    """The moment a typed date or time names, for saving a memory (see the module docstring).

    Accepts Unix seconds (or milliseconds), ISO 8601, a time alone (``10:30``, ``9pm``,
    ``at 10:30``), relative dates with or without a time (``yesterday 18:00``, ``2 days ago``)
    and other natural dates. Raises a one-line ValidationError naming ``where``.
    """
    raw = _clean(text)
    if not raw:
        raise ValidationError(f"{where}: expected a time, got {text!r}")
    try:
        if _NUMBER.fullmatch(raw):
            return _resolution(timestamp_from_number(float(raw), where, raw), now)
        moment = _in_range(_resolve(raw, now, where), where, raw)
        ts = _ts(moment)
    except (OverflowError, OSError, ValueError):  # date arithmetic past what datetime holds
        raise out_of_range(where, raw) from None
    if not MIN_TIMESTAMP <= ts <= MAX_TIMESTAMP:
        raise out_of_range(where, raw)
    return _resolution(ts, now)


def _resolve(raw: str, now: float, where: str) -> datetime:
    """The local moment a non-numeric expression names."""
    current = datetime.fromtimestamp(now)
    text = raw.lower()
    iso = _iso_moment(raw, where)
    if iso is not None:
        return iso[0]
    relative = _relative_day(text.replace("_", " ").replace("-", " "), current)
    if relative is not None:
        return relative
    split = _split_time(text, where, raw)
    if split is not None:
        day_text, (hour, minute, second) = split
        if not day_text:
            moment = current.replace(hour=hour, minute=minute, second=second, microsecond=0)
            if _ts(moment) > now + FUTURE_GRACE:
                moment -= timedelta(days=1)  # a time still to come today meant yesterday
            return moment
        day = _relative_day(day_text.replace("-", " "), current)
        if day is None:
            day_iso = _iso_moment(day_text, where)
            day = (
                day_iso[0] if day_iso is not None else _natural(day_text, current, where, _AT_HINT)
            )
        return day.replace(hour=hour, minute=minute, second=second, microsecond=0)
    return _natural(raw, current, where, _AT_HINT)


def _resolution(ts: int, now: float) -> WhenResolution:
    display = format_moment(safe_local_datetime(ts))
    warning = f"{display} is in the future" if ts > now + FUTURE_GRACE else None
    return WhenResolution(ts, display, warning)


def timestamp_from_number(number: float, where: str = "created_at", shown: object = None) -> int:
    """Unix seconds from a number (milliseconds if above 1e11), range-checked.

    ``shown`` is the value as the user wrote it, for the error message.
    """
    if not math.isfinite(number):
        raise ValidationError(f"{where}: expected a time, got {number!r}")
    seconds = number / 1000.0 if number > MILLIS_ABOVE else number
    if not MIN_TIMESTAMP <= seconds <= MAX_TIMESTAMP:
        raise out_of_range(where, number if shown is None else shown)
    return int(seconds)


def parse_timestamp(value: Any, now: float, where: str = "created_at") -> int:
    """Unix seconds from a number (seconds, or milliseconds if huge) or a date string.

    Strings mean what :func:`resolve_when` says they mean; any warning is dropped (an import
    may carry future dates on purpose).
    """
    if isinstance(value, bool):
        raise ValidationError(f"{where}: expected a time, got {value!r}")
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:  # an int beyond any float
            raise out_of_range(where, value) from None
        return timestamp_from_number(number, where, value)
    if isinstance(value, str) and value.strip():
        return resolve_when(value, now, where).timestamp
    raise ValidationError(f"{where}: expected a time, got {value!r}")
