"""The search box accepts whatever a person types: prose with colons, stray quotes, negation."""

from __future__ import annotations

import random
from datetime import datetime

import pytest

from ephemera_tui.engine.errors import ValidationError
from ephemera_tui.engine.filters import SearchFilter, tag_spellings
from ephemera_tui.engine.query import parse_query, resolve_when

NOW = datetime(2026, 12, 1, 7, 25).timestamp()


@pytest.mark.parametrize(
    ("query", "terms"),
    [
        ("Note: something", ("note", "something")),
        ("Re: meeting", ("re", "meeting")),
        ("TODO: call mom", ("todo", "call", "mom")),
        ("email: anna@x.com", ("email", "anna", "x", "com")),
        ("CS:GO", ("cs", "go")),
        ("tags:work", ("tags", "work")),
        ("Tag: groceries", ("tag", "groceries")),  # a filter name with nothing attached is prose
        ("Importance: high", ("importance", "high")),
        ("before: the storm", ("before", "the", "storm")),
        ("-5 degrees", ("5", "degrees")),  # a minus before a number is not a negation
        ("see https://example.com", ("see", "https", "example", "com")),
    ],
)
def test_unknown_keys_and_bare_filter_names_are_plain_text(query: str, terms: tuple) -> None:
    parsed = parse_query(query, NOW)
    assert parsed.terms == terms
    assert parsed.filter.is_empty
    assert parsed.problems == ()
    assert parsed.text == query


@pytest.mark.parametrize(
    ("query", "text", "phrases"),
    [
        ('"', "", ()),
        ('say "hello world', "say hello world", ("hello world",)),
        (
            '"closed" and "open to the end',
            "closed and open to the end",
            ("closed", "open to the end"),
        ),
        ('5" screen', '5" screen', ()),
    ],
)
def test_an_unclosed_quote_is_a_phrase_to_the_end(query: str, text: str, phrases: tuple) -> None:
    parsed = parse_query(query, NOW)
    assert (parsed.text, parsed.filter.phrases, parsed.problems) == (text, phrases, ())


@pytest.mark.parametrize(
    ("query", "left_out"),
    [
        ("coffee importance>=300", "'importance>=300': importance must be from 0 to 255"),
        ("coffee importance>= lots", "importance needs a number from 0 to 255, got 'lots'"),
        ("coffee importance>255", "can never match"),
        ("coffee after:blorptag", "'after:blorptag': cannot understand 'blorptag' as a date"),
        ("coffee on:0001-01-01", "outside the accepted dates 1900-01-01 to 2200-12-31"),
        ("coffee after:0000", "'0000' is outside the accepted dates"),
        ("coffee on:9999-12-31", "outside the accepted dates"),
        ("coffee on:2024-13-01", "'2024-13-01' is not a real date"),
        ('coffee tag:"two words"', "a tag has no spaces"),
        ("coffee -after:2024", "cannot be negated"),
    ],
)
def test_a_known_filter_with_a_bad_value_is_left_out_and_the_rest_runs(
    query: str, left_out: str
) -> None:
    parsed = parse_query(query, NOW)
    assert parsed.terms == ("coffee",)
    assert parsed.filter.is_empty
    assert len(parsed.problems) == 1
    assert parsed.problems[0].startswith("left out ")
    assert left_out in parsed.problems[0]
    assert "\n" not in parsed.problems[0]


def test_good_filters_beside_a_bad_one_still_apply() -> None:
    parsed = parse_query("walk tag:trip importance>=999 on:2024-05-01", NOW)
    assert parsed.filter.tags == ("trip",)
    assert parsed.filter.min_importance is None
    assert parsed.filter.after == int(datetime(2024, 5, 1).timestamp())
    assert len(parsed.problems) == 1


def test_contradictory_dates_are_kept_and_said() -> None:
    parsed = parse_query("after:2025-01-01 before:2024-01-01", NOW)
    assert parsed.filter.after is not None and parsed.filter.before is not None
    assert parsed.problems == ("after: is not earlier than before: (nothing can match)",)


def test_negation() -> None:
    parsed = parse_query('hiking -rain -"bad weather" -tag:Work -source:diary -well-known', NOW)
    flt = parsed.filter
    assert parsed.terms == ("hiking",)
    assert parsed.text == "hiking"
    assert flt.exclude_terms == ("rain",)
    assert flt.exclude_phrases == ("bad weather", "well-known")
    assert flt.exclude_tags == ("work",)
    assert flt.exclude_sources == ("diary",)
    assert parsed.problems == ()


def test_negation_alone_lists_everything_else() -> None:
    parsed = parse_query("-work", NOW)
    assert not parsed.has_text
    assert parsed.filter.exclude_terms == ("work",)


def test_tag_filters_are_folded_and_tags_keep_their_case_elsewhere() -> None:
    assert parse_query("tag:Caroline TAG:Trip", NOW).filter.tags == ("caroline", "trip")
    assert SearchFilter(tags=("Work", "work")).tags == ("work",)
    assert tag_spellings("caroline") == ("caroline", "Caroline", "CAROLINE")
    assert tag_spellings("new-york") == ("new-york", "New-york", "New-York", "NEW-YORK")
    # every usual spelling folds back to the tag: none can match another tag
    assert all(s.lower() == "straße" for s in tag_spellings("straße"))


def test_payload_part_keeps_what_payloads_can_answer() -> None:
    flt = parse_query('x "p" -y -"q" -tag:a -source:b tag:c importance>=3', NOW).filter
    part = flt.payload_part
    assert (part.tags, part.exclude_tags, part.exclude_sources) == (("c",), ("a",), ("b",))
    assert (part.phrases, part.exclude_terms, part.exclude_phrases) == ((), (), ())
    assert part.min_importance == 3
    assert flt.needs_sql_check
    assert not parse_query("x tag:c", NOW).filter.needs_sql_check


def _fuzz(alphabet: str, count: int, longest: int, seed: int) -> list[str]:
    """Seeded random strings over ``alphabet``: the same cases on every run."""
    rng = random.Random(seed)
    return ["".join(rng.choices(alphabet, k=rng.randint(0, longest))) for _ in range(count)]


QUERYISH = 'abZ:"-_ 09>=<#/.tagsourcefimpnbeo\n\tÄß' + "\u202e\x1b"


def test_parse_query_never_raises_on_query_like_text() -> None:
    for raw in _fuzz(QUERYISH, 3000, 40, seed=13):
        parsed = parse_query(raw, NOW)
        assert all("\n" not in p for p in parsed.problems), raw


def test_resolve_when_answers_or_says_why_in_one_line() -> None:
    for raw in _fuzz("0123456789:-T +apmdysagoinw.", 1500, 25, seed=16):
        try:
            resolved = resolve_when(raw, NOW)
        except ValidationError as exc:
            assert "\n" not in str(exc), raw
        else:
            assert resolved.display, raw
