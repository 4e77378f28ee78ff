"""A client of the resident engine with the in-process engine's calls and return types, so
the code above it (the CLI) does not change.

It is light on purpose: no SQLAlchemy, no model, no vector store, and the standard
library's HTTP client (httpx alone costs ~0.2 s to import) — a command run against a service
costs a process start and typer. Connection failures before a request was
sent raise :class:`ServiceUnavailable` (the caller then works in-process); a failure after
it was sent is a :class:`~ephemera_tui.engine.errors.EphemeraError` saying the outcome is
unknown, because the write may or may not have been committed.
"""

from __future__ import annotations

import http.client
import json
import os
import socket as _socket
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from ..engine import errors
from ..engine.domain import (
    Change,
    CheckReport,
    Draft,
    EngineStats,
    Hit,
    ImportReport,
    Memory,
    SearchResult,
    SyncReport,
)
from ..engine.errors import EphemeraError
from ..engine.filters import SearchFilter
from ..engine.query import ParsedQuery
from . import wire

CALL_TIMEOUT = 600.0  # an import batch or a full check may take minutes
CONNECT_TIMEOUT = 5.0  # a service busy starting up (or a loaded machine) answers late


class ServiceUnavailable(Exception):
    """No service answers (nothing was sent): work in-process instead."""


