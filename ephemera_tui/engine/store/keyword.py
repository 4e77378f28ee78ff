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


# The tokenizer ``memory_fts`` was made with (migration 0001); stems are taken with it too.
FTS_TOKENIZE = "porter unicode61 remove_diacritics 2"

# Temp tables of each connection that keyword search reads through: FTS5's vocabulary of
# the index (document frequencies) and a scratch FTS5 table with the index's tokenizer (stems).
_SCRATCH_TABLES = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS temp.memory_fts_vocab "
    "USING fts5vocab(main, memory_fts, row)",
    "CREATE VIRTUAL TABLE IF NOT EXISTS temp.stem_scratch "
    f"USING fts5(word, tokenize='{FTS_TOKENIZE}')",
    "CREATE VIRTUAL TABLE IF NOT EXISTS temp.stem_scratch_terms "
    "USING fts5vocab(temp, stem_scratch, instance)",
)


def add_scratch_tables(dbapi_conn: Any, _record: Any = None) -> None:
    """Make the temp tables once per SQLite connection, as it opens (a ``connect`` listener,
    in autocommit): made inside a read's transaction they would go with its rollback and be
    made again, 0.4 ms each, on every search."""
    cursor = dbapi_conn.cursor()
    try:
        for statement in _SCRATCH_TABLES:
            cursor.execute(statement)
    finally:
        cursor.close()


# The terms the tokenizer makes of each word (``feeling`` -> ``feel``), by word. Stemming
# depends on the tokenizer alone, so the memo is shared by every database and never stale.
_STEMS: dict[str, tuple[str, ...]] = {}
_STEMS_MAX = 50_000


def fts_terms(conn: Connection, words: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """The index terms each word stands for, as FTS5's own porter tokenizer makes them.

    SQL has no stem function, so words not seen before are tokenised by a scratch FTS5 table
    in the connection's temp schema (rows written and deleted in the read's transaction; the
    database file is never written). A prefix guess would be wrong where a longer form is
    stored too: ``feelin`` (84 memories) is not what ``feeling`` matches (``feel``, 10,158)."""
    out: dict[str, tuple[str, ...]] = {}
    todo = []
    for word in dict.fromkeys(words):
        known = _STEMS.get(word)
        if known is None:
            todo.append(word)
        else:
            out[word] = known
    if todo:
        conn.exec_driver_sql(
            "INSERT INTO temp.stem_scratch(rowid, word) VALUES " + ",".join("(?, ?)" for _ in todo),
            tuple(v for n, w in enumerate(todo, 1) for v in (n, w)),
        )
        made: dict[int, list[str]] = {}
        for row, term in conn.exec_driver_sql(
            'SELECT doc, term FROM temp.stem_scratch_terms ORDER BY doc, "offset"'
        ):
            made.setdefault(int(row), []).append(str(term))
        conn.exec_driver_sql("DELETE FROM temp.stem_scratch")
        if len(_STEMS) + len(todo) > _STEMS_MAX:
            _STEMS.clear()
        for n, word in enumerate(todo, 1):
            out[word] = _STEMS[word] = tuple(dict.fromkeys(made.get(n, ())))
    return out


# Document frequencies by (database, index term): (when looked up, count). FTS5 counts a
# term's documents by walking its postings (~10 ms a query at 1M memories), and the counts
# only steer which words to leave out, so a few minutes' staleness is harmless.
_DF_CACHE: dict[tuple[str, str], tuple[float, int]] = {}
_DF_TTL_S = 300.0
_DF_CACHE_MAX = 100_000


def _doc_freqs(conn: Connection, words: Sequence[str], db: str = "") -> dict[str, int]:
    """How many memories hold each word's stem (FTS5 vocabulary, cached); a word the
    tokenizer splits counts its commonest part, whose postings the match walks."""
    terms = fts_terms(conn, words)
    wanted = {t: None for w in words for t in terms[w]}
    if not wanted:
        return dict.fromkeys(words, 0)
    now = time.monotonic()
    known: dict[str, int] = {}
    for term in wanted:
        hit = _DF_CACHE.get((db, term))
        if hit is not None and now - hit[0] < _DF_TTL_S:
            known[term] = hit[1]
    todo = [t for t in wanted if t not in known]
    if todo:
        marks = ",".join("?" * len(todo))
        found: dict[str, int] = dict(
            conn.exec_driver_sql(
                f"SELECT term, doc FROM temp.memory_fts_vocab WHERE term IN ({marks})",
                tuple(todo),
            ).all()
        )
        if len(_DF_CACHE) > _DF_CACHE_MAX:
            _DF_CACHE.clear()
        for term in todo:
            known[term] = int(found.get(term, 0))
            _DF_CACHE[(db, term)] = (now, known[term])
    return {w: max((known[t] for t in terms[w]), default=0) for w in words}


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
