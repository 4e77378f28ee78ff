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
Counts come from FULLTEXT itself and are cached for a few minutes per database: they only
weigh words against each other, so a little staleness does not change a ranking.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, or_, select, text
from sqlalchemy.dialects.mysql import match as mysql_match

from ..ranking import bm25_rescore, stem_word, stems
from .keyword import escape_like, within_budget
from .tables import FRAGMENTS

MIN_TOKEN = 3  # innodb_ft_min_token_size's default: shorter words are not indexed
RECALL_FACTOR = 2  # rows recalled per row returned, for BM25 to re-rank
SAMPLE_ROWS = 2000  # newest rows whose length gives the mean document length
STATS_TTL_S = 300.0


@dataclass(frozen=True)
class _Corpus:
    """What BM25 needs of the whole table, and the newest id when it was counted."""

    total: int
    mean_length: float
    newest: int


class _TtlCache:
    """Values by key, each kept :data:`STATS_TTL_S` seconds (bounded; thread-safe)."""

    MAX = 50_000

    def __init__(self) -> None:
        self._items: dict[tuple[str, str], tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> Any:
        with self._lock:
            hit = self._items.get(key)
        if hit is None or time.monotonic() - hit[0] >= STATS_TTL_S:
            return None
        return hit[1]

    def put(self, key: tuple[str, str], value: Any) -> None:
        with self._lock:
            if len(self._items) >= self.MAX:
                self._items.clear()
            self._items[key] = (time.monotonic(), value)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_STATS = _TtlCache()


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
    sample = (
        select(FRAGMENTS.c.content).order_by(FRAGMENTS.c.id.desc()).limit(SAMPLE_ROWS).subquery()
    )
    return [content for (content,) in conn.execute(select(sample.c.content))]


def _corpus(conn: Connection, db: str) -> _Corpus:
    """The table's size and mean length (in stemmed words, over the newest rows): cached, and
    counted again once the table has grown by a tenth (or 50 rows) since, or lost its newest
    rows (a database emptied and filled again under the same URL)."""
    newest = int(conn.execute(select(func.max(FRAGMENTS.c.id))).scalar() or 0)
    cached: _Corpus | None = _STATS.get((db, "\x00corpus"))
    if cached is not None and 0 <= newest - cached.newest <= max(50, cached.total // 10):
        return cached
    total = int(conn.execute(select(func.count()).select_from(FRAGMENTS)).scalar() or 0)
    lengths = [len(stems(content)) for content in _newest_rows(conn)]
    corpus = _Corpus(total, sum(lengths) / len(lengths) if lengths else 0.0, newest)
    _STATS.put((db, "\x00corpus"), corpus)
    return corpus


def _doc_freq(conn: Connection, stem: str, corpus: _Corpus) -> int:
    """Memories holding a word that starts with ``stem`` (FULLTEXT, boolean mode); for a
    stem shorter than the index's tokens, counted on the newest rows and scaled up."""
    if len(stem) >= MIN_TOKEN:
        query = text(
            "SELECT COUNT(*) FROM memory_fragments WHERE MATCH(content) AGAINST(:q IN BOOLEAN MODE)"
        )
        return int(conn.execute(query, {"q": stem + "*"}).scalar() or 0)
    rows = _newest_rows(conn)
    hits = sum(1 for content in rows if stem in stems(content))
    return round(hits * corpus.total / len(rows)) if rows else 0


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
    if budget:
        words, _ = within_budget(words, {w: freqs[stem_word(w)] for w in words}, budget)
    long_words = [w for w in words if len(w) >= MIN_TOKEN]
    short_words = [w for w in words if len(w) < MIN_TOKEN]
    recall = limit * RECALL_FACTOR
    found: dict[int, str] = {}
    if long_words:
        against = _boolean_query(long_words)
        relevance = mysql_match(FRAGMENTS.c.content, against=against).in_boolean_mode()
        query = (
            select(FRAGMENTS.c.id, FRAGMENTS.c.content)
            .where(relevance > 0, *conds)
            .order_by(relevance.desc(), FRAGMENTS.c.id.desc())  # ties: newest first
            .limit(recall)
        )
        found.update((int(r.id), r.content) for r in conn.execute(query))
    if short_words:
        likes = [FRAGMENTS.c.content.like(f"%{escape_like(w)}%", escape="\\") for w in short_words]
        query = (
            select(FRAGMENTS.c.id, FRAGMENTS.c.content)
            .where(or_(*likes), *conds)
            .order_by(FRAGMENTS.c.id.desc())
            .limit(recall)
        )
        found.update((int(r.id), r.content) for r in conn.execute(query))
    if not found:
        return []
    total = max(corpus.total, len(found))
    scored = bm25_rescore(words, list(found.items()), freqs, total, corpus.mean_length)
    return [(pid, score) for pid, score in scored if score > 0][:limit]