class _UnixConnection(http.client.HTTPConnection):
    """HTTP over a Unix socket (the standard library speaks HTTP; this only connects)."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("ephemera", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class _Response:
    def __init__(self, status: int, body: bytes) -> None:
        self.status_code = status
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def _raise_for(response: _Response) -> None:
    try:
        error = response.json()["error"]
        kind, message = str(error["type"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        raise EphemeraError(
            f"the ephemera service answered HTTP {response.status_code}: {response.text[:200]}"
        ) from None
    if kind == "ConflictError":
        raise errors.ConflictError(message, wire.decode(error.get("current")))
    cls = getattr(errors, kind, None)
    if isinstance(cls, type) and issubclass(cls, EphemeraError) and cls is not errors.ConflictError:
        raise cls(message)
    raise EphemeraError(message)


class ServiceClient:
    """The journal calls, answered by a service over its Unix socket (or ``url`` with a
    token)."""

    def __init__(
        self,
        *,
        socket: Path | None = None,
        url: str | None = None,
        token: str | None = None,
        data_dir: Path | None = None,
    ) -> None:
        self._headers = {"ephemera-protocol": str(wire.PROTOCOL_VERSION)}
        if token:
            self._headers["authorization"] = f"Bearer {token}"
        if socket is not None:
            self._socket: str | None = str(socket)
            self._url = None
            self.where = str(socket)
        elif url is not None:
            self._socket = None
            self._url = urllib.parse.urlsplit(url)
            if self._url.scheme not in ("http", "https") or not self._url.hostname:
                raise EphemeraError(f"service_url {url!r}: expected http://HOST:PORT")
            self.where = url
        else:
            raise ValueError("a socket or a url")
        self._conn: http.client.HTTPConnection | None = None
        self.data_dir = data_dir
        self.health: dict[str, Any] = {}

    # ------------------------------------------------------------------ plumbing

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        if self._conn is None:
            if self._socket is not None:
                self._conn = _UnixConnection(self._socket, timeout)
            else:
                assert self._url is not None
                cls = (
                    http.client.HTTPSConnection
                    if self._url.scheme == "https"
                    else http.client.HTTPConnection
                )
                self._conn = cls(self._url.hostname or "", self._url.port, timeout=timeout)
        self._conn.timeout = timeout
        return self._conn

    def _request(self, method: str, path: str, body: bytes | None, timeout: float) -> _Response:
        """One request; ServiceUnavailable if it could not even connect."""
        conn = self._connection(timeout)
        headers = dict(self._headers)
        if body is not None:
            headers["content-type"] = "application/json"
        try:
            if conn.sock is None:
                conn.connect()
        except OSError as exc:
            self.close()
            raise ServiceUnavailable(str(exc)) from exc
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return _Response(response.status, response.read())
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise EphemeraError(
                f"the ephemera service at {self.where} stopped answering ({exc}); if this was "
                "a write, check whether it was saved"
            ) from exc

    def connect(self) -> ServiceClient:
        """Check the service answers and speaks our protocol; ServiceUnavailable if not."""
        try:
            response = self._request("GET", "/v1/health", None, CONNECT_TIMEOUT)
        except EphemeraError as exc:
            raise ServiceUnavailable(str(exc)) from exc
        if response.status_code != 200:
            self.close()
            _raise_for(response)
        self.health = response.json()
        if self.health.get("protocol") != wire.PROTOCOL_VERSION:
            self.close()
            raise EphemeraError(
                f"the ephemera service at {self.where} speaks protocol "
                f"{self.health.get('protocol')}, this client {wire.PROTOCOL_VERSION}: run the "
                "same ephemera version on both sides (or stop the service)"
            )
        return self

    def _call(self, name: str, **args: Any) -> Any:
        body = json.dumps({"args": wire.encode(args)}).encode("utf-8")
        response = self._request("POST", f"/v1/call/{name}", body, CALL_TIMEOUT)
        if response.status_code != 200:
            _raise_for(response)
        return wire.decode(response.json()["result"])

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> ServiceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ the journal calls

    @property
    def vector_status(self) -> str:
        return str(self.health.get("vector_status", "ok"))

    def vectors(self) -> None:
        """The vectors live in the service's process (present for callers that warm them)."""
        self.health["vector_status"] = self._call("vector_status_now")

    def parse(self, raw: str) -> ParsedQuery:
        """Parse a query here (pure: no need to ask the service)."""
        import time

        from ..engine.query import parse_query

        return parse_query(raw, time.time())

    def add(self, draft: Draft) -> Memory:
        result: Memory = self._call("add", draft=draft)
        return result

    def update(
        self, memory_id: int, draft: Draft, *, expected_revision: int | None = None
    ) -> Memory:
        result: Memory = self._call(
            "update", memory_id=memory_id, draft=draft, expected_revision=expected_revision
        )
        return result

    def delete(self, memory_id: int, *, expected_revision: int | None = None) -> Memory:
        result: Memory = self._call(
            "delete", memory_id=memory_id, expected_revision=expected_revision
        )
        return result

    def link(self, source_id: int, target_id: int) -> Memory:
        result: Memory = self._call("link", source_id=source_id, target_id=target_id)
        return result

    def unlink(self, first_id: int, second_id: int) -> None:
        self._call("unlink", first_id=first_id, second_id=second_id)

    def get(self, memory_id: int) -> Memory:
        result: Memory = self._call("get", memory_id=memory_id)
        return result

    def get_many(self, ids: Sequence[int]) -> dict[int, Memory]:
        found: dict[str, Memory] = self._call("get_many", ids=list(ids))
        return {int(k): v for k, v in found.items()}

    def search(self, raw: str, limit: int = 20, *, keyword_only: bool = False) -> SearchResult:
        result: SearchResult = self._call("search", raw=raw, limit=limit, keyword_only=keyword_only)
        return result

    def browse(
        self, flt: SearchFilter | None = None, limit: int = 50, offset: int = 0
    ) -> list[Memory]:
        result: list[Memory] = self._call("browse", flt=flt, limit=limit, offset=offset)
        return result

    def count(self, flt: SearchFilter | None = None) -> int:
        return int(self._call("count", flt=flt))

    def pending(self) -> int:
        return int(self._call("pending"))

    def neighbours(self, memory_id: int) -> tuple[list[Memory], list[Memory]]:
        outgoing, incoming = self._call("neighbours", memory_id=memory_id)
        return list(outgoing), list(incoming)

    def similar(self, memory_id: int, limit: int = 5) -> list[Hit]:
        result: list[Hit] = self._call("similar", memory_id=memory_id, limit=limit)
        return result

    def position_of(self, when: int, flt: SearchFilter | None = None) -> int:
        return int(self._call("position_of", when=when, flt=flt))

    def activity(self, unit: str = "day", flt: SearchFilter | None = None) -> list[tuple[int, int]]:
        return [(int(a), int(b)) for a, b in self._call("activity", unit=unit, flt=flt)]

    def tags(self) -> list[tuple[str, int]]:
        return [(str(a), int(b)) for a, b in self._call("tags")]

    def sources(self) -> list[tuple[str, int]]:
        return [(str(a), int(b)) for a, b in self._call("sources")]

    def stats(self) -> EngineStats:
        result: EngineStats = self._call("stats")
        return result

    def sync(self, batch_size: int = 256, max_batches: int | None = None) -> SyncReport:
        result: SyncReport = self._call("sync", batch_size=batch_size, max_batches=max_batches)
        return result

    def check(self, repair: bool = False, batch_size: int = 1000) -> CheckReport:
        result: CheckReport = self._call("check", repair=repair, batch_size=batch_size)
        return result

    def changes(self, after_seq: int, limit: int = 500) -> list[Change]:
        result: list[Change] = self._call("changes", after_seq=after_seq, limit=limit)
        return result

    def latest_seq(self) -> int:
        return int(self._call("latest_seq"))

    def import_drafts(
        self,
        rows: Iterable[tuple[Draft, int | None]],
        batch_size: int = 256,
        progress: Callable[[int], None] | None = None,
    ) -> ImportReport:
        """Send the rows in batches; the service imports each batch as the engine would."""
        total = ImportReport()
        batch: list[list[Any]] = []

        def send() -> None:
            part: ImportReport = self._call("import_batch", rows=batch)
            total.imported += part.imported
            total.updated += part.updated
            total.skipped += part.skipped
            for reason, n in part.reasons.items():
                total.reasons[reason] = total.reasons.get(reason, 0) + n
            total.ids.extend(part.ids)
            if progress is not None:
                progress(len(batch))
            batch.clear()

        for draft, mid in rows:
            batch.append([draft, mid])
            if len(batch) >= batch_size:
                send()
        if batch:
            send()
        return total


def find_service(
    data_dir: Path, *, url: str | None = None, token: str | None = None
) -> ServiceClient | None:
    """A connected client of the service for ``data_dir`` (or ``url``), or None when none
    answers. Cheap when none runs: one small file read (or a refused connection)."""
    from .runner import read_info

    token = token or os.environ.get("EPHEMERA_SERVICE_TOKEN")
    if url:
        client = ServiceClient(url=url, token=token, data_dir=data_dir)
    else:
        info = read_info(data_dir)
        if not info or not info.get("socket"):
            return None
        client = ServiceClient(socket=Path(str(info["socket"])), token=token, data_dir=data_dir)
    try:
        return client.connect()
    except ServiceUnavailable:
        return None
