"""SQL conditions for a :class:`~ephemera_tui.engine.filters.SearchFilter`, shared by browse,
count, keyword search and the re-check of vector hits (same meaning as the payload filter)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Boolean, exists, literal, not_, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ColumnElement

from ..filters import SearchFilter
from .keyword import escape_like, fts_phrase
from .tables import FRAGMENTS, TAGS


class holds_word(ColumnElement[bool]):  # noqa: N801 - reads as a SQL function
    """True when a memory's content holds ``word`` the way the keyword side reads words:
    FTS5 on SQLite (same tokenizer and stemming as a keyword match), a whole-word REGEXP on
    MySQL/MariaDB (case-insensitive under the column's collation). For ``-word`` in a query."""

    inherit_cache = False  # the word is rendered per statement
    type = Boolean()

    def __init__(self, word: str) -> None:
        self.word = word


@compiles(holds_word)
def _holds_word_fts5(element: holds_word, compiler: SQLCompiler, **kw: Any) -> str:
    phrase = compiler.process(literal(fts_phrase(element.word)), **kw)
    fragment_id = compiler.process(FRAGMENTS.c.id, **kw)
    return f"{fragment_id} IN (SELECT rowid FROM memory_fts WHERE memory_fts MATCH {phrase})"


@compiles(holds_word, "mysql")
@compiles(holds_word, "mariadb")
def _holds_word_regexp(element: holds_word, compiler: SQLCompiler, **kw: Any) -> str:
    pattern = compiler.process(literal(r"\b" + re.escape(element.word) + r"\b"), **kw)
    return f"{compiler.process(FRAGMENTS.c.content, **kw)} REGEXP {pattern}"


def _has_tag(tag: str, whole_set: bool) -> Any:
    """The memory carries ``tag`` (folded) in any case: its folded form, by index, on every
    backend.

    ``whole_set``: as ``id IN (memories with the tag)``, found once by index, for counts over
    every match; otherwise a probe of each row's tags, which stops as soon as a page of
    newest rows or a candidate list is checked."""
    c = FRAGMENTS.c
    if whole_set:
        return c.id.in_(select(TAGS.c.memory_id).where(TAGS.c.folded == tag))
    return exists().where(TAGS.c.memory_id == c.id, TAGS.c.folded == tag)


def has_any_tag(tags: Sequence[str]) -> Any:
    """The memory carries at least one of ``tags`` (folded), as one set found by index."""
    c = FRAGMENTS.c
    return c.id.in_(select(TAGS.c.memory_id).where(TAGS.c.folded.in_(list(tags))))


def filter_conditions(flt: SearchFilter, *, whole_set: bool = False) -> list[Any]:
    """SQL conditions for a filter (same meaning as the vector-side payload filter).

    ``whole_set``: the statement aggregates over every match (counts), see :func:`_has_tag`."""
    c = FRAGMENTS.c
    conds: list[Any] = []
    if flt.after is not None:
        conds.append(c.created_at >= flt.after)
    if flt.before is not None:
        conds.append(c.created_at < flt.before)
    if flt.sources:
        conds.append(c.source.in_(list(flt.sources)))
    if flt.exclude_sources:
        conds.append(c.source.not_in(list(flt.exclude_sources)))
    for name in ("importance", "confidence"):
        low, high = getattr(flt, f"min_{name}"), getattr(flt, f"max_{name}")
        if low is not None:
            conds.append(getattr(c, name) >= low)
        if high is not None:
            conds.append(getattr(c, name) <= high)
    for tag in flt.tags:
        conds.append(_has_tag(tag, whole_set))
    if flt.exclude_tags:
        excluded = [_has_tag(tag, whole_set) for tag in flt.exclude_tags]
        conds.append(not_(or_(*excluded)))
    for phrase in flt.phrases:
        conds.append(c.content.like(f"%{escape_like(phrase)}%", escape="\\"))
    for phrase in flt.exclude_phrases:
        conds.append(c.content.not_like(f"%{escape_like(phrase)}%", escape="\\"))
    for word in flt.exclude_terms:
        if word:
            conds.append(not_(holds_word(word)))
    if flt.ids is not None:
        conds.append(c.id.in_(list(flt.ids)))
    if flt.exclude_ids:
        conds.append(c.id.not_in(list(flt.exclude_ids)))
    return conds
