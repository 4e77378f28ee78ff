"""A memory's vector rows: its own vector, and for a longer memory one row per sentence.

The model reads a memory as one text and truncates it at 256 wordpieces, so the sentence
that answers a question is diluted by the rest of a long memory, or never seen at all. A
memory of several sentences is therefore stored with rows, compared with a query by Qdrant's
MaxSim over Dot products of unit vectors (how a store holds them: ``base.py``):

- row 0 is the memory's own vector, as before;
- row i is ``(1 - SENTENCE_SHARE) · memory + SENTENCE_SHARE · sentence_i``.

Its score for a query ``q`` is then ``cos(q, m) + SENTENCE_SHARE · max(0, max_i cos(q, s_i)
- cos(q, m))``: the memory's own similarity, raised by a share of how far its best sentence
beats it. A short memory keeps one row, so its score is its cosine as before. Measured end
to end on SQLite (docs/benchmarks.md, ninth session): SciFact nDCG@10 0.734 → 0.743, LoCoMo
R@5 / R@10 0.584 / 0.677 → 0.586 / 0.684; shares from 0.3 to 0.5 helped both sets offline.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

SENTENCE_SHARE = 0.3
MIN_WORDS = 48  # about 64 wordpieces: shorter memories keep one row
MAX_SENTENCES = 32  # longer memories have their sentences merged into this many rows

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])|\n\s*\n?")
_WORD = re.compile(r"\w+")


def sentences(text: str) -> list[str]:
    """The sentences of a memory worth a row of their own (none for a short memory).

    A sentence ends at ``.``, ``!`` or ``?`` before a capital or a digit, or at a line
    break; pieces without a word are dropped. Past ``MAX_SENTENCES`` neighbours are joined,
    so no memory has more than that many extra rows."""
    if len(_WORD.findall(text)) < MIN_WORDS:
        return []
    parts = [p.strip() for p in _SENTENCE_END.split(text)]
    parts = [p for p in parts if _WORD.search(p)]
    if len(parts) < 2:
        return []
    if len(parts) > MAX_SENTENCES:
        bounds = np.linspace(0, len(parts), MAX_SENTENCES + 1).round().astype(int)
        parts = [" ".join(parts[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    return parts


def compose(memory: np.ndarray, sentence_vectors: np.ndarray) -> np.ndarray:
    """The rows of one memory: its vector (scaled to unit length: rows are compared by Dot
    product, and a vector reused from an import may not be), then one blended row per
    sentence."""
    memory = np.asarray(memory, dtype=np.float32)
    norm = float(np.linalg.norm(memory))
    if norm > 0:
        memory = memory / norm
    if not len(sentence_vectors):
        return memory[None, :]
    blended = (1 - SENTENCE_SHARE) * memory[None, :] + SENTENCE_SHARE * sentence_vectors
    return np.vstack([memory[None, :], blended]).astype(np.float32)


def embed_rows(
    embed: Callable[[Sequence[str]], np.ndarray], texts: Sequence[str]
) -> list[np.ndarray]:
    """Each text's rows (``(1 + sentences, dim)``), from one call of ``embed`` for the
    texts and all their sentences together (one batch keeps the model busy)."""
    split = [sentences(t) for t in texts]
    vectors = embed(list(texts) + [s for parts in split for s in parts])
    return _composed(list(vectors[: len(texts)]), split, vectors[len(texts) :])


def with_sentences(
    embed: Callable[[Sequence[str]], np.ndarray],
    vectors: Sequence[np.ndarray],
    texts: Sequence[str],
) -> list[np.ndarray]:
    """Rows for memories whose own vectors are known already (reused from an import):
    only their sentences are embedded."""
    split = [sentences(t) for t in texts]
    flat = [s for parts in split for s in parts]
    return _composed(vectors, split, embed(flat) if flat else np.zeros((0, 0), np.float32))


def _composed(
    vectors: Sequence[np.ndarray], split: list[list[str]], sentence_vectors: np.ndarray
) -> list[np.ndarray]:
    out: list[np.ndarray] = []
    at = 0
    for vector, parts in zip(vectors, split, strict=True):
        out.append(compose(vector, sentence_vectors[at : at + len(parts)]))
        at += len(parts)
    return out


def first_row(vector: np.ndarray) -> np.ndarray:
    """A memory's own vector, from its rows or from a single vector."""
    array = np.asarray(vector, dtype=np.float32)
    return array[0] if array.ndim == 2 else array


def as_rows(vector: np.ndarray) -> np.ndarray:
    """Rows ``(n, dim)`` from rows or from a single vector."""
    array = np.asarray(vector, dtype=np.float32)
    return array if array.ndim == 2 else array[None, :]
