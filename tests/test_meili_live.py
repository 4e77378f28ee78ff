"""The live MeiliSearch paths (dual write, compare, read modes, finish) against a loopback fake.

No MeiliSearch server can run here: :class:`FakeMeili` is a small ``http.server`` in a thread
that answers, through the official client, the three calls the live path makes — with the
status codes and bodies MeiliSearch documents for them — and records every request. Any other
call is recorded as unexpected and fails the test.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import pytest
from sqlalchemy import delete

from ephemera_tui.engine import Draft, Engine, EphemeraError, SearchResult
from ephemera_tui.engine.store import META
from ephemera_tui.migration import state
from ephemera_tui.migration.config import MeiliConfig, load_meili_config
from ephemera_tui.migration.importer import Importer
from ephemera_tui.migration.live import (
    MeiliServer,
    Router,
    compare,
    install,
    overlap_at,
    rank_agreement,
    source_info,
)
from ephemera_tui.migration.mapping import build_mapping
from ephemera_tui.migration.phases import finish, phase, status
from ephemera_tui.migration.readers import read_source, read_sources
from tests.helpers import run_ephemera
from tests.test_meili_support import write_dump

MASTER_KEY = "masterKey"
DOCUMENT_ID = re.compile(r"[A-Za-z0-9_-]{1,511}")  # what MeiliSearch accepts as a document id


def meili_error(code: str, message: str, kind: str) -> dict[str, str]:
    """MeiliSearch's error object."""
    return {
        "message": message,
        "code": code,
        "type": kind,
        "link": f"https://docs.meilisearch.com/errors#{code}",
    }


