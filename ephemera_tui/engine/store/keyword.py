"""Keyword search on SQLite (FTS5 bm25, with a postings budget that leaves the commonest words
out of large OR queries) and the stopwords both backends drop; MySQL is in :mod:`.mysql_keyword`."""

from __future__ import annotations

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
        freqs = _doc_freqs(conn, words, db)
        words, newest_only = within_budget(words, freqs, budget)
    match = " OR ".join('"' + w.replace('"', '""') + '"' for w in words)
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


def _stem_candidates(word: str) -> list[str]:
    """Forms the porter tokenizer may have stored ``word`` under, longest first (the word
    itself, its prefixes up to four letters shorter but not under two, and ``-y`` as ``-i``),
    for document-frequency look-ups: the longest one stored is taken (``going`` -> ``go``,
    ``cells`` -> ``cell``). Few and long, because FTS5 counts a term's documents by walking
    its postings."""
    out = [word] + [word[:k] for k in range(len(word) - 1, max(1, len(word) - 5), -1)]
    if word.endswith("y") and len(word) > 3:
        out.insert(1, word[:-1] + "i")
    return out


# Document frequencies by (database, stored form): (when looked up, count or -1 if absent).
# FTS5 counts a term's documents by walking its postings (~10 ms a query at 1M memories), and
# the counts only steer which words to leave out, so a few minutes' staleness is harmless.
_DF_CACHE: dict[tuple[str, str], tuple[float, int]] = {}
_DF_TTL_S = 300.0
_DF_CACHE_MAX = 100_000


def _doc_freqs(conn: Connection, words: Sequence[str], db: str = "") -> dict[str, int]:
    """How many memories hold each word (FTS5 vocabulary, cached); approximate for stems."""
    forms = {form: None for w in words for form in _stem_candidates(w)}
    if not forms:
        return {}
    now = time.monotonic()
    known: dict[str, int] = {}
    for form in forms:
        hit = _DF_CACHE.get((db, form))
        if hit is not None and now - hit[0] < _DF_TTL_S:
            known[form] = hit[1]
    todo = [f for f in forms if f not in known]
    if todo:
        conn.exec_driver_sql(
            "CREATE VIRTUAL TABLE IF NOT EXISTS temp.memory_fts_vocab "
            "USING fts5vocab(main, memory_fts, row)"
        )
        marks = ",".join("?" * len(todo))
        found: dict[str, int] = dict(
            conn.exec_driver_sql(
                f"SELECT term, doc FROM temp.memory_fts_vocab WHERE term IN ({marks})",
                tuple(todo),
            ).all()
        )
        if len(_DF_CACHE) > _DF_CACHE_MAX:
            _DF_CACHE.clear()
        for form in todo:
            known[form] = int(found.get(form, -1))
            _DF_CACHE[(db, form)] = (now, known[form])
    return {
        w: next((known[f] for f in _stem_candidates(w) if known.get(f, -1) >= 0), 0) for w in words
    }


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
