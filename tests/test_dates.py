"""Dates as people type them: one moment for saving, a span for filters, and the date range."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from ephemera_tui.engine.dates import (
    MAX_TIMESTAMP,
    MIN_TIMESTAMP,
    check_timestamp,
    parse_timestamp,
    parse_when,
    resolve_when,
    safe_local_datetime,
)
from ephemera_tui.engine.errors import ValidationError


def at(*args: int) -> int:
    return int(datetime(*args).timestamp())  # type: ignore[arg-type]


@pytest.fixture
def zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """Switch the process's local time zone for one test (``zone("Europe/Berlin")``)."""

    def switch(name: str) -> None:
        monkeypatch.setenv("TZ", name)
        time.tzset()

    yield switch
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def now() -> float:
    """07:25 on Tuesday 1 December 2026, local time (the morning the bug was met)."""
    return float(at(2026, 12, 1, 7, 25))


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("10:30", (2026, 11, 30, 10, 30)),  # still to come today: yesterday
        ("9:15", (2026, 11, 30, 9, 15)),
        ("23:59", (2026, 11, 30, 23, 59)),
        ("10:30am", (2026, 11, 30, 10, 30)),
        ("10:30 AM", (2026, 11, 30, 10, 30)),
        ("at 10:30", (2026, 11, 30, 10, 30)),
        ("7:00", (2026, 12, 1, 7, 0)),  # already past today: today
        ("07:25", (2026, 12, 1, 7, 25)),
        ("6pm", (2026, 11, 30, 18, 0)),
        ("at 7", (2026, 12, 1, 7, 0)),
        ("noon", (2026, 11, 30, 12, 0)),
    ],
)
def test_a_time_alone_is_the_latest_such_moment_not_a_month_ahead(
    typed: str, expected: tuple[int, ...], now: float
) -> None:
    resolved = resolve_when(typed, now)
    assert resolved.timestamp == at(*expected)
    assert resolved.warning is None
    assert parse_timestamp(typed, now, "--at") == at(*expected)  # what `add --at` calls


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("yesterday", (2026, 11, 30, 7, 25)),
        ("2 days ago", (2026, 11, 29, 7, 25)),
        ("a week ago", (2026, 11, 24, 7, 25)),
        ("last monday", (2026, 11, 30, 7, 25)),
        ("3 hours ago", (2026, 12, 1, 4, 25)),
        ("now", (2026, 12, 1, 7, 25)),
        ("yesterday 18:00", (2026, 11, 30, 18, 0)),
        ("yesterday at 6pm", (2026, 11, 30, 18, 0)),
        ("10:30 yesterday", (2026, 11, 30, 10, 30)),
        ("2 days ago at 9:15", (2026, 11, 29, 9, 15)),
        ("2024-05-01", (2024, 5, 1, 0, 0)),  # a calendar date alone: midnight, whatever the hour
        ("2024-05-01 10:30", (2024, 5, 1, 10, 30)),
        ("2024-05-01 at 10:30", (2024, 5, 1, 10, 30)),
        ("3 May 2024 10:30", (2024, 5, 3, 10, 30)),
    ],
)
def test_relative_dates_keep_the_time_of_day_and_dates_take_a_time(
    typed: str, expected: tuple[int, ...], now: float
) -> None:
    assert resolve_when(typed, now).timestamp == at(*expected)


def test_the_display_is_what_the_form_previews(now: float) -> None:
    assert resolve_when("7:00", now).display == "Tue 1 Dec 2026 07:00"
    assert resolve_when("10:30", now).display == "Mon 30 Nov 2026 10:30"


@pytest.mark.parametrize("typed", ["tomorrow", "in 2 days", "today 10:30", "2027-01-01"])
def test_future_moments_are_accepted_with_a_warning(typed: str, now: float) -> None:
    resolved = resolve_when(typed, now)
    assert resolved.timestamp > now
    assert resolved.warning == f"{resolved.display} is in the future"