class FakeMeili:
    """Loopback stand-in for MeiliSearch 1.x, for the calls the live path makes:

    - ``POST /indexes/{uid}/documents[?primaryKey=]`` (a JSON array; creates the index) and
      ``DELETE /indexes/{uid}/documents/{id}``: ``202`` with a summarized task ``{"taskUid",
      "indexUid", "status": "enqueued", "type", "enqueuedAt"}``. The task then runs at once:
      it succeeds or fails as MeiliSearch's would (``missing_document_id``,
      ``invalid_document_id``, ``index_primary_key_already_exists``, ``index_not_found``), and
      is kept in :attr:`tasks` — nobody polls tasks, the tests read them.
    - ``POST /indexes/{uid}/search`` (``{"q", "limit"}``): ``200`` with ``{"hits", "query",
      "processingTimeMs", "limit", "offset", "estimatedTotalHits"}``, or ``404``
      ``index_not_found`` before the index exists.
    - Errors as ``{"message", "code", "type", "link"}``: ``401 missing_authorization_header``,
      ``403 invalid_api_key``, ``415 missing_content_type``/``invalid_content_type``, ``400
      malformed_payload``/``bad_request``, ``500 internal`` (``fail``, ``fail_queries``).
    """

    def __init__(self, key: str | None = MASTER_KEY) -> None:
        self.key = key
        self.requests: list[dict[str, Any]] = []
        self.unexpected: list[str] = []
        self.tasks: list[dict[str, Any]] = []
        self.documents: dict[str, dict[str, dict[str, Any]]] = {}
        self.primary_keys: dict[str, str] = {}
        self.fail = False  # every request answers 500 internal
        self.fail_queries: set[str] = set()  # searches for these answer 500 internal
        self.search_order: list[Any] | None = None  # fixed hit keys, else naive word match
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                url = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                request = {
                    "method": method,
                    "path": url.path,
                    "query": parse_qs(url.query),
                    "raw": raw,
                    "content_type": self.headers.get("Content-Type"),
                    "auth": self.headers.get("Authorization"),
                }
                with fake._lock:
                    fake.requests.append(request)
                    code, payload = fake.answer(request)
                self._send(code, payload)

            def do_POST(self) -> None:  # noqa: N802
                self._handle("POST")

            def do_DELETE(self) -> None:  # noqa: N802
                self._handle("DELETE")

            def do_GET(self) -> None:  # noqa: N802
                self._handle("GET")

            def do_PUT(self) -> None:  # noqa: N802
                self._handle("PUT")

            def do_PATCH(self) -> None:  # noqa: N802
                self._handle("PATCH")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    # ------------------------------------------------------------------ answering

    def answer(self, request: dict[str, Any]) -> tuple[int, Any]:
        method, path = request["method"], request["path"]
        documents = re.fullmatch(r"/indexes/([^/]+)/documents", path)
        one = re.fullmatch(r"/indexes/([^/]+)/documents/([^/]+)", path)
        search = re.fullmatch(r"/indexes/([^/]+)/search", path)
        known = (
            (method == "POST" and documents)
            or (method == "DELETE" and one)
            or (method == "POST" and search)
        )
        if not known:
            self.unexpected.append(f"{method} {path}")
            return 404, meili_error("not_found", "this call is not one the live path makes", "x")
        auth = request["auth"]
        if self.key is not None and not auth:
            return 401, meili_error(
                "missing_authorization_header",
                "The Authorization header is missing. It must use the bearer authorization method.",
                "auth",
            )
        if self.key is not None and auth != f"Bearer {self.key}":
            return 403, meili_error("invalid_api_key", "The provided API key is invalid.", "auth")
        if self.fail:
            return 500, meili_error(
                "internal",
                "An internal error has occurred. `Resource temporarily unavailable`.",
                "internal",
            )
        body: Any = None
        if method == "POST":
            if not request["content_type"]:
                return 415, meili_error(
                    "missing_content_type",
                    "A Content-Type header is missing. Accepted values for the Content-Type "
                    "header are: `application/json`, `application/x-ndjson`, `text/csv`",
                    "invalid_request",
                )
            if request["content_type"].split(";")[0].strip() != "application/json":
                return 415, meili_error(
                    "invalid_content_type",
                    f"The Content-Type `{request['content_type']}` is invalid.",
                    "invalid_request",
                )
            try:
                body = json.loads(request["raw"] or b"null")
            except ValueError:
                return 400, meili_error(
                    "malformed_payload",
                    "The json payload provided is malformed.",
                    "invalid_request",
                )
        if documents:
            if not isinstance(body, list) or not all(isinstance(d, dict) for d in body):
                return 400, meili_error(
                    "malformed_payload",
                    "The json payload provided is malformed. `expected a list of objects`.",
                    "invalid_request",
                )
            primary_key = (request["query"].get("primaryKey") or [None])[0]
            return 202, self._task(
                documents.group(1), "documentAdditionOrUpdate", body, primary_key
            )
        if one:
            return 202, self._task(one.group(1), "documentDeletion", unquote(one.group(2)), None)
        assert search
        return self._search(search.group(1), body)

    def _task(self, index: str, kind: str, payload: Any, primary_key: str | None) -> dict[str, Any]:
        """Enqueue and run a task at once; answer its summary, as MeiliSearch does (202)."""
        summary = {
            "taskUid": len(self.tasks),
            "indexUid": index,
            "status": "enqueued",
            "type": kind,
            "enqueuedAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
        error = self._run(index, kind, payload, primary_key)
        self.tasks.append(
            {
                **summary,
                "status": "failed" if error else "succeeded",
                "error": error,
                "payload": payload,
            }
        )
        return summary

    def _run(self, index: str, kind: str, payload: Any, primary_key: str | None) -> Any:
        if kind == "documentDeletion":
            if index not in self.documents:
                return meili_error(
                    "index_not_found", f"Index `{index}` not found.", "invalid_request"
                )
            self.documents[index].pop(payload, None)
            return None
        known = self.primary_keys.get(index)
        if known and primary_key and primary_key != known:
            return meili_error(
                "index_primary_key_already_exists",
                f"Index `{index}`: Index already has a primary key: `{known}`.",
                "invalid_request",
            )
        key = known or primary_key or "id"
        for doc in payload:
            value = doc.get(key)
            if value is None:
                return meili_error(
                    "missing_document_id",
                    f"Document doesn't have a `{key}` attribute: `{json.dumps(doc)}`.",
                    "invalid_request",
                )
            if isinstance(value, bool) or not (
                (isinstance(value, int) and value >= 0)
                or (isinstance(value, str) and DOCUMENT_ID.fullmatch(value))
            ):
                return meili_error(
                    "invalid_document_id",
                    f"Document identifier `{json.dumps(value)}` is invalid.",
                    "invalid_request",
                )
        self.primary_keys[index] = key
        docs = self.documents.setdefault(index, {})
        for doc in payload:  # add or replace: the whole document
            docs[str(doc[key])] = doc
        return None

    def _search(self, index: str, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict):
            return 400, meili_error(
                "bad_request", "Invalid value type: expected an object", "invalid_request"
            )
        unknown = sorted(set(body) - {"q", "limit"})
        if unknown:
            self.unexpected.append(f"search parameters {unknown}")
        query, limit = body.get("q") or "", body.get("limit", 20)
        if query in self.fail_queries:
            return 500, meili_error(
                "internal", "An internal error has occurred. `query interrupted`.", "internal"
            )
        if index not in self.documents and self.search_order is None:
            return 404, meili_error(
                "index_not_found", f"Index `{index}` not found.", "invalid_request"
            )
        docs = self.documents.get(index, {})
        if self.search_order is not None:
            pk = self.primary_keys.get(index, "id")
            matches = [docs.get(str(k), {pk: k}) for k in self.search_order]
        else:
            words = set(query.lower().split())
            matches = [
                d
                for d in docs.values()
                if words & set(json.dumps(d).lower().replace('"', " ").split())
            ]
        return 200, {
            "hits": matches[:limit],
            "query": query,
            "processingTimeMs": 1,
            "limit": limit,
            "offset": 0,
            "estimatedTotalHits": len(matches),
        }

    # ------------------------------------------------------------------ what it received

    def writes(self) -> list[dict[str, Any]]:
        """Document writes received, with their JSON body."""
        return [
            {**r, "body": json.loads(r["raw"]) if r["raw"] else None}
            for r in self.requests
            if r["method"] in ("POST", "DELETE") and not r["path"].endswith("/search")
        ]

    def searches(self) -> list[dict[str, Any]]:
        return [
            {**r, "body": json.loads(r["raw"]) if r["raw"] else None}
            for r in self.requests
            if r["path"].endswith("/search")
        ]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake() -> Iterator[FakeMeili]:
    server = FakeMeili()
    try:
        yield server
    finally:
        server.close()
    assert server.unexpected == [], "calls the live path is not documented to make"
    failed = [t for t in server.tasks if t["status"] == "failed"]
    assert failed == [], "MeiliSearch would have refused these writes"


def config_for(fake: FakeMeili, **changes: Any) -> MeiliConfig:
    values: dict[str, Any] = {
        "url": fake.url,
        "key": MASTER_KEY,
        "index": "notes",
        "timeout": 2.0,
        "retry_seconds": 30.0,
    }
    values.update(changes)
    return MeiliConfig(**values)


def imported(engine: Engine, tmp_path: Path) -> dict[str, int]:
    """Import the sample dump; return primary key → memory id."""
    source = read_source(write_dump(tmp_path / "notes.dump"))
    fmap = build_mapping([d.data for d in source.documents], {}, source.primary_key)
    Importer(engine).run(source, fmap)
    rows = state.mappings_by_key(engine.store, "notes", ["1", "2", "3", "four", "6"])
    return {k: r.memory_id for k, r in rows.items()}


# ---------------------------------------------------------------------------------- dual write


def test_dual_write_sends_adds_edits_and_deletes_with_original_keys(
    engine: Engine, tmp_path: Path, fake: FakeMeili
) -> None:
    ids = imported(engine, tmp_path)
    install(engine, config_for(fake, shadow=False))

    new = engine.add(Draft("planted tomatoes", created_at=1_700_001_000, tags=("garden",)))
    first = engine.get(ids["1"])
    engine.update(first.id, Draft.from_memory(first).with_changes(content="walked the dog at dawn"))
    engine.delete(ids["four"])

    writes = fake.writes()
    assert [w["method"] for w in writes] == ["POST", "POST", "DELETE"]
    assert all(w["auth"] == "Bearer masterKey" for w in writes)
    assert writes[0]["path"] == "/indexes/notes/documents"
    assert writes[0]["query"] == {"primaryKey": ["id"]}
    assert writes[0]["body"] == [
        {
            "id": f"ephemera-{new.id}",
            "text": "planted tomatoes",
            "timestamp": 1_700_001_000,
            "labels": ["garden"],
            "priority": 128,
        }
    ]
    assert writes[1]["body"] == [
        {
            "id": 1,
            "text": "walked the dog at dawn",
            "timestamp": 1_700_000_000,
            "labels": ["dog", "walk"],
            "priority": 200,
        }
    ]
    assert writes[2]["path"] == "/indexes/notes/documents/four"
    assert state.queue_summary(engine.store)["pending"] == 0
    assert (state.get_json(engine.store, state.META_DUAL) or {})["sent"] == 3
    # the new memory now has a key, so compare and read routing can map it back
    assert state.mappings_by_key(engine.store, "notes", [f"ephemera-{new.id}"])


def test_failed_writes_are_queued_retried_in_order_and_never_block(
    engine: Engine, tmp_path: Path, fake: FakeMeili, clock: Any
) -> None:
    ids = imported(engine, tmp_path)
    writer, _ = install(engine, config_for(fake, shadow=False))  # type: ignore[misc]
    fake.fail = True
    a = engine.add(Draft("first while down"))
    assert engine.get(a.id).content == "first while down"  # the user's write went through
    assert state.queue_summary(engine.store)["pending"] == 1
    tried = len(fake.requests)
    b = engine.add(Draft("second while down"))
    engine.delete(ids["2"])
    assert len(fake.requests) == tried  # backing off: no request, no waiting
    summary = state.queue_summary(engine.store)
    assert summary["pending"] == 3 and "unavailable" in summary["last_error"]

    fake.fail = False
    clock.advance(31)
    c = engine.add(Draft("third, server back"))
    assert state.queue_summary(engine.store)["pending"] == 0
    bodies = [
        w["body"][0]["text"] if w["body"] else w["path"] for w in fake.writes() if w["method"]
    ][-4:]
    assert bodies == [
        "first while down",
        "second while down",
        "/indexes/notes/documents/2",
        "third, server back",
    ]
    assert {a.id, b.id, c.id} <= set(
        state.mappings_by_memory(engine.store, "notes", [a.id, b.id, c.id])
    )
    figures = state.get_json(engine.store, state.META_DUAL)
    assert figures["failures"] == 1 and figures["sent"] == 4
    assert writer.drain()["remaining"] == 0


def test_unreachable_server_does_not_fail_writes(engine: Engine, tmp_path: Path) -> None:
    config = MeiliConfig(url="http://127.0.0.1:9", index="notes", timeout=0.5)
    install(engine, config)
    memory = engine.add(Draft("written while MeiliSearch is unreachable"))
    assert engine.get(memory.id).content.startswith("written")
    queue = state.queue_summary(engine.store)
    assert queue["pending"] == 1 and "MeiliSearch add documents failed" in queue["last_error"]


def test_every_call_gets_the_answer_meilisearch_documents(fake: FakeMeili) -> None:
    """The fake against the official client: task summaries, search body, error objects."""
    server = MeiliServer(config_for(fake, index="films"))
    with pytest.raises(EphemeraError) as missing:
        server.search("ariel", 5)
    assert str(missing.value) == (
        "MeiliSearch search failed: Index `films` not found. (index_not_found, HTTP 404)"
    )
    server.upsert([{"id": 2, "title": "Ariel"}], "id")
    server.delete("2")
    assert [(t["taskUid"], t["type"], t["status"]) for t in fake.tasks] == [
        (0, "documentAdditionOrUpdate", "succeeded"),
        (1, "documentDeletion", "succeeded"),
    ]
    server.upsert([{"id": 3, "title": "Four Rooms"}], "id")
    hits, _ = server.search("rooms", 5)
    assert hits == [{"id": 3, "title": "Four Rooms"}]
    assert [(r["method"], r["path"], r["content_type"]) for r in fake.requests[1:]] == [
        ("POST", "/indexes/films/documents", "application/json"),
        ("DELETE", "/indexes/films/documents/2", None),
        ("POST", "/indexes/films/documents", "application/json"),
        ("POST", "/indexes/films/search", "application/json"),
    ]
    wrong = MeiliServer(config_for(fake, index="films", key="not-the-key"))
    with pytest.raises(EphemeraError) as refused:
        wrong.upsert([{"id": 4, "title": "x"}], "id")
    assert str(refused.value) == (
        "MeiliSearch add documents failed: The provided API key is invalid. "
        "(invalid_api_key, HTTP 403)"
    )


def movies_dump(path: Path) -> Path:
    """A movies index as MeiliSearch's own sample has it: title + overview are searched."""
    return write_dump(
        path,
        index="movies",
        documents=[
            {
                "id": 2,
                "title": "Ariel",
                "overview": "Taisto Kasurinen is a Finnish coal miner.\nHe escapes from prison.",
                "genres": ["Drama", "Science Fiction"],
                "poster": "https://image.tmdb.org/t/p/w500/ojDg0PGvs6R9xYFodRct2kdI6wC.jpg",
                "release_date": 593395200,
            },
            {
                "id": 5,
                "title": "Four Rooms",
                "overview": "It's Ted the Bellhop's first night on the job.",
                "genres": ["Crime", "Comedy"],
                "poster": "https://image.tmdb.org/t/p/w500/75aHn1NOYXh4M7L5shoeQ6NGykP.jpg",
                "release_date": "1995-12-09T00:00:00Z",
            },
        ],
        settings={"searchableAttributes": ["*"], "displayedAttributes": ["*"]},
        tasks=[],
    )


def import_dump(engine: Engine, dump: Path, order: tuple[str, ...] | None = None) -> None:
    sources = read_sources(dump)
    if order is not None:
        sources = sorted(sources, key=lambda s: order.index(s.index_uid))
    plans = [
        (s, build_mapping([d.data for d in s.documents], {}, s.primary_key, s.settings))
        for s in sources
    ]
    Importer(engine).run_many(plans)


def memory_of(engine: Engine, index: str, key: str) -> int:
    return state.mappings_by_key(engine.store, index, [key])[key].memory_id


def test_movies_content_is_written_back_into_title_and_overview_only_where_it_maps(
    engine: Engine, tmp_path: Path, fake: FakeMeili
) -> None:
    import_dump(engine, movies_dump(tmp_path / "movies.dump"))
    assert source_info(engine.store, config_for(fake, index="movies"))["content_fields"] == [
        "title",
        "overview",
    ]
    install(engine, config_for(fake, index="movies", shadow=False))
    ariel = engine.get(memory_of(engine, "movies", "2"))
    assert ariel.content.startswith("Ariel\nTaisto")

    def edit(memory_id: int, **changes: Any) -> dict[str, Any]:
        memory = engine.get(memory_id)
        engine.update(memory_id, Draft.from_memory(memory).with_changes(**changes))
        body = fake.writes()[-1]["body"]
        assert isinstance(body, list) and len(body) == 1
        return body[0]

    untouched = {
        "id": 2,
        "title": "Ariel",
        "overview": "Taisto Kasurinen is a Finnish coal miner.\nHe escapes from prison.",
        "genres": ["Drama", "Science Fiction"],
        "poster": "https://image.tmdb.org/t/p/w500/ojDg0PGvs6R9xYFodRct2kdI6wC.jpg",
        "release_date": 593395200,
    }
    # only the overview changed: the title stays the title
    new_overview = "A coal miner framed for a crime he did not commit."
    sent = edit(ariel.id, content=f"Ariel\n{new_overview}")
    assert sent == {**untouched, "overview": new_overview}
    # title and overview changed: first line → title, the rest → overview
    sent = edit(ariel.id, content="Ariel (1988)\nLine one.\nLine two.")
    assert sent == {**untouched, "title": "Ariel (1988)", "overview": "Line one.\nLine two."}
    # a line added at the end belongs to the overview
    sent = edit(ariel.id, content="Ariel (1988)\nLine one.\nLine two.\nA Kaurismäki film.")
    assert sent["overview"] == "Line one.\nLine two.\nA Kaurismäki film."
    assert sent["title"] == "Ariel (1988)"

    # tags and date unchanged → the original values exactly (spelling, type, format)
    rooms = engine.get(memory_of(engine, "movies", "5"))
    assert "Four Rooms" in rooms.content
    sent = edit(rooms.id, importance=200)
    assert sent == {
        "id": 5,
        "title": "Four Rooms",
        "overview": "It's Ted the Bellhop's first night on the job.",
        "genres": ["Crime", "Comedy"],
        "poster": "https://image.tmdb.org/t/p/w500/75aHn1NOYXh4M7L5shoeQ6NGykP.jpg",
        "release_date": "1995-12-09T00:00:00Z",
    }
    # a tag added: the list keeps the original spellings and gains the new one
    ariel = engine.get(ariel.id)
    sent = edit(ariel.id, tags=(*ariel.tags, "classic"))
    assert sent["genres"] == ["Drama", "Science Fiction", "classic"]
    assert sent["title"] == "Ariel (1988)"

    # a memory written in Ephemera: first line → title, the rest → overview
    new = engine.add(
        Draft("Le Havre\nA shoe shiner meets a young refugee.", created_at=1_300_000_000)
    )
    sent = fake.writes()[-1]["body"][0]
    assert sent["id"] == f"ephemera-{new.id}"
    assert sent["title"] == "Le Havre"
    assert sent["overview"] == "A shoe shiner meets a young refugee."
    assert sent["release_date"] == 1_300_000_000
    assert fake.documents["movies"]["2"]["title"] == "Ariel (1988)"


def test_several_changed_fields_that_cannot_be_split_are_left_as_imported(
    engine: Engine, tmp_path: Path, fake: FakeMeili
) -> None:
    dump = write_dump(
        tmp_path / "books.dump",
        index="books",
        documents=[
            {"id": 1, "title": "Dune", "tagline": "Fear is the mind-killer.", "blurb": "Spice."}
        ],
        settings={"searchableAttributes": ["title", "tagline", "blurb"]},
        tasks=[],
    )
    import_dump(engine, dump)
    install(engine, config_for(fake, index="books", shadow=False))
    memory = engine.get(memory_of(engine, "books", "1"))
    assert memory.content == "Dune\nFear is the mind-killer.\nSpice."
    engine.update(
        memory.id, Draft.from_memory(memory).with_changes(content="Dune Messiah\nAll new")
    )
    assert fake.writes()[-1]["body"] == [
        {"id": 1, "title": "Dune Messiah", "tagline": "Fear is the mind-killer.", "blurb": "Spice."}
    ]


def test_dual_writing_and_reads_use_the_configured_index_record(
    engine: Engine, tmp_path: Path, fake: FakeMeili
) -> None:
    dump = write_dump(tmp_path / "two.dump", tasks=[], extra_indexes=("books",))
    import_dump(engine, dump, order=("notes", "books"))  # books last: meili.source is books
    assert state.get_json(engine.store, state.META_SOURCE)["index"] == "books"
    config = config_for(fake, shadow=False)  # index "notes"
    info = source_info(engine.store, config)
    assert info["index"] == "notes" and info["mapping"]["content"] == "text"
    assert info["mapping"]["created_at"] == "timestamp"
    install(engine, config)

    walk = engine.get(memory_of(engine, "notes", "1"))
    engine.update(walk.id, Draft.from_memory(walk).with_changes(content="walked the dog at dusk"))
    assert fake.writes()[-1]["path"] == "/indexes/notes/documents"
    assert fake.writes()[-1]["body"] == [
        {
            "id": 1,
            "text": "walked the dog at dusk",
            "timestamp": 1_700_000_000,
            "labels": ["dog", "walk"],
            "priority": 200,
        }
    ]
    # a memory from the other index is not copied into this one
    book = engine.get(memory_of(engine, "books", "1"))
    before = len(fake.writes())
    engine.update(book.id, Draft.from_memory(book).with_changes(content="other, edited"))
    engine.delete(book.id)
    assert len(fake.writes()) == before
    assert state.queue_summary(engine.store)["pending"] == 0
    assert not state.mappings_by_key(engine.store, "notes", [f"ephemera-{book.id}"])

    # reads: key 1 of notes is the walk, not the book (both indexes have a document 1)
    fake.search_order = [1]
    router = Router(engine, config_for(fake, read_mode="meilisearch", shadow=False))
    assert [h.memory.id for h in router.search("dog").hits] == [walk.id]


def test_journals_imported_before_per_index_records_still_map(
    engine: Engine, tmp_path: Path, fake: FakeMeili
) -> None:
    ids = imported(engine, tmp_path)
    # as an older import left it: meili.source alone, with one content field and no list
    with engine.store.write() as conn:
        conn.execute(delete(META).where(META.c.key == state.META_SOURCES))
    record = state.get_json(engine.store, state.META_SOURCE)
    older = {k: record[k] for k in ("index", "primary_key", "mapping", "created_at_format")}
    state.set_json(engine.store, state.META_SOURCE, older)
    assert state.get_json(engine.store, state.META_SOURCES) is None
    info = source_info(engine.store, config_for(fake))
    assert info["mapping"]["content"] == "text" and info["content_fields"] == ["text"]
    install(engine, config_for(fake, shadow=False))
    first = engine.get(ids["1"])
    engine.update(first.id, Draft.from_memory(first).with_changes(content="a new walk"))
    assert fake.writes()[-1]["body"][0]["text"] == "a new walk"
    # another index configured than the one recorded: the config's mapping, not the record's
    other = source_info(engine.store, config_for(fake, index="elsewhere"))
    assert other["mapping"]["content"] == "content" and other["primary_key"] == "id"


# ---------------------------------------------------------------------------------- compare


def test_compare_reports_overlap_rank_agreement_and_latency(
    engine: Engine, tmp_path: Path, fake: FakeMeili
) -> None:
    ids = imported(engine, tmp_path)
    config = config_for(fake)
    fake.primary_keys["notes"] = "id"
    fake.search_order = [1, 2, "four", "unknown-doc"]
    fake.fail_queries = {"boom"}
    queries = [("q:1", "dog"), ("q:2", "bread"), ("q:3", 'bad "'), ("q:4", "boom")]
    rows, summary = compare(engine, MeiliServer(config), config, queries)
    assert [r["query"] for r in rows] == ["dog", "bread", 'bad "', "boom"]
    assert rows[0]["meili_hits"] == 4 and rows[0]["meili_unmapped"] == 1
    assert 0.0 <= rows[0]["overlap"] <= 1.0
    assert rows[0]["ephemera_ms"] >= 0 and rows[0]["meili_ms"] > 0
    # a lone quote is a query like any other (an open quote runs to the end of the line)
    assert "error" not in rows[2]
    assert rows[2]["meili_hits"] == 4 and rows[2]["ephemera_hits"] >= 0
    # a query MeiliSearch fails is reported in its row; the others still ran
    assert rows[3]["error"] == (
        "MeiliSearch search failed: An internal error has occurred. `query interrupted`. "
        "(internal, HTTP 500)"
    )
    assert summary["queries"] == 4 and summary["failed"] == 1
    assert summary["overlap_mean"] is not None
    assert state.get_json(engine.store, state.META_LAST_COMPARE)["queries"] == 4
    searched = fake.searches()
    assert searched[0]["body"] == {"q": "dog", "limit": 10}
    assert searched[2]["body"] == {"q": 'bad "', "limit": 10}
    assert ids  # imported


def test_overlap_and_rank_agreement() -> None:
    assert overlap_at([1, 2, 3], [3, 2, 1]) == 1.0
    assert overlap_at([1, 2], [3, 4]) == 0.0
    assert overlap_at([], []) == 1.0
    assert overlap_at([1, 2, 3, 4], [1, 2]) == 0.5
    assert rank_agreement([1, 2, 3], [1, 2, 3]) == 1.0
    assert rank_agreement([1, 2, 3], [3, 2, 1]) == 0.0
    assert rank_agreement([1, 2], [2, 5]) is None


# ---------------------------------------------------------------------------------- read modes


def test_read_mode_meilisearch_answers_from_meili_and_falls_back_when_down(
    engine: Engine, tmp_path: Path, fake: FakeMeili
) -> None:
    ids = imported(engine, tmp_path)
    fake.primary_keys["notes"] = "id"
    fake.search_order = [2, 1]
    install(engine, config_for(fake, read_mode="meilisearch"))
    result = engine.search("bread")
    assert result.mode == "meilisearch"
    assert [h.memory.id for h in result.hits] == [ids["2"], ids["1"]]
    engine.search_router.wait()  # type: ignore[union-attr]
    shadow = state.get_json(engine.store, state.META_SHADOW)
    assert shadow["count"] == 1 and shadow["last"]["primary"] == "meilisearch"

    fake.fail = True
    down = engine.search("bread")
    assert down.mode != "meilisearch"
    assert any(
        n.startswith("answered by Ephemera: MeiliSearch search failed") for n in down.notices
    )


def test_read_mode_ephemera_shadows_meili_and_logs(
    engine: Engine, tmp_path: Path, fake: FakeMeili
) -> None:
    ids = imported(engine, tmp_path)
    fake.primary_keys["notes"] = "id"
    fake.search_order = [1]
    install(engine, config_for(fake, read_mode="ephemera"))
    result = engine.search("dog")
    assert result.mode in ("hybrid", "keyword")
    assert result.hits[0].memory.id == ids["1"]
    engine.search_router.wait()  # type: ignore[union-attr]
    log = engine.settings.data_dir / "migration" / "shadow.jsonl"
    entry = json.loads(log.read_text().splitlines()[-1])
    assert entry["query"] == "dog" and entry["primary"] == "ephemera"
    assert entry["overlap"] > 0
    assert len(fake.searches()) == 1


def test_read_mode_with_fallback_uses_meili_only_when_ephemera_cannot_answer(
    engine: Engine, tmp_path: Path, fake: FakeMeili
) -> None:
    ids = imported(engine, tmp_path)
    fake.primary_keys["notes"] = "id"
    fake.search_order = [3]
    config = config_for(fake, read_mode="ephemera-with-fallback", shadow=False)

    def broken(raw: str, limit: int = 20) -> SearchResult:
        raise EphemeraError("database unavailable")

    def empty(raw: str, limit: int = 20) -> SearchResult:
        return SearchResult(raw, (), (), "hybrid", {"total": 1.0})

    healthy = Router(engine, config)
    assert healthy.search("meeting").mode in ("hybrid", "keyword")
    assert fake.searches() == []

    for local, reason in ((broken, "database unavailable"), (empty, "no results in Ephemera")):
        router = Router(engine, config, local=local)
        result = router.search("meeting")
        assert result.mode == "meilisearch"
        assert [h.memory.id for h in result.hits] == [ids["3"]]
        assert result.notices[-1] == f"answered by MeiliSearch ({reason})"
    fake.fail = True
    with pytest.raises(EphemeraError, match="database unavailable"):
        Router(engine, config, local=broken).search("meeting")
    assert state.get_json(engine.store, state.META_SHADOW)["fallbacks"] == 2


# ---------------------------------------------------------------------------------- phases


def test_phases_and_finish(engine: Engine, tmp_path: Path, fake: FakeMeili) -> None:
    assert phase(engine, MeiliConfig()) == -1
    imported(engine, tmp_path)
    assert phase(engine, MeiliConfig()) == 0
    config = config_for(fake, shadow=False)
    assert phase(engine, config) == 1
    assert phase(engine, config_for(fake, read_mode="ephemera")) == 2
    install(engine, config)

    fake.fail = True
    engine.add(Draft("queued at the end"))
    with pytest.raises(EphemeraError, match="1 writes are still queued for MeiliSearch"):
        finish(engine, config)
    fake.fail = False
    fake.primary_keys["notes"] = "id"
    record = finish(engine, config, queries=[("q:1", "dog")])
    assert record["sent_at_finish"] == 1 and record["abandoned_writes"] == 0
    assert record["final_comparison"]["queries"] == 1
    dump = tmp_path / "notes.dump"
    assert record["last_dump"]["path"] == str(dump.resolve())
    assert len(record["last_dump"]["sha256"]) == 64
    assert phase(engine, config) == 3
    shown = status(engine, config)
    assert shown["phase"] == 3 and shown["finished"]["at"] == record["at"]
    assert shown["mapped_documents"] == shown["index_documents"] == 6  # 5 imported, 1 added
    assert status(engine, config_for(fake, index="elsewhere"))["index_documents"] == 0

    before = len(fake.requests)
    engine.add(Draft("after the cut-over"))
    engine.search("dog")
    assert len(fake.requests) == before  # no dual write, no routed search
    assert install(engine, config) is None  # new engines never attach again
    with pytest.raises(EphemeraError, match="already finished"):
        finish(engine, config)


# ---------------------------------------------------------------------------------- commands


def _ephemera(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_ephemera(*args, env=env, timeout=120)


def test_commands_dual_write_compare_status_finish(
    cli_env: dict[str, str], tmp_path: Path, fake: FakeMeili
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        "[migration.meilisearch]\n"
        f'url = "{fake.url}"\nkey = "masterKey"\nindex = "notes"\nread_mode = "ephemera"\n'
    )
    env = {**cli_env, "EPHEMERA_CONFIG": str(config)}
    assert load_meili_config(config).live
    dump = write_dump(tmp_path / "notes.dump")
    done = _ephemera(env, "migrate", "meili", "import", str(dump))
    assert done.returncode == 0, done.stderr
    assert fake.writes() == []  # an import is not dual-written: it came from MeiliSearch

    added = _ephemera(env, "add", "watered the garden", "--tag", "garden")
    assert added.returncode == 0, added.stderr
    assert fake.writes()[-1]["body"][0]["text"] == "watered the garden"

    found = _ephemera(env, "search", "garden")
    assert found.returncode == 0, found.stderr
    assert "watered the garden" in found.stdout
    assert fake.searches()[-1]["body"]["q"] == "garden"  # the shadow comparison ran

    queries = tmp_path / "queries.txt"
    queries.write_text("# one per line\ngarden\ndog\n")
    compared = _ephemera(env, "migrate", "meili", "compare", "--queries", str(queries))
    assert compared.returncode == 0, compared.stderr
    assert "overlap@10" in compared.stdout and "mean overlap@10" in compared.stdout

    shown = _ephemera(env, "migrate", "meili", "status")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("phase 2: dual writing; reads switched to Ephemera")
    assert "dual writes: sent 1, queued 0" in shown.stdout

    finished = _ephemera(env, "migrate", "meili", "finish", "--json")
    assert finished.returncode == 0, finished.stderr
    assert json.loads(finished.stdout)["last_dump"]["path"] == str(dump.resolve())
    after = _ephemera(env, "migrate", "meili", "status", "--json")
    assert json.loads(after.stdout)["phase"] == 3
    writes = len(fake.writes())
    _ephemera(env, "add", "after finishing")
    assert len(fake.writes()) == writes


def test_compare_without_server_configured_fails_in_one_line(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    queries = tmp_path / "q.txt"
    queries.write_text("dog\n")
    result = _ephemera(cli_env, "migrate", "meili", "compare", "--queries", str(queries))
    assert result.returncode == 1
    assert result.stderr.strip().startswith("ephemera: error: no MeiliSearch server configured")
    assert len(result.stderr.strip().splitlines()) == 1
