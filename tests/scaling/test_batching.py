"""The embeddings endpoint's micro-batcher: concurrent requests share one model call, each
gets its own vectors back in its own order, a failing call fails only its own requests, and
the service answers OpenAI's shapes (floats, or base64 float32) over real HTTP."""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from ephemera_tui.engine import Engine, Settings
from ephemera_tui.engine.embedder import HashEmbedder
from ephemera_tui.engine.remote_embedder import RemoteEmbedder
from ephemera_tui.service.batching import EmbedBatcher
from ephemera_tui.service.server import build_app
from tests.scaling.servers import free_port

FAKE = HashEmbedder(16)


class SlowModel:
    """The fake embedder, taking ``seconds`` per call and remembering each call's texts."""

    def __init__(self, seconds: float = 0.05, fail_on: str | None = None) -> None:
        self.seconds = seconds
        self.fail_on = fail_on
        self.calls: list[list[str]] = []
        self.lock = threading.Lock()

    def __call__(self, texts: list[str]) -> np.ndarray:
        with self.lock:
            self.calls.append(list(texts))
        time.sleep(self.seconds)
        if self.fail_on is not None and self.fail_on in texts:
            raise RuntimeError("the model failed")
        return FAKE.embed(texts)


def test_concurrent_requests_share_calls_and_get_their_own_vectors() -> None:
    model = SlowModel()
    batcher = EmbedBatcher(model, max_batch=64)
    requests = [
        [f"client {c} text {i} " + "x" * ((c * 7 + i) % 5) for i in range(6)] for c in range(8)
    ]

    async def run() -> list[np.ndarray]:
        return list(await asyncio.gather(*(batcher.embed(r) for r in requests)))

    answers = asyncio.run(run())
    for texts, vectors in zip(requests, answers, strict=True):
        assert np.allclose(vectors, FAKE.embed(texts))
    assert batcher.requests == 8 and batcher.calls == len(model.calls) < 8
    assert sum(len(c) for c in model.calls) == 48
    for call in model.calls:  # sorted by length: each of the model's batches pads little
        assert [len(t) for t in call] == sorted(len(t) for t in call)
        assert len(call) <= 64
    batcher.close()


def test_a_failing_call_fails_its_requests_only() -> None:
    model = SlowModel(fail_on="poison")
    batcher = EmbedBatcher(model, max_batch=2, gather_s=0)

    async def run() -> list[Any]:
        return list(
            await asyncio.gather(
                batcher.embed(["fine one"]),
                batcher.embed(["poison"]),
                batcher.embed(["fine two"]),
                batcher.embed(["fine three"]),
                return_exceptions=True,
            )
        )

    first, poisoned, third, fourth = asyncio.run(run())
    assert isinstance(poisoned, RuntimeError)
    assert np.allclose(third, FAKE.embed(["fine two"]))
    assert np.allclose(fourth, FAKE.embed(["fine three"]))
    assert isinstance(first, RuntimeError | np.ndarray)  # shared the poisoned call or not
    batcher.close()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """The real app on TCP (uvicorn in a thread), a slow fake model behind it."""
    import uvicorn

    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'e.db'}",
        embedding_model="fake-hash-16",
    )
    engine = Engine(settings)
    model = SlowModel(0.02)
    app = build_app(engine, embed=model)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the service did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", app.state.batcher
    finally:
        server.should_exit = True
        thread.join(10)
        engine.close()


def test_four_clients_over_http_are_merged(service: tuple[str, Any]) -> None:
    url, batcher = service

    def client(n: int) -> list[list[float]]:
        got: list[list[float]] = []
        with httpx.Client(timeout=30) as http:
            for r in range(5):
                texts = [f"client {n} round {r} text {i}" for i in range(8)]
                answer = http.post(url + "/v1/embeddings", json={"input": texts}).json()
                rows = [d["embedding"] for d in sorted(answer["data"], key=lambda d: d["index"])]
                assert np.allclose(rows, FAKE.embed(texts), atol=1e-6)
                got += rows
        return got

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(client, range(4)))
    assert all(len(r) == 40 for r in results)
    assert batcher.requests == 20 and batcher.calls < 20  # requests rode along together


def test_base64_answers_and_the_project_client(service: tuple[str, Any]) -> None:
    url, _ = service
    texts = ["a walk by the lake", "tickets for the train"]
    answer = httpx.post(
        url + "/v1/embeddings", json={"input": texts, "encoding_format": "base64"}, timeout=30
    ).json()
    rows = [np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4") for d in answer["data"]]
    assert np.allclose(rows, FAKE.embed(texts), atol=1e-7)
    bad = httpx.post(url + "/v1/embeddings", json={"input": "x", "encoding_format": "int8"})
    assert bad.status_code == 400 and "encoding_format" in bad.json()["error"]["message"]
    remote = RemoteEmbedder(url, "fake-hash-16")
    assert remote.dim == 16
    assert np.allclose(remote.embed(texts), FAKE.embed(texts), atol=1e-6)


def test_a_session_pool_spreads_one_call_over_its_sessions_in_order() -> None:
    from ephemera_tui.service.batching import SessionPool

    seen: list[list[str]] = [[], []]

    def session(n: int) -> Any:
        def embed(texts: list[str]) -> np.ndarray:
            seen[n].extend(texts)
            time.sleep(0.05)
            return FAKE.embed(texts)

        return embed

    pool = SessionPool([session(0), session(1)])
    texts = sorted((f"text {i} " + "y" * (i % 9) for i in range(40)), key=len)
    started = time.perf_counter()
    vectors = pool(texts)
    assert time.perf_counter() - started < 0.095  # side by side, not one after the other
    assert np.allclose(vectors, FAKE.embed(texts))
    assert seen[0] and seen[1] and seen[0] + seen[1] == texts  # contiguous runs, in order
    assert np.allclose(pool(["just one"]), FAKE.embed(["just one"]))


@pytest.mark.model
def test_the_real_model_answers_the_same_through_the_session_pool(tmp_path: Path) -> None:
    from ephemera_tui.service.server import SESSION_POOL_FROM, _engine_embed

    settings = Settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'e.db'}")
    with Engine(settings) as engine:
        texts = [f"memory {i}: " + "a walk by the lake " * (i % 4 + 1) for i in range(40)]
        assert len(texts) >= SESSION_POOL_FROM
        served = np.asarray(_engine_embed(engine)(sorted(texts, key=len)))
        direct = engine.embedder.embed(sorted(texts, key=len))
        assert served.shape == direct.shape
        assert np.allclose(served, direct, atol=1e-5)


def test_clients_coming_back_one_by_one_are_embedded_together_again() -> None:
    """Four clients answered by one call return a few milliseconds apart; the next call
    waits for them (a share of the last call's time) instead of taking the first alone."""
    model = SlowModel(0.2)
    batcher = EmbedBatcher(model)

    async def client(n: int) -> None:
        for r in range(3):
            await batcher.embed([f"client {n} round {r}"])
            await asyncio.sleep(0.001 * (n + 1))  # decode, think, send again

    async def run() -> None:
        await asyncio.gather(*(client(n) for n in range(4)))

    asyncio.run(run())
    assert batcher.requests == 12
    assert [len(c) for c in model.calls] == [4, 4, 4]
    batcher.close()
