"""Validation of drafts and the query syntax (no database needed)."""

from __future__ import annotations

from datetime import datetime

import pytest

from ephemera_tui.engine.domain import Draft
from ephemera_tui.engine.errors import ValidationError
from ephemera_tui.engine.query import parse_query, parse_timestamp, parse_when

NOW = datetime(2026, 3, 18, 15, 30).timestamp()  # a Wednesday, local time


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"content": "  "}, "content must not be empty"),
        ({"content": "x", "importance": 300}, "importance must be from 0 to 255"),
        ({"content": "x", "confidence": -1}, "confidence must be from 0 to 255"),
        ({"content": "x", "tags": ("a b",)}, "must not contain spaces"),
        ({"content": "x", "source": "s" * 51}, "longer than 50"),
        ({"content": "x", "associations": (0,)}, "not a memory id"),
    ],
)
def test_bad_drafts_are_refused_with_a_clear_message(kwargs: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Draft(**kwargs)


def test_draft_normalises_tags() -> None:
    assert Draft("x", tags=(" a", "b", "a")).tags == ("a", "b")


def test_query_filters() -> None:
    parsed = parse_query(
        'hiking "alpine lake" tag:trip tag:2024 source:diary importance>=200 confidence<10',
        NOW,
    )
    flt = parsed.filter
    assert parsed.terms == ("hiking", "alpine", "lake")
    assert flt.phrases == ("alpine lake",)
    assert flt.tags == ("trip", "2024")
    assert flt.sources == ("diary",)
    assert (flt.min_importance, flt.max_importance) == (200, None)
    assert (flt.min_confidence, flt.max_confidence) == (None, 9)


@pytest.mark.parametrize(
    ("expr", "start"),
    [
        ("today", datetime(2026, 3, 18)),
        ("yesterday", datetime(2026, 3, 17)),
        ("3 days ago", datetime(2026, 3, 15)),
        ("last week", datetime(2026, 3, 9)),
        ("this month", datetime(2026, 3, 1)),
        ("last month", datetime(2026, 2, 1)),
        ("2024-05-01", datetime(2024, 5, 1)),
        ("2024-05", datetime(2024, 5, 1)),
        ("last monday", datetime(2026, 3, 16)),
    ],
)
def test_natural_dates(expr: str, start: datetime) -> None:
    assert parse_when(expr, NOW)[0] == int(start.timestamp())


def test_after_and_before_with_multiword_dates() -> None:
    parsed = parse_query("after:3 days ago before:today coffee", NOW)
    assert parsed.text == "coffee"
    assert parsed.filter.after == int(datetime(2026, 3, 15).timestamp())
    assert parsed.filter.before == int(datetime(2026, 3, 18).timestamp())
    on = parse_query("on:yesterday", NOW).filter
    assert (on.after, on.before) == (
        int(datetime(2026, 3, 17).timestamp()),
        int(datetime(2026, 3, 18).timestamp()),
    )


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("importance>=300", "from 0 to 255"),
        ("importance>=lots", "needs a number"),
        ("after:blorptag", "cannot understand 'blorptag' as a date"),
        ("after:2025-01-01 before:2024-01-01", "nothing can match"),
    ],
)
def test_bad_filter_values_are_named_as_problems(query: str, message: str) -> None:
    problems = parse_query(query, NOW).problems
    assert len(problems) == 1
    assert message in problems[0]


def test_urls_are_text_not_filters() -> None:
    assert parse_query("see https://example.com", NOW).filter.is_empty


def test_timestamps_in_seconds_millis_and_iso() -> None:
    assert parse_timestamp(1_700_000_000, NOW) == 1_700_000_000
    assert parse_timestamp(1_700_000_000_123, NOW) == 1_700_000_000
    assert parse_timestamp("2024-05-01T10:00:00+00:00", NOW) == 1714557600
    with pytest.raises(ValidationError, match="created_at"):
        parse_timestamp("soonish-ish", NOW)
