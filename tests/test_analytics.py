"""Patterns over a known dataset, on SQLite and MariaDB: the numbers are worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ephemera_tui.engine import Draft, Engine
from ephemera_tui.engine.analytics import (
    UNSET,
    activity,
    distribution,
    hours_and_weekdays,
    patterns,
    streaks,
    tag_trends,
)

# The engine fixture's clock: 2026-01-01T00:00:00Z, a Thursday.


def at(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


DATASET = [
    # content, when (UTC), source, importance, confidence, tags
    ("A", "2025-12-31T09:30", "note", 200, 10, ("work",)),
    ("B", "2025-12-31T09:10", "chat", 40, None, ("work", "travel")),
    ("C", "2025-12-30T14:00", "note", None, 255, ("garden",)),
    ("D", "2025-11-20T09:00", "web", 0, 128, ("garden",)),
    ("E", "2025-11-21T22:00", "web", 31, 128, ("garden",)),
    ("F", "2024-06-01T12:00", "note", 255, 128, ("music",)),
]


@pytest.fixture
def known(engine: Engine) -> Engine:
    for content, when, source, importance, confidence, tags in DATASET:
        engine.add(
            Draft(
                content=f"memory {content}",
                created_at=at(when),
                source=source,
                importance=importance,
                confidence=confidence,
                tags=tags,
            )
        )
    return engine


def test_activity_per_day_week_month(known: Engine) -> None:
    assert activity(known, "day", 0) == [
        (at("2024-06-01T00:00"), 1),
        (at("2025-11-20T00:00"), 1),
        (at("2025-11-21T00:00"), 1),
        (at("2025-12-30T00:00"), 1),
        (at("2025-12-31T00:00"), 2),
    ]
    assert activity(known, "week", 0) == [
        (at("2024-05-27T00:00"), 1),  # weeks start on Monday
        (at("2025-11-17T00:00"), 2),
        (at("2025-12-29T00:00"), 3),
    ]
    assert activity(known, "month", 0) == [
        (at("2024-06-01T00:00"), 1),
        (at("2025-11-01T00:00"), 2),
        (at("2025-12-01T00:00"), 3),
    ]
    # Two hours east of UTC, E (Friday 22:00 UTC) happens on Saturday the 22nd.
    days = dict(activity(known, "day", 7200))
    assert days[at("2025-11-22T00:00") - 7200] == 1
    with pytest.raises(ValueError):
        activity(known, "year", 0)


def test_source_and_distributions(known: Engine) -> None:
    imp = dict(distribution(known, "importance"))
    assert imp == {
        "0-31": 2,
        "32-63": 1,
        "64-95": 0,
        "96-127": 0,
        "128-159": 0,
        "160-191": 0,
        "192-223": 1,
        "224-255": 1,
        UNSET: 1,
    }
    conf = dict(distribution(known, "confidence"))
    assert conf["0-31"] == 1 and conf["128-159"] == 3 and conf["224-255"] == 1
    assert conf[UNSET] == 1
    assert sum(conf.values()) == len(DATASET)
    p = patterns(known, utc_offset=0)
    assert p.sources == [("note", 3), ("web", 2), ("chat", 1)]


def test_busiest_hours_and_weekdays(known: Engine) -> None:
    hours, weekdays = hours_and_weekdays(known, 0)
    assert hours[9] == 3 and hours[14] == 1 and hours[22] == 1 and hours[12] == 1
    assert sum(hours) == len(DATASET)
    # Mon Tue Wed Thu Fri Sat Sun
    assert weekdays == [0, 1, 2, 1, 1, 1, 0]
    hours, weekdays = hours_and_weekdays(known, 7200)
    assert hours[11] == 3 and hours[0] == 1 and hours[14] == 1 and hours[16] == 1
    assert weekdays == [0, 1, 2, 1, 0, 2, 0]
    p = patterns(known, utc_offset=0)
    assert p.busiest_hour == 9
    assert p.busiest_weekday == "Wed"


def test_tags_rising_and_falling(known: Engine) -> None:
    now = at("2026-01-01T00:00")
    rising, falling, recent, previous = tag_trends(known, now, 30)
    assert [(t.tag, t.previous, t.recent, t.change) for t in rising] == [
        ("work", 0, 2, 2),
        ("travel", 0, 1, 1),
    ]
    assert [(t.tag, t.previous, t.recent, t.change) for t in falling] == [("garden", 2, 1, -1)]
    assert (recent, previous) == (3, 2)
    # Over a year, music (June 2024) falls out of both periods; nothing in the earlier one.
    rising, falling, recent, previous = tag_trends(known, now, 7)
    assert {t.tag for t in rising} == {"work", "travel", "garden"}
    assert falling == [] and (recent, previous) == (3, 0)


def test_summary_and_streaks(known: Engine) -> None:
    p = patterns(known, utc_offset=0)
    assert p.total == 6
    assert p.first_at == at("2024-06-01T12:00")
    assert p.last_at == at("2025-12-31T09:30")
    assert p.active_days == 5
    assert p.per_active_day == 1.2
    assert (p.longest_streak, p.current_streak) == (2, 2)
    assert p.top_tags[0] == ("garden", 3)
    data = p.to_dict()
    assert data["weekdays"]["Wed"] == 2
    assert data["rising"][0] == {"tag": "work", "recent": 2, "previous": 0, "change": 2}


def test_streaks_edge_cases() -> None:
    day = 86400
    assert streaks([], 10 * day) == (0, 0)
    assert streaks([(0, 1), (day, 1), (2 * day, 1), (5 * day, 1)], 5 * day + 10) == (3, 1)
    assert streaks([(0, 1), (day, 1)], 9 * day) == (2, 0)  # the run ended a week ago


def test_empty_journal(engine: Engine) -> None:
    p = patterns(engine)
    assert p.total == 0 and p.first_at is None and p.active_days == 0
    assert p.busiest_hour is None and p.busiest_weekday is None
    assert p.rising == [] and p.falling == []
    assert all(n == 0 for _, n in p.importance)
