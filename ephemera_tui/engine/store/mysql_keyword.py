"""Keyword search on MySQL/MariaDB: InnoDB FULLTEXT finds the candidates, BM25 ranks them.

InnoDB scores a match as term frequency times IDF squared, with no length normalisation and
no stemming, so on its own it ranks long documents far below SQLite's FTS5 bm25 (SciFact
nDCG@10 of the keyword side: 0.555 against 0.695). Here FULLTEXT only recalls: in boolean
mode, each word and its Porter stem as a prefix (``reductions`` → ``reductions reduct*``), so
inflected forms match as they do under FTS5's porter tokenizer. The recalled rows are then
scored with FTS5's BM25 over the same stems (``engine.ranking.bm25_rescore``). Words under
InnoDB's minimum token size (3) are matched with LIKE and join the same re-scoring, and the
same postings budget as on SQLite leaves the commonest words out.

BM25 needs each stem's document frequency, the number of memories and their mean length.
They come from a sample of the newest rows (and FULLTEXT counts for words rare in it) and are
cached for a few minutes per database: they only weigh words against each other, so a little
staleness does not change a ranking.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Connection, func, or_, select
from sqlalchemy.dialects.mysql import match as mysql_match

from ..ranking import bm25_rescore, stem_word, stems
from .keyword import TtlCache, escape_like, within_budget
from .tables import FRAGMENTS

MIN_TOKEN = 3  # innodb_ft_min_token_size's default: shorter words are not indexed
RECALL_FACTOR = 2  # rows recalled per row returned, for BM25 to re-rank
SAMPLE_ROWS = 2000  # newest rows that give the mean length and the common words' counts
SAMPLE_MIN_HITS = 5  # a stem in this many sampled rows is counted from the sample
COUNT_MAX = 200_000  # past this many memories, no word is counted with FULLTEXT
NEWEST_SCAN = 50_000  # rows read, newest first, for the newest matches of a common word
LIKE_MAX = 100_000  # short words (not in the index) are matched by LIKE up to this many rows
STATS_TTL_S = 300.0


@dataclass(frozen=True)
class _Corpus:
    """What BM25 needs of the whole table, and the newest id when it was counted. ``sampled``
    holds, for each stem, how many of the newest ``sample_size`` rows contain it."""

    total: int
    mean_length: float
    newest: int
    sample_size: int = 0
    sampled: dict[str, int] = field(default_factory=dict, compare=False)
    recent_floor: int = 0  # the id :data:`NEWEST_SCAN` rows down from the newest (0: fewer)

    @property
    def whole(self) -> bool:
        """Whether the sample is the whole table (its counts are then exact)."""
        return self.sample_size >= self.total


_STATS = TtlCache(STATS_TTL_S)


def _boolean_query(words: Sequence[str]) -> str:
    """The boolean-mode query: each word, and its stem as a prefix where stemming shortened
    it (no operator on either, so any one of them matches)."""
    parts: list[str] = []
    for word in dict.fromkeys(words):
        stem = stem_word(word)
        parts.append(word)
        if stem != word and len(stem) >= MIN_TOKEN:
            parts.append(stem + "*")
    return " ".join(parts)


def _newest_rows(conn: Connection) -> list[str]:
    query = select(FRAGMENTS.c.content).order_by(FRAGMENTS.c.id.desc()).limit(SAMPLE_ROWS)
    return [content for (content,) in conn.execute(query)]


_REFRESHING: set[str] = set()  # databases whose statistics a thread is counting again
_REFRESH_LOCK = threading.Lock()


def _corpus(conn: Connection, db: str) -> _Corpus:
    """The table's size, and the newest rows' mean length and stem counts: cached, and
    counted again once they are :data:`STATS_TTL_S` old or a tenth (or 50) more rows have
    been added since, which happens on a thread while searches go on with the statistics
    they have (a million rows take 0.3-0.4 s to count); at once, though, when there are none
    yet or the newest row counted then is gone (a delete, or a database emptied and filled
    again under the same URL: the id floor of the newest rows may no longer hold)."""
    aged = _STATS.get_aged((db, "\x00corpus"))
    if aged is not None:
        age, cached = aged[0], cast(_Corpus, aged[1])
        # Ids grow with time, not by one: count the rows from the newest one seen on (a
        # short range of the primary key); the smallest id there says whether it is still in.
        since = select(func.count(), func.min(FRAGMENTS.c.id)).where(
            FRAGMENTS.c.id >= cached.newest
        )
        rows, first = conn.execute(since).one()
        if first == cached.newest:
            if age >= STATS_TTL_S or rows - 1 > max(50, cached.total // 10):
                _refresh_later(conn, db)
            return cached
    return _count_corpus(conn, db)


def _refresh_later(conn: Connection, db: str) -> None:
    """Count the statistics again on a thread of its own, with its own connection."""
    with _REFRESH_LOCK:
        if db in _REFRESHING:
            return
        _REFRESHING.add(db)
    sql_engine = conn.engine

    def refresh() -> None:
        # On failure the old statistics stay, and the next search tries again.
        try:
            with contextlib.suppress(Exception), sql_engine.connect() as own:
                _count_corpus(own, db)
        finally:
            with _REFRESH_LOCK:
                _REFRESHING.discard(db)

    threading.Thread(target=refresh, name="ephemera-keyword-stats", daemon=True).start()


def _count_corpus(conn: Connection, db: str) -> _Corpus:
    """Count the statistics :func:`_corpus` caches, and cache them."""
    newest = int(conn.execute(select(func.max(FRAGMENTS.c.id))).scalar() or 0)
    total = int(conn.execute(select(func.count()).select_from(FRAGMENTS)).scalar() or 0)
    sampled: Counter[str] = Counter()
    words = 0
    rows = _newest_rows(conn)
    for content in rows:
        tokens = stems(content)
        words += len(tokens)
        sampled.update(set(tokens))
    mean = words / len(rows) if rows else 0.0
    floor_id = conn.execute(
        select(FRAGMENTS.c.id).order_by(FRAGMENTS.c.id.desc()).offset(NEWEST_SCAN - 1).limit(1)
    ).scalar()
    corpus = _Corpus(total, mean, newest, len(rows), dict(sampled), int(floor_id or 0))
    _STATS.put((db, "\x00corpus"), corpus)
    return corpus


def _doc_freq(conn: Connection, stem: str, corpus: _Corpus) -> int:
    """How many memories hold ``stem``. From the sample of newest rows when it is the whole
    table or the stem is common there (scaled up; counting a common word with FULLTEXT walks
    a long posting list: hundreds of ms at a million memories), else with FULLTEXT (a rare
    word's postings are short): memories with a word starting with the stem. Past
    :data:`COUNT_MAX` memories every count comes from the sample (InnoDB took up to 0.45 s
    to count even a word found in fewer than 5 of the sampled rows, at a million)."""
    hits = corpus.sampled.get(stem, 0)
    estimate = corpus.whole or hits >= SAMPLE_MIN_HITS or len(stem) < MIN_TOKEN
    if estimate or corpus.total > COUNT_MAX:
        return round(hits * corpus.total / corpus.sample_size) if corpus.sample_size else 0
    matches = mysql_match(FRAGMENTS.c.content, against=stem + "*").in_boolean_mode()
    return int(conn.execute(select(func.count()).where(matches)).scalar() or 0)


def _doc_freqs(conn: Connection, stems_: Sequence[str], corpus: _Corpus, db: str) -> dict[str, int]:
    """Each stem's document frequency, cached per database and corpus count."""
    out: dict[str, int] = {}
    for stem in stems_:
        key = (db, f"{corpus.newest}:{stem}")
        found = _STATS.get(key)
        if found is None:
            found = _doc_freq(conn, stem, corpus)
            _STATS.put(key, found)
        out[stem] = int(found)
    return out


def _like_matches(
    conn: Connection, patterns: Sequence[str], conds: list[Any], limit: int, floor: int = 0
) -> list[tuple[int, str]]:
    """Up to ``limit`` rows passing ``conds`` with an id of at least ``floor``, newest first,
    that hold one of ``patterns`` anywhere (LIKE reads the primary key backwards until enough
    are found; re-scoring drops rows where a pattern is only part of a longer word)."""
    likes = [FRAGMENTS.c.content.like(f"%{escape_like(p)}%", escape="\\") for p in patterns]
    query = (
        select(FRAGMENTS.c.id, FRAGMENTS.c.content)
        .where(FRAGMENTS.c.id >= floor, or_(*likes), *conds)
        .order_by(FRAGMENTS.c.id.desc())
        .limit(limit)
    )
    return [(int(r.id), r.content) for r in conn.execute(query)]


def mysql_keyword(
    conn: Connection,
    words: list[str],
    conds: list[Any],
    limit: int,
    budget: int | None = None,
    db: str = "",
) -> list[tuple[int, float]]:
    """Memories matching any of ``words`` and passing ``conds``, best BM25 first. Past
    ``budget`` postings the commonest words are left out, as on SQLite."""
    corpus = _corpus(conn, db)
    freqs = _doc_freqs(conn, list(dict.fromkeys(stem_word(w) for w in words)), corpus, db)
    newest_only = False
    if budget:
        by_word = {w: freqs[stem_word(w)] for w in words}
        words, newest_only = within_budget(words, by_word, budget)
    long_words = [w for w in words if len(w) >= MIN_TOKEN]
    # Short words are not in the index: LIKE reads the table, so only while it is small.
    short_words = [w for w in words if len(w) < MIN_TOKEN] if corpus.total <= LIKE_MAX else []
    recall = limit * RECALL_FACTOR
    found: dict[int, str] = {}
    if newest_only:
        # Even the rarest word is over budget, so it is common: its newest matches (word or
        # stem) among the newest NEWEST_SCAN rows, as SQLite does; a common word turns up
        # within a few thousand rows, and FULLTEXT would gather every match before it could
        # sort by id.
        patterns = list(dict.fromkeys(p for w in words for p in (w, stem_word(w))))
        found.update(_like_matches(conn, patterns, conds, recall, corpus.recent_floor))
    elif long_words:
        against = _boolean_query(long_words)
        relevance = mysql_match(FRAGMENTS.c.content, against=against).in_boolean_mode()
        query = (
            select(FRAGMENTS.c.id, FRAGMENTS.c.content)
            .where(relevance > 0, *conds)
            .order_by(relevance.desc(), FRAGMENTS.c.id.desc())  # ties: newest first
            .limit(recall)
        )
        found.update((int(r.id), r.content) for r in conn.execute(query))
    if short_words and not newest_only:
        found.update(_like_matches(conn, short_words, conds, recall))
    if not found:
        return []
    total = max(corpus.total, len(found))
    scored = bm25_rescore(words, list(found.items()), freqs, total, corpus.mean_length)
    return [(pid, score) for pid, score in scored if score > 0][:limit]