def test_a_time_within_the_current_minute_is_not_future(now: float) -> None:
    assert resolve_when("7:26", now).timestamp == at(2026, 12, 1, 7, 26)
    assert resolve_when("7:26", now).warning is None


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("2024-13-01", "'2024-13-01' is not a real date"),
        ("2024-02-30", "not a real date"),
        ("25:00", "not a real time of day"),
        ("13:00pm", "not a real time of day"),
        ("10:61", "not a real time of day"),
        ("0001-01-01", "outside the accepted dates 1900-01-01 to 2200-12-31"),
        ("9999-12-31", "outside the accepted dates"),
        ("-99999999999999", "outside the accepted dates"),
        ("300 years ago", "outside the accepted dates"),
        ("99999999999999999999 days ago", "outside the accepted dates"),
        ("soonish-ish", "cannot understand 'soonish-ish' as a date (try 10:30"),
        ("  ", "expected a time"),
    ],
)
def test_bad_moments_are_one_line_errors_naming_the_field(
    typed: str, message: str, now: float
) -> None:
    with pytest.raises(ValidationError, match="^--at: .*" + message.replace("(", r"\(")) as err:
        resolve_when(typed, now)
    assert "\n" not in str(err.value)


def test_numbers_are_unix_seconds_or_milliseconds_in_range(now: float) -> None:
    assert resolve_when("1700000000", now).timestamp == 1_700_000_000
    assert parse_timestamp(1_700_000_000_123, now) == 1_700_000_000
    assert parse_timestamp(-2_000_000_000, now) == -2_000_000_000  # 1906
    for bad in (-99_999_999_999_999, 10**30, float("nan"), float("inf"), 10**400):
        with pytest.raises(ValidationError, match="created_at"):
            parse_timestamp(bad, now)
    with pytest.raises(ValidationError, match="expected a time"):
        parse_timestamp(True, now)


def test_imports_read_date_strings_the_same_at_any_hour() -> None:
    morning = float(at(2026, 12, 1, 7, 25))
    evening = float(at(2026, 12, 1, 22, 5))
    assert parse_timestamp("2024-05-01", morning) == parse_timestamp("2024-05-01", evening)
    assert parse_timestamp("2024-05-01T10:00:00+00:00", morning) == 1714557600


@pytest.mark.parametrize(
    "expr", ["0001-01-01", "0000", "9999-12-31", "1899-12-31", "2201", "500 years ago"]
)
def test_filter_dates_outside_the_range_are_refused(expr: str, now: float) -> None:
    with pytest.raises(ValidationError, match="outside the accepted dates"):
        parse_when(expr, now)


def test_filter_dates_at_the_ends_of_the_range(now: float) -> None:
    assert parse_when("1900-01-01", now) == (at(1900, 1, 1), at(1900, 1, 2))
    assert parse_when("2200-12-31", now) == (at(2200, 12, 31), at(2201, 1, 1))
    with pytest.raises(ValidationError, match="not a real date"):
        parse_when("2024-13-01", now)


def test_every_local_date_in_the_range_is_storable_in_any_zone(zone: object) -> None:
    for name in ("Pacific/Kiritimati", "Etc/GMT+12", "UTC"):
        zone(name)  # type: ignore[operator]
        clock = time.time()
        assert check_timestamp(parse_timestamp("1900-01-01", clock)) >= MIN_TIMESTAMP
        assert check_timestamp(parse_timestamp("2200-12-31 23:59", clock)) <= MAX_TIMESTAMP


@pytest.mark.parametrize(
    "stored",
    [-99_999_999_999_999, MIN_TIMESTAMP - 1, 0, 253402300799, 10**20, 2**63 - 1, -(2**63)],
)
def test_display_survives_any_stored_timestamp_east_and_west(stored: int, zone: object) -> None:
    for name in ("Asia/Tokyo", "America/Los_Angeles"):
        zone(name)  # type: ignore[operator]
        moment = safe_local_datetime(stored)
        assert 1899 <= moment.year <= 2201
        moment.strftime("%a %d %b %Y %H:%M")


def test_safe_local_datetime_is_exact_inside_the_range() -> None:
    assert safe_local_datetime(1_700_000_000) == datetime.fromtimestamp(1_700_000_000)
    assert safe_local_datetime(MAX_TIMESTAMP + 5) == datetime.fromtimestamp(MAX_TIMESTAMP)
    assert safe_local_datetime(MIN_TIMESTAMP).astimezone(UTC).year == 1899


def test_dst_change_keeps_the_wall_clock_for_yesterday(zone: object) -> None:
    zone("Europe/Berlin")  # type: ignore[operator]
    after_change = float(at(2026, 3, 29, 12, 0))  # clocks went forward at 02:00 that day
    assert resolve_when("yesterday", after_change).timestamp == at(2026, 3, 28, 12, 0)
    assert after_change - resolve_when("yesterday", after_change).timestamp == 23 * 3600
