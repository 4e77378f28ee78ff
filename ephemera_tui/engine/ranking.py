"""Ranking helpers that do not depend on a backend: a light English stemmer and BM25 over a
candidate list.

InnoDB FULLTEXT scores a match as term frequency times IDF squared, with no document-length
normalisation and no stemming, so on long documents it ranks far below SQLite FTS5's bm25
(SciFact nDCG@10 of the keyword side alone: 0.555 against 0.695). Re-scoring the candidates
that FULLTEXT recalls with the same BM25 as FTS5 (k1 = 1.2, b = 0.75) over lightly stemmed
words brings the two backends within about 0.015 of each other on both dev sets
(docs/benchmarks.md). The functions here are pure: the caller fetches the candidates' text,
the document frequencies and the average length.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache

_WORD = re.compile(r"\w+", re.UNICODE)

# Longest first; a suffix is stripped only when at least four letters remain, so short words
# ("news", "cells") keep their form and the stems stay readable ("reduct", "infect").
_SUFFIXES = (
    "ational",
    "ization",
    "fulness",
    "iveness",
    "ations",
    "ation",
    "ments",
    "ment",
    "ness",
    "ities",
    "ity",
    "ings",
    "ing",
    "edly",
    "ed",
    "ies",
    "es",
    "ly",
    "s",
    "al",
    "ive",
    "ous",
    "ic",
    "er",
)
_MIN_STEM = 4


def light_stem(word: str) -> str:
    """Strip one common English suffix (lower-case input), keeping at least four letters."""
    if len(word) <= _MIN_STEM:
        return word
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= _MIN_STEM:
            return word[: -len(suffix)]
    return word


def stems(text: str) -> list[str]:
    """The stemmed words of a text, lower-cased, in order."""
    return [light_stem(w) for w in _WORD.findall(text.lower())]


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
    query = list(dict.fromkeys(light_stem(t.lower()) for t in terms if t))
    avg = avg_len if avg_len > 0 else 1.0
    weights = {
        term: math.log(
            1.0 + (total_docs - doc_freq.get(term, 0) + 0.5) / (doc_freq.get(term, 0) + 0.5)
        )
        for term in query
    }
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
