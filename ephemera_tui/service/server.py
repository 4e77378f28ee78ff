"""The resident engine's local API (Starlette): every call of the journal protocol, the
change feed on a WebSocket, and an OpenAI-compatible ``/v1/embeddings``.

- ``GET /v1/health`` — protocol version, pid, data dir, model, vector status;
- ``POST /v1/call/{name}`` — body ``{"args": {...}}`` (wire-encoded, see :mod:`.wire`),
  answer ``{"result": ...}``; the request must carry ``Ephemera-Protocol: <version>``;
- ``WS /v1/changes?since=SEQ`` — every change after SEQ, then each new one as it commits;
- ``POST /v1/embeddings`` — ``{"input": str | [str], "model"?: str, "encoding_format"?:
  "float" | "base64"}``, OpenAI's answer shape; concurrent requests are embedded together
  (:mod:`.batching`).

Errors are JSON ``{"error": {"type", "message"}}`` with a 4xx/5xx status and a one-line
message. A token (``Authorization: Bearer …``) is required when one is configured (always
for TCP beyond loopback).
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import inspect
import json
import logging
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..engine.errors import (
    ConflictError,
    DatabaseError,
    EmbeddingError,
    EphemeraError,
    NotFoundError,
    ValidationError,
    VectorStoreError,
)
from . import wire
from .batching import EmbedBatcher, SessionPool

if TYPE_CHECKING:
    from ..engine.core import Engine

log = logging.getLogger(__name__)

CALLS = (
    "add",
    "update",
    "delete",
    "link",
    "unlink",
    "get",
    "get_many",
    "search",
    "browse",
    "count",
    "pending",
    "neighbours",
    "similar",
    "position_of",
    "activity",
    "tags",
    "sources",
    "stats",
    "sync",
    "check",
    "changes",
    "latest_seq",
    "import_batch",
    "vector_status_now",
)
"""The journal protocol's calls the service answers (the client implements the same)."""

MAX_BODY = 64 * 1024 * 1024
MAX_EMBED_INPUTS = 2048
MAX_EMBED_CHARS = 100_000
FEED_PAGE = 500
FEED_POLL_SECONDS = 1.0  # other machines' writes (a shared MySQL) are seen this fast


def _status(exc: EphemeraError) -> int:
    if isinstance(exc, ConflictError):
        return 409
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, ValidationError):
        return 400
    if isinstance(exc, DatabaseError | VectorStoreError | EmbeddingError):
        return 503
    return 400


def _error(status: int, kind: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message, **extra}}, status_code=status)


class FeedNotifier:
    """Wakes feed subscribers when this process writes (thread-safe); other processes'
    writes are found by a cheap poll of the newest sequence number."""

    def __init__(self) -> None:
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._lock = threading.Lock()

    def notify(self, *_args: object) -> None:
        with self._lock:
            waiters = list(self._waiters)
        for loop, event in waiters:
            loop.call_soon_threadsafe(event.set)

    def subscribe(self) -> tuple[asyncio.AbstractEventLoop, asyncio.Event]:
        entry = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters.add(entry)
        return entry

    def unsubscribe(self, entry: tuple[asyncio.AbstractEventLoop, asyncio.Event]) -> None:
        with self._lock:
            self._waiters.discard(entry)


class JournalCalls:
    """The calls the service answers, each a thin, blocking wrapper of one engine call."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    def import_batch(self, rows: list[list[Any]]) -> Any:
        """Import a batch of ``[draft, id or None]`` rows (the client streams big files)."""
        pairs = [(row[0], row[1]) for row in rows]
        return self.engine.import_drafts(pairs, batch_size=max(1, len(pairs)))

    def vector_status_now(self) -> str:
        """The vector store's status after trying to open it (as a holder sees it)."""
        self.engine.vectors()
        return self.engine.vector_status


async def _until_closed(websocket: WebSocket) -> None:
    """Return once the client has gone or the server is closing the socket. The feed only
    sends, so without this a quiet feed would notice neither and keep its server from
    shutting down."""
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass


