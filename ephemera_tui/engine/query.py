"""Query syntax: free text, "quoted phrases", ``tag:``, ``source:``, ``importance>=N``,
``confidence<N``, ``after:``/``before:``/``on:`` with ISO or natural dates (``today``,
``yesterday``, ``last week``, ``3 days ago``, ``"2024-05-01"``), and negation (``-word``,
``-"a phrase"``, ``-tag:x``, ``-source:x``).

The parser accepts whatever a person types. A ``word:`` that is not a filter is plain text
(``Re: meeting``, ``CS:GO``), so is a filter name with nothing after its colon (``Tag: x``); an
unclosed quote is a phrase to the end of the line. Only a known filter with a bad value is a
problem, and then that filter alone is left out: the rest of the query runs and the problem is
in :attr:`ParsedQuery.problems`, for the search result's notices.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .dates import (
    MAX_DATE,
    MIN_DATE,
    WhenResolution,
    parse_timestamp,
    parse_when,
    resolve_when,
    safe_local_datetime,
)
from .errors import ValidationError
from .filters import SearchFilter

__all__ = [
    "KNOWN_KEYS",
    "MAX_DATE",
    "MIN_DATE",
    "ParsedQuery",
    "WhenResolution",
    "parse_query",
    "parse_timestamp",
    "parse_when",
    "resolve_when",
    "safe_local_datetime",
]

KNOWN_KEYS = ("tag", "source", "after", "before", "on", "importance", "confidence")
_DATE_KEYS = ("after", "before", "on")
_COMPARE = re.compile(r"^(importance|confidence)(>=|<=|>|<|=|:)(.*)$", re.IGNORECASE)
_KEYED = re.compile(r"^([A-Za-z_]+):(.*)$", re.DOTALL)
_WORD = re.compile(r"\w+", re.UNICODE)
# -key:"value", -"phrase" (closed, or open to the end of the line), or a run of non-spaces.
_TOKENS = re.compile(
    r'(?P<neg>-)?(?:(?P<key>[A-Za-z_]+):)?"(?P<quoted>[^"]*)(?:"|$)|(?P<plain>\S+)'
)


@dataclass(frozen=True, slots=True)
class ParsedQuery:
    """A query split into the words to match, the filter to apply and what was left out."""

    raw: str
    text: str  # free text (phrases included) for the semantic side
    terms: tuple[str, ...]  # lower-cased words for the keyword side
    filter: SearchFilter = field(default_factory=SearchFilter)
    problems: tuple[str, ...] = ()  # one line each: a filter with a bad value, left out

    @property
    def has_text(self) -> bool:
        return bool(self.text.strip())


@dataclass(frozen=True, slots=True)
class _Token:
    text: str  # the value of a quoted token, else the whole token
    quoted: bool = False
    key: str | None = None  # the key written before a quoted value (``tag:"x"``)
    negated: bool = False  # a ``-`` before a quoted token


def _split(raw: str) -> list[_Token]:
    tokens: list[_Token] = []
    for match in _TOKENS.finditer(raw):
        if match.group("plain") is not None:
            tokens.append(_Token(match.group("plain")))
        else:
            tokens.append(
                _Token(
                    match.group("quoted").strip(),
                    quoted=True,
                    key=match.group("key"),
                    negated=match.group("neg") is not None,
                )
            )
    return tokens


def _byte(name: str, raw: str) -> int:
    raw = raw.strip()
    if not re.fullmatch(r"\d+", raw):
        raise ValidationError(f"{name} needs a number from 0 to 255, got {raw!r}")
    number = int(raw)
    if number > 255:
        raise ValidationError(f"{name} must be from 0 to 255, got {number}")
    return number


class _Builder:
    """Collects the parts of one query while its tokens are read."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.words: list[str] = []
        self.problems: list[str] = []
        self.lists: dict[str, list[str]] = {
            "sources": [],
            "tags": [],
            "phrases": [],
            "exclude_sources": [],
            "exclude_tags": [],
            "exclude_terms": [],
            "exclude_phrases": [],
        }
        self.values: dict[str, Any] = {}

    def problem(self, token: str, reason: str) -> None:
        self.problems.append(f"left out {token!r}: {reason}")

    def phrase(self, text: str, negated: bool) -> None:
        if not text:
            return
        if negated:
            self.lists["exclude_phrases"].append(text)
        else:
            self.lists["phrases"].append(text)
            self.words.append(text)

    def negation(self, body: str) -> None:
        """``-word`` drops memories holding the word; ``-well-known`` the literal text."""
        if _WORD.fullmatch(body):
            self.lists["exclude_terms"].append(body.lower())
        else:
            self.lists["exclude_phrases"].append(body)

    def compare(self, token: str, name: str, op: str, value: str) -> None:
        try:
            number = _byte(name, value)
        except ValidationError as exc:
            self.problem(token, str(exc))
            return
        if op == ">" and number >= 255:
            self.problem(token, f"{name}>{number} can never match (the most is 255)")
        elif op == "<" and number <= 0:
            self.problem(token, f"{name}<{number} can never match (the least is 0)")
        elif op == ">":
            self.values[f"min_{name}"] = number + 1
        elif op == "<":
            self.values[f"max_{name}"] = number - 1
        else:
            if op in (">=", ":", "="):
                self.values[f"min_{name}"] = number
            if op in ("<=", "="):
                self.values[f"max_{name}"] = number

    def date(self, token: str, key: str, value: str) -> None:
        try:
            start, end = parse_when(value, self.now, where="")
        except ValidationError as exc:
            self.problem(token, str(exc))
            return
        if key == "after":
            self.values["after"] = max(start, self.values.get("after", start))
        elif key == "before":
            self.values["before"] = min(start, self.values.get("before", start))
        else:
            self.values["after"], self.values["before"] = start, end

    def result(self, raw: str) -> ParsedQuery:
        text = " ".join(self.words)
        terms = tuple(w.lower() for w in _WORD.findall(text))
        lists: dict[str, Any] = {n: tuple(dict.fromkeys(v)) for n, v in self.lists.items()}
        search_filter = SearchFilter(**lists, **self.values)
        problems = list(self.problems)
        after, before = search_filter.after, search_filter.before
        if after is not None and before is not None and after >= before:
            problems.append("after: is not earlier than before: (nothing can match)")
        return ParsedQuery(raw, text, terms, search_filter, tuple(problems))


