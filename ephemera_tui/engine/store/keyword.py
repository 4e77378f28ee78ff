"""Keyword search on SQLite (FTS5 bm25, with a postings budget that leaves the commonest words
out of large OR queries), and what both backends share: the stopwords they drop, the budget's
choice of words and the cache of their counts. MySQL is in :mod:`.mysql_keyword`."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, column, literal_column, select, table, text

from .tables import FRAGMENTS

# Words too common to help a keyword match (the OR query would otherwise match everything).
STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
        "did",
        "does",
        "what's",
        "i'm",
        "it's",
        "don't",
        # what is left of contractions and possessives once words are split on \w+
        "s",
        "t",
        "m",
        "d",
        "ll",
        "re",
        "ve",
    ]
)


# Without filter conditions the statement never changes; building and compiling a select for
# it cost more Python time per search than SQLite spent answering it.
_BEST_SQL = (
    "SELECT rowid, bm25(memory_fts) FROM memory_fts WHERE memory_fts MATCH ? "
    "ORDER BY bm25(memory_fts) LIMIT ?"
)
_NEWEST_SQL = (
    "SELECT rowid, bm25(memory_fts) FROM memory_fts WHERE memory_fts MATCH ? "
    "ORDER BY rowid DESC LIMIT ?"
)


def sqlite_keyword(
    conn: Connection,
    words: list[str],
    conds: list[Any],
    limit: int,
    budget: int | None = None,
    db: str = "",
) -> list[tuple[int, float]]:
    """FTS5 matches of any of ``words`` passing ``conds``, best bm25 first."""
    # FTS5 scores every row that matches before it can sort, so the cost grows with the
    # postings of the query's words. Past ``budget`` postings the commonest words (whose
    # bm25 weight is small anyway) are left out; if even the rarest word is over budget,
    # its newest matches are scored instead of all of them.
    newest_only = False
    if budget:
        freqs = _doc_freqs(conn, words, budget, db)
        words, newest_only = within_budget(words, freqs, budget)
    match = " OR ".join(fts_phrase(w) for w in words)
    rows: Sequence[Any]
    if conds:
        fts = table("memory_fts", column("rowid"))
        rank: Any = literal_column("bm25(memory_fts)")
        query = (
            select(fts.c.rowid, rank)
            .select_from(fts.join(FRAGMENTS, FRAGMENTS.c.id == fts.c.rowid))
            .where(text("memory_fts MATCH :match"), *conds)
            .order_by(fts.c.rowid.desc() if newest_only else rank)
            .limit(limit)
        )
        rows = conn.execute(query, {"match": match}).all()
    else:  # the common case: a fixed statement, straight to the driver
        sql = _NEWEST_SQL if newest_only else _BEST_SQL
        rows = conn.exec_driver_sql(sql, (match, limit)).all()
    ranked = [(int(rowid), -float(bm25)) for rowid, bm25 in rows]
    if newest_only:
        ranked.sort(key=lambda item: -item[1])
    return ranked


class TtlCache:
    """Values by key, each kept ``ttl_s`` seconds (bounded; thread-safe): the counts both
    backends' keyword sides keep between searches."""

    MAX = 50_000

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._items: dict[tuple[str, str], tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> Any:
        found = self.get_aged(key)
        if found is None or found[0] >= self.ttl_s:
            return None
        return found[1]

    def get_aged(self, key: tuple[str, str]) -> tuple[float, Any] | None:
        """(seconds since it was put, value), however old, or None."""
        with self._lock:
            hit = self._items.get(key)
        return None if hit is None else (time.monotonic() - hit[0], hit[1])

    def put(self, key: tuple[str, str], value: Any) -> None:
        with self._lock:
            if len(self._items) >= self.MAX:
                self._items.clear()
            self._items[key] = (time.monotonic(), value)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


# Match counts by (database, word): (count, whether exact). The counts only steer which
# words to leave out, so a few minutes' staleness is harmless.
_DF_CACHE = TtlCache(300.0)

# One capped count per word, in one statement: FTS5 stops walking a word's postings at the
# LIMIT, so a common word costs what a rare one does (0.1 ms at 100k memories, where counting
# all of "john"'s 41,319 took 1 ms, and about ten times that at a million).
_CAPPED = (
    "SELECT {n}, count(*) FROM (SELECT rowid FROM memory_fts WHERE memory_fts MATCH ? LIMIT ?)"
)
_EXACT = "SELECT count(*) FROM memory_fts WHERE memory_fts MATCH ?"
_COUNTS_PER_STATEMENT = 100  # SQLite allows 500 parts to a compound SELECT


def fts_phrase(word: str) -> str:
    """``word`` as an FTS5 phrase (quoted, so it is matched as text, never as syntax)."""
    return '"' + word.replace('"', '""') + '"'


def _doc_freqs(conn: Connection, words: Sequence[str], budget: int, db: str = "") -> dict[str, int]:
    """How many memories each word matches, by the index's own stems (the count is a match,
    so ``feeling`` counts every memory with ``feel``), counted up to ``budget + 1``: past the
    budget a word is left out whatever its count, unless every word is past it, and only
    then are their counts taken in full, to pick the rarest."""
    cap = budget + 1
    known: dict[str, tuple[int, bool]] = {}
    todo: list[str] = []
    for word in dict.fromkeys(words):
        hit = _DF_CACHE.get((db, word))
        if hit is not None and (hit[1] or hit[0] >= cap):  # exact, or past this budget too
            known[word] = hit
        else:
            todo.append(word)
    for at in range(0, len(todo), _COUNTS_PER_STATEMENT):
        part = todo[at : at + _COUNTS_PER_STATEMENT]
        sql = " UNION ALL ".join(_CAPPED.format(n=n) for n in range(len(part)))
        params = tuple(v for w in part for v in (fts_phrase(w), cap))
        for n, count in conn.exec_driver_sql(sql, params).all():
            word = part[int(n)]
            known[word] = (int(count), int(count) < cap)
            _DF_CACHE.put((db, word), known[word])
    if all(count >= cap for count, _ in known.values()):
        for word, (count, exact) in list(known.items()):
            if not exact:
                count = int(conn.exec_driver_sql(_EXACT, (fts_phrase(word),)).scalar_one())
                known[word] = (count, True)
                _DF_CACHE.put((db, word), known[word])
    return {w: known[w][0] for w in words}


def within_budget(words: list[str], freqs: dict[str, int], budget: int) -> tuple[list[str], bool]:
    """The rarest words whose postings fit ``budget`` (at least one), and whether even that
    one is over budget. Word order is kept."""
    kept: set[str] = set()
    total = 0
    for word in sorted(dict.fromkeys(words), key=lambda w: freqs.get(w, 0)):
        if kept and total + freqs.get(word, 0) > budget:
            break
        kept.add(word)
        total += freqs.get(word, 0)
    return [w for w in words if w in kept], total > budget


def escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
