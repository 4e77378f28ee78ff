"""Embedding through an OpenAI-compatible ``/v1/embeddings`` endpoint (``embedding_url``):
another host's ``ephemera serve``, or Hugging Face TEI, Infinity, Ollama, vLLM. The model name
is the configured ``embedding_model``; the dimension is learned from the first answer."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Sequence

import numpy as np

from .errors import EmbeddingError

BATCH = 256
TIMEOUT_S = 120.0


class RemoteEmbedder:
    """An :class:`~.embedder.Embedder` that asks an embeddings endpoint over HTTP."""

    def __init__(self, url: str, model: str, api_key: str | None = None) -> None:
        self.url = url.rstrip("/")
        if not self.url.endswith("/v1/embeddings"):
            self.url += "/v1/embeddings"
        self.name = model
        self.api_key = api_key
        self._lock = threading.Lock()
        self.dim = len(self._ask(["dimension probe"])[0])

    def _ask(self, texts: list[str]) -> np.ndarray:
        body = json.dumps({"input": texts, "model": self.name}).encode("utf-8")
        request = urllib.request.Request(
            self.url, data=body, headers={"content-type": "application/json"}, method="POST"
        )
        if self.api_key:
            request.add_header("authorization", f"Bearer {self.api_key}")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310
                answer = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:200]
            raise EmbeddingError(
                f"embedding service {self.url}: HTTP {exc.code}: {detail}"
            ) from exc
        except (OSError, ValueError) as exc:
            raise EmbeddingError(f"embedding service {self.url} unavailable: {exc}") from exc
        try:
            rows = sorted(answer["data"], key=lambda d: d["index"])
            vectors = np.asarray([row["embedding"] for row in rows], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as exc:
            raise EmbeddingError(f"embedding service {self.url}: unexpected answer") from exc
        if vectors.shape[0] != len(texts):
            raise EmbeddingError(f"embedding service {self.url}: answered for the wrong count")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms == 0, 1.0, norms)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed in batches of :data:`BATCH` (one request each)."""
        if not texts:
            return np.zeros((0, getattr(self, "dim", 0)), dtype=np.float32)
        parts = [self._ask(list(texts[i : i + BATCH])) for i in range(0, len(texts), BATCH)]
        return np.vstack(parts)

    def embed_query(self, text: str) -> np.ndarray:
        """One query's vector."""
        vector: np.ndarray = self._ask([text])[0]
        return vector