def parse_query(raw: str, now: float) -> ParsedQuery:
    """Parse a search query; never raises. Filters with bad values land in ``problems``."""
    built = _Builder(now)
    tokens = _split(raw)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if token.quoted:
            key = (token.key or "").lower()
            if key in ("tag", "source") or key in _DATE_KEYS:
                i = _keyed(built, f'{token.key}:"{token.text}"', key, token.text, [], i, token)
                continue
            if token.key:
                built.words.append(token.key + ":")
            built.phrase(token.text, token.negated)
            continue
        text = token.text
        negated = len(text) > 1 and text[0] == "-" and (text[1].isalpha() or text[1] == "_")
        body = text[1:] if negated else text
        compare = _COMPARE.match(body)
        if compare:
            name, op, value = compare.group(1).lower(), compare.group(2), compare.group(3)
            if negated:
                built.problem(text, f"{name} cannot be negated; write {name}<N or {name}>N")
                continue
            if not value:
                following = tokens[i].text if i < len(tokens) and not tokens[i].quoted else ""
                if op == ":" and not following.isdigit():
                    built.words.append(text)  # "Importance: high" is prose
                    continue
                value, i = (following, i + 1) if following else ("", i)
            built.compare(text, name, op, value)
            continue
        keyed = _KEYED.match(body)
        if keyed and keyed.group(2) and not keyed.group(2).startswith("//"):
            key = keyed.group(1).lower()
            if key in ("tag", "source") or key in _DATE_KEYS:
                i = _keyed(
                    built, text, key, keyed.group(2), tokens, i, _Token(text, negated=negated)
                )
                continue
        if negated:
            built.negation(body)
        else:
            built.words.append(text)
    return built.result(raw)


def _keyed(
    built: _Builder, shown: str, key: str, value: str, tokens: list[_Token], i: int, token: _Token
) -> int:
    """Apply ``tag:``/``source:``/a date filter; return the index of the next unread token."""
    if key in _DATE_KEYS:
        if token.negated:
            built.problem(shown, f"{key}: cannot be negated; use before:/after: instead")
            return i
        joined, i = _take_date(value, tokens, i)
        built.date(shown if joined == value else f"{key}:{joined}", key, joined)
        return i
    if not value or any(c.isspace() for c in value):
        built.problem(shown, f"a {key} has no spaces; write {key}:work")
        return i
    name = "tags" if key == "tag" else "sources"
    built.lists[f"exclude_{name}" if token.negated else name].append(value)
    return i


def _take_date(value: str, tokens: list[_Token], i: int) -> tuple[str, int]:
    """A date may run over several tokens (``after:last week``, ``after:3 days ago``)."""
    for extra in (2, 1):
        following = tokens[i : i + extra]
        if len(following) == extra and not any(t.quoted for t in following):
            candidate = " ".join([value] + [t.text for t in following])
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