def build_app(
    engine: Engine,
    *,
    token: str | None = None,
    notifier: FeedNotifier | None = None,
    embed: Callable[[list[str]], Any] | None = None,
) -> Starlette:
    """The Starlette application serving ``engine``. ``embed`` replaces the engine's model
    for ``/v1/embeddings`` (texts in, one vector per text out)."""
    calls = JournalCalls(engine)
    batcher = EmbedBatcher(embed or _engine_embed(engine))
    feed = notifier or FeedNotifier()
    engine.observe_writes(feed.notify)

    def authorised(headers: Any) -> bool:
        if not token:
            return True
        given = headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())

    async def health(request: Request) -> JSONResponse:
        if not authorised(request.headers):
            return _error(401, "Unauthorized", "a bearer token is required")
        return JSONResponse(
            {
                "protocol": wire.PROTOCOL_VERSION,
                "pid": os.getpid(),
                "data_dir": str(engine.settings.data_dir),
                "model": engine.model_name,
                "vector_status": engine.vector_status,
            }
        )

    async def call(request: Request) -> JSONResponse:
        if not authorised(request.headers):
            return _error(401, "Unauthorized", "a bearer token is required")
        spoken = request.headers.get("ephemera-protocol")
        if spoken != str(wire.PROTOCOL_VERSION):
            return _error(
                426,
                "ProtocolMismatch",
                f"this service speaks protocol {wire.PROTOCOL_VERSION}, the client "
                f"{spoken or 'none'}: run the same ephemera version on both sides",
                protocol=wire.PROTOCOL_VERSION,
            )
        name = request.path_params["name"]
        if name not in CALLS:
            return _error(404, "UnknownCall", f"no call named {name!r}")
        body = await request.body()
        if len(body) > MAX_BODY:
            return _error(413, "TooLarge", f"request body over {MAX_BODY} bytes")
        try:
            payload = json.loads(body or b"{}")
            if not isinstance(payload, dict) or not isinstance(payload.get("args", {}), dict):
                raise ValidationError('the body must be {"args": {...}}')
            args = wire.decode(payload.get("args", {}))
            method = getattr(calls, name)
            try:
                inspect.signature(method).bind(**args)
            except TypeError as exc:
                raise ValidationError(f"{name}: {exc}") from exc
        except (ValueError, RecursionError) as exc:
            return _error(400, "BadRequest", f"malformed JSON: {str(exc)[:200]}")
        except ValidationError as exc:
            return _error(400, "ValidationError", str(exc))
        try:
            result = await run_in_threadpool(method, **args)
        except ConflictError as exc:
            return _error(409, "ConflictError", str(exc), current=wire.encode(exc.current))
        except EphemeraError as exc:
            return _error(_status(exc), type(exc).__name__, str(exc))
        except Exception as exc:  # noqa: BLE001 - one line to the client; the cause is logged
            log.exception("call %s failed", name)
            return _error(500, "InternalError", f"{type(exc).__name__}: {exc}")
        return JSONResponse({"result": wire.encode(result)})

    async def changes(websocket: WebSocket) -> None:
        if not authorised(websocket.headers):
            await websocket.close(code=4401, reason="a bearer token is required")
            return
        try:
            cursor = int(websocket.query_params.get("since", "0"))
        except ValueError:
            await websocket.close(code=4400, reason="since must be a sequence number")
            return
        await websocket.accept()
        entry = feed.subscribe()
        closed = asyncio.ensure_future(_until_closed(websocket))
        try:
            while not closed.done():
                found = await run_in_threadpool(engine.changes, cursor, FEED_PAGE)
                for change in found:
                    await websocket.send_json(wire.encode(change))
                    cursor = change.seq
                if len(found) == FEED_PAGE:
                    continue
                entry[1].clear()
                # A change here, the client gone, or a poll's time up (writes of other
                # processes on a shared database): then read what came after the cursor.
                changed = asyncio.ensure_future(entry[1].wait())
                await asyncio.wait(
                    {changed, closed},
                    timeout=FEED_POLL_SECONDS,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                changed.cancel()
        except WebSocketDisconnect:
            pass
        finally:
            closed.cancel()
            feed.unsubscribe(entry)

    async def embeddings(request: Request) -> JSONResponse:
        if not authorised(request.headers):
            return _error(401, "Unauthorized", "a bearer token is required")
        try:
            payload = json.loads(await request.body() or b"{}")
        except ValueError as exc:
            return _error(400, "BadRequest", f"malformed JSON: {str(exc)[:200]}")
        if not isinstance(payload, dict):
            return _error(400, "BadRequest", 'the body must be {"input": ...}')
        raw = payload.get("input")
        texts = [raw] if isinstance(raw, str) else raw
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            return _error(400, "BadRequest", "input must be a string or a list of strings")
        if len(texts) > MAX_EMBED_INPUTS:
            return _error(400, "BadRequest", f"at most {MAX_EMBED_INPUTS} inputs per request")
        if any(len(t) > MAX_EMBED_CHARS for t in texts):
            return _error(400, "BadRequest", f"inputs longer than {MAX_EMBED_CHARS} characters")
        model = payload.get("model")
        if model not in (None, "", engine.model_name):
            return _error(
                400, "BadRequest", f"this service embeds with {engine.model_name!r}, not {model!r}"
            )
        encoding = payload.get("encoding_format") or "float"
        if encoding not in ("float", "base64"):
            return _error(400, "BadRequest", "encoding_format must be 'float' or 'base64'")
        try:
            vectors = await batcher.embed(texts)  # merged with concurrent requests
        except EphemeraError as exc:
            return _error(_status(exc), type(exc).__name__, str(exc))
        rows: list[Any]
        if encoding == "base64":  # little-endian float32, as OpenAI's clients expect
            rows = [base64.b64encode(v.astype("<f4").tobytes()).decode("ascii") for v in vectors]
        else:
            rows = vectors.tolist()
        tokens = sum(len(t.split()) for t in texts)
        return JSONResponse(
            {
                "object": "list",
                "data": [
                    {"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(rows)
                ],
                "model": engine.model_name,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    app = Starlette(
        routes=[
            Route("/v1/health", health, methods=["GET"]),
            Route("/v1/call/{name}", call, methods=["POST"]),
            WebSocketRoute("/v1/changes", changes),
            Route("/v1/embeddings", embeddings, methods=["POST"]),
        ]
    )
    app.state.batcher = batcher  # its counters show how requests were merged
    return app


SESSION_POOL_FROM = 16
"""Merged calls of at least this many texts go to one-thread sessions side by side."""


def _engine_embed(engine: Engine) -> Callable[[list[str]], Any]:
    """The model behind ``/v1/embeddings``: small calls (queries) through the engine's
    embedder and its cache; larger merged calls over one one-thread session per core
    (:class:`~.batching.SessionPool`) when the model is a local fastembed one."""
    pool: list[SessionPool | None] = []
    lock = threading.Lock()

    def sessions() -> SessionPool | None:
        with lock:
            if not pool:
                pool.append(_session_pool(engine))
            return pool[0]

    def embed(texts: list[str]) -> Any:
        if len(texts) >= SESSION_POOL_FROM:
            spread = sessions()
            if spread is not None:
                return spread(texts)
        return engine.embedder.embed(texts)

    return embed


def _session_pool(engine: Engine) -> SessionPool | None:
    """One one-thread fastembed session per core for the engine's local model, or None
    (a remote or fake embedder, a single core)."""
    inner = getattr(engine.embedder, "inner", None)
    make = getattr(inner, "_session", None)  # FastEmbedder's session factory
    cores = os.cpu_count() or 1
    if make is None or cores < 2:
        return None
    batch = int(getattr(inner, "batch_size", 32))
    models = [make(threads=1) for _ in range(cores)]

    def session(model: Any) -> Callable[[list[str]], Any]:
        return lambda texts: list(model.embed(texts, batch_size=batch))

    return SessionPool([session(m) for m in models])
