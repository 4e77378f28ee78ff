"""Ranking helpers that do not depend on a backend: Porter stems and BM25 over a candidate
list.

InnoDB FULLTEXT scores a match as term frequency times IDF squared, with no length
normalisation and no stemming; SQLite FTS5 ranks by bm25 over porter stems. The MySQL keyword
side (``store.mysql_keyword``) re-scores what FULLTEXT recalls with the same BM25 (k1 = 1.2,
b = 0.75) over the same stems, so both backends rank alike. The functions here are pure: the
caller fetches the candidates' text, the document frequencies and the mean length.
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

_WORD = re.compile(r"\w+", re.UNICODE)
_PORTER_LOCK = threading.Lock()  # a Snowball stemmer keeps its state between calls


@lru_cache(maxsize=1)
def _porter() -> Any:
    import snowballstemmer  # ~20 ms (it loads every language): only once something is stemmed

    return snowballstemmer.stemmer("porter")


@lru_cache(maxsize=65536)
def stem_word(word: str) -> str:
    """The Porter stem of one lower-case word (the algorithm of FTS5's porter tokenizer), so
    both backends join the same word forms: ``painted``, ``paints`` → ``paint``."""
    stemmer = _porter()
    with _PORTER_LOCK:
        return str(stemmer.stemWord(word))


def stems(text: str) -> list[str]:
    """The stemmed words of a text, lower-cased, in order."""
    return [stem_word(w) for w in _WORD.findall(text.lower())]


@lru_cache(maxsize=8192)
def _counts(text: str) -> tuple[Counter[str], int]:
    """A text's stem counts and length; cached, since the same candidates recur across the
    queries of a session."""
    tokens = stems(text)
    return Counter(tokens), len(tokens)


def document_frequencies(texts: Iterable[str]) -> tuple[Counter[str], int, float]:
    """Stem document frequencies, document count and mean length (in words) of a corpus."""
    freq: Counter[str] = Counter()
    count = 0
    words = 0
    for text in texts:
        tokens = stems(text)
        freq.update(set(tokens))
        count += 1
        words += len(tokens)
    return freq, count, (words / count if count else 0.0)


def _idf(total: int, freq: int) -> float:
    """FTS5's IDF: ``log((N - n + 0.5) / (n + 0.5))``, floored at 1e-6 so a word in most
    documents still counts a little."""
    return max(math.log((total - freq + 0.5) / (freq + 0.5)), 1e-6)


def bm25_rescore(
    terms: Sequence[str],
    docs: Sequence[tuple[int, str]],
    doc_freq: Mapping[str, int],
    total_docs: int,
    avg_len: float,
    k1: float = 1.2,
    b: float = 0.75,
) -> list[tuple[int, float]]:
    """BM25 of each ``(id, text)`` for the query ``terms``, best first (ties keep the input
    order). Terms and texts are stemmed alike; a term missing from ``doc_freq`` counts as
    rare (document frequency 0). Documents that match no term score 0 and stay last."""
    query = list(dict.fromkeys(stem_word(t.lower()) for t in terms if t))
    avg = avg_len if avg_len > 0 else 1.0
    weights = {term: _idf(total_docs, doc_freq.get(term, 0)) for term in query}
    scored: list[tuple[int, float]] = []
    for doc_id, text in docs:
        counts, length = _counts(text)
        norm = k1 * (1.0 - b + b * length / avg)
        score = 0.0
        for term, weight in weights.items():
            tf = counts.get(term, 0)
            if tf:
                score += weight * tf * (k1 + 1.0) / (tf + norm)
        scored.append((doc_id, score))
    scored.sort(key=lambda item: -item[1])
    return scored
