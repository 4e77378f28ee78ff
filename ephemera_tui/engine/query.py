"""Query syntax: free text, "quoted phrases", ``tag:``, ``source:``, ``importance>=N``,
``confidence<N``, ``after:``/``before:`` with ISO or natural dates (``today``, ``yesterday``,
``last week``, ``3 days ago``, ``"2024-05-01"``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from .errors import ValidationError
from .filters import SearchFilter

KNOWN_KEYS = ("tag", "source", "after", "before", "on", "importance", "confidence")
_COMPARE = re.compile(r"^(importance|confidence)(>=|<=|>|<|=|:)(.*)$", re.IGNORECASE)
_KEYED = re.compile(r"^([A-Za-z_]+):(.*)$", re.DOTALL)
_WORD = re.compile(r"\w+", re.UNICODE)

_UNITS = {
    "second": 1,
    "minute": 60,
    "hour": 3600,
    "day": 86400,
    "week": 7 * 86400,
    "month": 30 * 86400,
    "year": 365 * 86400,
}
_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


@dataclass(frozen=True, slots=True)
class ParsedQuery:
    """A query split into the words to match and the filter to apply."""

    raw: str
    text: str  # free text (phrases included) for the semantic side
    terms: tuple[str, ...]  # lower-cased words for the keyword side
    filter: SearchFilter = field(default_factory=SearchFilter)

    @property
    def has_text(self) -> bool:
        return bool(self.text.strip())


def _start_of_day(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def parse_when(value: str, now: float) -> tuple[int, int]:
    """Parse a date expression into a ``(start, end)`` span of Unix seconds (local time).

    A day ("2024-05-01", "yesterday") spans that day; a month ("2024-05") that month; a moment
    ("3 days ago", "2024-05-01T10:00") spans one second. Raises ValidationError if unknown.
    """
    raw = value.strip().strip("\"'")
    text = raw.lower().replace("_", " ").replace("-", " ") if not _looks_iso(raw) else raw
    current = datetime.fromtimestamp(now)
    today = _start_of_day(current)

    def span(start: datetime, end: datetime) -> tuple[int, int]:
        return int(start.timestamp()), int(end.timestamp())

    if text in ("now",):
        return int(now), int(now) + 1
    if text == "today":
        return span(today, today + timedelta(days=1))
    if text == "yesterday":
        return span(today - timedelta(days=1), today)
    if text == "tomorrow":
        return span(today + timedelta(days=1), today + timedelta(days=2))
    match = re.fullmatch(r"(\d+|a|an|one)\s+(second|minute|hour|day|week|month|year)s?\s+ago", text)
    if match:
        count = 1 if match.group(1) in ("a", "an", "one") else int(match.group(1))
        moment = now - count * _UNITS[match.group(2)]
        if match.group(2) in ("day", "week", "month", "year"):
            start = _start_of_day(datetime.fromtimestamp(moment))
            return span(start, start + timedelta(days=1))
        return int(moment), int(moment) + 1
    match = re.fullmatch(r"(last|this|past)\s+(week|month|year)", text)
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
    match = re.fullmatch(
        r"(last\s+)?(monday|tuesday|wednesday|thursday|friday|saturday|sunday)", text
    )
    if match:
        target = _WEEKDAYS.index(match.group(2))
        back = (today.weekday() - target) % 7 or 7
        start = today - timedelta(days=back)
        return span(start, start + timedelta(days=1))
    iso = _parse_iso(raw)
    if iso is not None:
        return iso
    return _parse_with_dateparser(raw, current)


def _looks_iso(value: str) -> bool:
    return bool(
        re.match(
            r"^\d{4}(-\d{2}){0,2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?([+-]\d{2}:?\d{2}|Z)?$", value
        )
    )


def _add_months(moment: datetime, months: int) -> datetime:
    month = moment.month - 1 + months
    return moment.replace(year=moment.year + month // 12, month=month % 12 + 1, day=1)


def _parse_iso(value: str) -> tuple[int, int] | None:
    if re.fullmatch(r"\d{4}", value):
        start = datetime(int(value), 1, 1)
        return int(start.timestamp()), int(start.replace(year=start.year + 1).timestamp())
    if re.fullmatch(r"\d{4}-\d{2}", value):
        try:
            start = datetime(int(value[:4]), int(value[5:]), 1)
        except ValueError:
            return None
        return int(start.timestamp()), int(_add_months(start, 1).timestamp())
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            return None
        start = datetime(day.year, day.month, day.day)
        return int(start.timestamp()), int((start + timedelta(days=1)).timestamp())
    if _looks_iso(value):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return int(moment.timestamp()), int(moment.timestamp()) + 1
    return None


def _parse_with_dateparser(value: str, current: datetime) -> tuple[int, int]:
    """Last resort for other natural dates ("May 3rd"); dateparser is slow to load."""
    try:
        import dateparser

        parsed = dateparser.parse(
            value,
            settings={"RELATIVE_BASE": current, "PREFER_DATES_FROM": "past"},
            languages=["en"],
        )
    except Exception:  # noqa: BLE001 - dateparser raises many types on odd input
        parsed = None
    if parsed is None:
        raise ValidationError(
            f"cannot understand the date {value!r} "
            "(try 2024-05-01, yesterday, last week, 3 days ago)"
        )
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone().replace(tzinfo=None)
    start = (
        _start_of_day(parsed)
        if parsed.time() == current.time() or parsed.time().hour == 0
        else parsed
    )
    return int(start.timestamp()), int((start + timedelta(days=1)).timestamp())


def parse_timestamp(value: Any, now: float, where: str = "created_at") -> int:
    """Unix seconds from a number (seconds, or milliseconds if huge) or an ISO/natural string."""
    if isinstance(value, bool):
        raise ValidationError(f"{where}: expected a time, got {value!r}")
    if isinstance(value, int | float):
        number = float(value)
        if number > 1e11:  # milliseconds
            number /= 1000.0
        return int(number)
    if isinstance(value, str) and value.strip():
        stripped = value.strip()
        if re.fullmatch(r"-?\d+(\.\d+)?", stripped):
            return parse_timestamp(float(stripped), now, where)
        try:
            return parse_when(stripped, now)[0]
        except ValidationError:
            raise ValidationError(
                f"{where}: cannot understand the time {value!r} (use ISO 8601 or Unix seconds)"
            ) from None
    raise ValidationError(f"{where}: expected a time, got {value!r}")


def _byte(name: str, raw: str) -> int:
    raw = raw.strip()
    if not re.fullmatch(r"\d+", raw):
        raise ValidationError(f"{name} needs a number from 0 to 255, got {raw!r}")
    number = int(raw)
    if number > 255:
        raise ValidationError(f"{name} must be from 0 to 255, got {number}")
    return number


_TOKENS = re.compile(r'([A-Za-z_]+:)"([^"]*)"|"([^"]*)"|(\S+)')


def _split(raw: str) -> list[tuple[str, bool]]:
    """Split into (token, is_phrase) pairs; ``key:"a value"`` stays one token."""
    if raw.count('"') % 2:
        raise ValidationError("unbalanced quote in query")
    tokens: list[tuple[str, bool]] = []
    for match in _TOKENS.finditer(raw):
        key, keyed_value, phrase, plain = match.groups()
        if key is not None:
            tokens.append((key + keyed_value, False))
        elif phrase is not None:
            if phrase.strip():
                tokens.append((phrase.strip(), True))
        else:
            tokens.append((plain, False))
    return tokens


def parse_query(raw: str, now: float) -> ParsedQuery:
    """Parse a search query; raise ValidationError naming the bad part."""
    flt: dict[str, Any] = {"sources": [], "tags": [], "phrases": []}
    words: list[str] = []
    tokens = _split(raw)
    i = 0
    while i < len(tokens):
        token, quoted = tokens[i]
        i += 1
        if quoted:
            flt["phrases"].append(token)
            words.append(token)
            continue
        compare = _COMPARE.match(token)
        if compare:
            name, op, value = compare.group(1).lower(), compare.group(2), compare.group(3)
            if not value and i < len(tokens):
                value, _ = tokens[i]
                i += 1
            number = _byte(name, value)
            if op in (">=", ":", "="):
                flt[f"min_{name}"] = number
            if op in ("<=", "=", ":") and op != ":":
                flt[f"max_{name}"] = number
            if op == ">":
                if number >= 255:
                    raise ValidationError(f"{name}>{number} can never match (maximum is 255)")
                flt[f"min_{name}"] = number + 1
            if op == "<":
                if number <= 0:
                    raise ValidationError(f"{name}<{number} can never match (minimum is 0)")
                flt[f"max_{name}"] = number - 1
            continue
        keyed = _KEYED.match(token)
        if keyed and not keyed.group(2).startswith("//"):
            key, value = keyed.group(1).lower(), keyed.group(2)
            if key not in KNOWN_KEYS:
                raise ValidationError(
                    f"unknown filter {key + ':'!r} in query (known: tag:, source:, after:, "
                    "before:, on:, importance>=N, confidence>=N)"
                )
            if key in ("importance", "confidence"):
                raise ValidationError(f"write {key}>=N, {key}<=N or {key}=N (0-255)")
            if key in ("after", "before", "on"):
                value, i = _take_date(value, tokens, i, now, key)
                start, end = parse_when(value, now)
                if key == "after":
                    flt["after"] = max(start, flt.get("after") or start)
                elif key == "before":
                    flt["before"] = min(start, flt.get("before") or start)
                else:
                    flt["after"], flt["before"] = start, end
                continue
            if not value:
                raise ValidationError(f"{key}: needs a value, e.g. {key}:work")
            flt["tags" if key == "tag" else "sources"].append(value)
            continue
        words.append(token)
    text = " ".join(words)
    terms = tuple(w.lower() for w in _WORD.findall(text))
    search_filter = SearchFilter(
        after=flt.get("after"),
        before=flt.get("before"),
        sources=tuple(dict.fromkeys(flt["sources"])),
        tags=tuple(dict.fromkeys(flt["tags"])),
        min_importance=flt.get("min_importance"),
        max_importance=flt.get("max_importance"),
        min_confidence=flt.get("min_confidence"),
        max_confidence=flt.get("max_confidence"),
        phrases=tuple(flt["phrases"]),
    )
    if (
        search_filter.after is not None
        and search_filter.before is not None
        and search_filter.after >= search_filter.before
    ):
        raise ValidationError("after: is not earlier than before: — nothing can match")
    return ParsedQuery(raw=raw, text=text, terms=terms, filter=search_filter)


def _take_date(
    value: str, tokens: list[tuple[str, bool]], i: int, now: float, key: str
) -> tuple[str, int]:
    """A date may run over several tokens (``after:last week``, ``after:3 days ago``)."""
    if not value:
        if i >= len(tokens):
            raise ValidationError(f"{key}: needs a date, e.g. {key}:2024-05-01 or {key}:yesterday")
        value, i = tokens[i][0], i + 1
    for extra in (2, 1):
        if i + extra <= len(tokens):
            candidate = " ".join([value] + [t for t, _ in tokens[i : i + extra]])
            if _quick_date(candidate):
                return candidate, i + extra
    return value, i


def _quick_date(text: str) -> bool:
    text = text.lower()
    return bool(
        re.fullmatch(r"(\d+|a|an|one)\s+(second|minute|hour|day|week|month|year)s?\s+ago", text)
        or re.fullmatch(r"(last|this|past)\s+(week|month|year)", text)
        or re.fullmatch(r"last\s+(monday|tuesday|wednesday|thursday|friday|saturday|sunday)", text)
    )
