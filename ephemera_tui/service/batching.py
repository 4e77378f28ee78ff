"""Micro-batching for ``/v1/embeddings``: requests that arrive together are embedded together.

Several hosts (or workers) embedding through one service each send their own requests; run
side by side, those model calls would fight over the same cores. :class:`EmbedBatcher` runs
one model call at a time on a thread of its own and feeds it everything that queued up
meanwhile, up to ``max_batch`` texts: a request that comes in while the model is busy rides
along with the next call. The merged texts are sorted by length, so each of the model's own
batches pads to a similar length, and the vectors are handed back to each request in its
own order.

An idle service starts on a request at once. In a busy cycle (the last call ended a moment
ago) the clients it answered come back one by one; a call then waits for as many requests
as the last one served, at most ``gather_share`` of the last call's duration and never more
than ``gather_s``, so those clients are embedded together again instead of one alone and the
rest in the next call (a call of 15 ms waits under a millisecond; one of 10 s up to 0.25 s).

A merged call can be spread over several one-thread model sessions (:class:`SessionPool`,
one per core): each takes a contiguous run of the length-sorted texts, and the sessions run
side by side. Under load from other processes that embeds 1.3-1.9 times as fast as one
session using both cores for each batch; on a quiet machine about as fast
(bench/embedding_service.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_BATCH = 1024
"""Texts per model call at most (a single larger request is still taken whole): four clients
sending the 256 texts of an outbox batch each are embedded as one length-sorted call."""
GATHER_S = 0.25
"""The longest a call waits for the clients of the last call to come back."""
GATHER_SHARE = 0.05
"""How long a call waits, as a share of the last call's duration."""
POLL_S = 0.002
"""How often a waiting call looks at the queue again."""


class SessionPool:
    """Embed one call's texts on several model sessions at once: the (length-sorted) texts
    are cut into contiguous runs of about equal total length, one per session, embedded side
    by side and put back together in order. ``sessions`` embed a list of texts each."""

    def __init__(self, sessions: Sequence[Callable[[list[str]], Any]]) -> None:
        if not sessions:
            raise ValueError("a session pool needs at least one session")
        self.sessions = list(sessions)
        self._threads = ThreadPoolExecutor(
            max_workers=len(self.sessions), thread_name_prefix="ephemera-session"
        )

    def _runs(self, texts: list[str]) -> list[list[str]]:
        total = sum(len(t) + 16 for t in texts)  # a token's worth per text for the specials
        parts: list[list[str]] = [[]]
        size = 0
        for text in texts:
            boundary = total * len(parts) / len(self.sessions)
            if size >= boundary and len(parts) < len(self.sessions):
                parts.append([])
            parts[-1].append(text)
            size += len(text) + 16
        return [p for p in parts if p]

    def __call__(self, texts: list[str]) -> np.ndarray:
        runs = self._runs(texts)
        if len(runs) == 1:
            return np.asarray(self.sessions[0](runs[0]), dtype=np.float32)
        futures = [
            self._threads.submit(session, run)
            for session, run in zip(self.sessions, runs, strict=False)
        ]
        return np.vstack([np.asarray(f.result(), dtype=np.float32) for f in futures])


@dataclass(slots=True)
class _Job:
    texts: Sequence[str]
    future: asyncio.Future[np.ndarray]


class EmbedBatcher:
    """Merges concurrent embedding requests into one model call at a time.

    ``embed`` takes a list of texts and returns their vectors (an array or a list of rows),
    in order; it runs on the batcher's own thread. Use from one event loop."""

    def __init__(
        self,
        embed: Callable[[list[str]], Any],
        *,
        max_batch: int = MAX_BATCH,
        gather_s: float = GATHER_S,
        gather_share: float = GATHER_SHARE,
    ) -> None:
        self._embed = embed
        self.max_batch = max_batch
        self.gather_s = gather_s
        self.gather_share = gather_share
        self._queue: list[_Job] = []
        self._worker: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ephemera-embed")
        self._last_done = -1e9
        self._last_seconds = 0.0
        self._last_requests = 0
        self.calls = 0
        """Model calls made (fewer than requests when requests were merged)."""
        self.requests = 0
        self.texts = 0

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        """The vectors of ``texts`` (a ``(len(texts), dim)`` float32 array), embedded in one
        model call together with whatever other requests are waiting."""
        loop = asyncio.get_running_loop()
        job = _Job(list(texts), loop.create_future())
        self._queue.append(job)
        self.requests += 1
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._run())
        return await job.future

    def _take(self) -> list[_Job]:
        """Whole requests from the front of the queue, up to ``max_batch`` texts (at least
        one request)."""
        taken = [self._queue.pop(0)]
        size = len(taken[0].texts)
        while self._queue and size + len(self._queue[0].texts) <= self.max_batch:
            job = self._queue.pop(0)
            taken.append(job)
            size += len(job.texts)
        return taken

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            await self._gather(loop)
            jobs = [j for j in self._take() if not j.future.done()]  # dropped: disconnected
            if not jobs:
                continue
            texts = [t for j in jobs for t in j.texts]
            order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
            started = loop.time()
            try:
                found = await loop.run_in_executor(
                    self._executor, self._embed, [texts[i] for i in order]
                )
                rows = np.asarray(found, dtype=np.float32)
                if rows.ndim != 2 or rows.shape[0] != len(texts):
                    raise ValueError(f"the model answered {rows.shape} for {len(texts)} texts")
            except Exception as exc:  # noqa: BLE001 - each waiting request gets the error
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            finally:
                self._last_done = loop.time()
                self._last_seconds = self._last_done - started
                self._last_requests = len(jobs)
            self.calls += 1
            self.texts += len(texts)
            vectors = np.empty_like(rows)
            vectors[order] = rows
            start = 0
            for job in jobs:
                end = start + len(job.texts)
                if not job.future.done():
                    job.future.set_result(vectors[start:end])
                start = end

    async def _gather(self, loop: asyncio.AbstractEventLoop) -> None:
        """In a busy cycle, wait a little for the clients of the last call to come back."""
        if loop.time() - self._last_done > max(POLL_S, self._last_seconds):
            return  # idle: start at once
        deadline = loop.time() + min(self.gather_s, self.gather_share * self._last_seconds)
        while (
            len(self._queue) < self._last_requests
            and sum(len(j.texts) for j in self._queue) < self.max_batch
            and loop.time() < deadline
        ):
            await asyncio.sleep(POLL_S)

    def close(self) -> None:
        """Stop the model thread (requests still waiting get no answer)."""
        self._executor.shutdown(wait=False, cancel_futures=True)
