"""The live MeiliSearch paths (dual write, compare, read modes, finish) against a loopback fake.

No MeiliSearch server can run here: :class:`FakeMeili` is a small ``http.server`` in a thread
that speaks the three endpoints the migration uses, through the official client, and records
every request it received.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import pytest

from ephemera_tui.engine import Draft, Engine, EphemeraError, SearchResult
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
)
from ephemera_tui.migration.mapping import build_mapping
from ephemera_tui.migration.phases import finish, phase, status
from ephemera_tui.migration.readers import read_source
from tests.test_meili_support import write_dump

TASK = {
    "taskUid": 1,
    "indexUid": "notes",
    "status": "enqueued",
    "type": "documentAdditionOrUpdate",
    "enqueuedAt": "2024-01-01T00:00:00.000000Z",
}


class FakeMeili:
    """Loopback stand-in for MeiliSearch: documents, delete, search; records requests."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.documents: dict[str, dict[str, dict[str, Any]]] = {}
        self.primary_keys: dict[str, str] = {}
        self.fail = False
        self.search_order: list[Any] | None = None  # fixed hit keys, else naive word match
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _body(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                return json.loads(raw) if raw else None

            def _send(self, code: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                url = urlparse(self.path)
                body = self._body() if method in ("POST", "PUT") else None
                fake.requests.append(
                    {
                        "method": method,
                        "path": url.path,
                        "query": parse_qs(url.query),
                        "body": body,
                        "auth": self.headers.get("Authorization"),
                    }
                )
                if fake.fail:
                    self._send(
                        503,
                        {
                            "message": "unavailable",
                            "code": "internal",
                            "type": "internal",
                            "link": "https://docs.meilisearch.com/errors#internal",
                        },
                    )
                    return
                match = re.fullmatch(r"/indexes/([^/]+)/(documents|search)(?:/([^/]+))?", url.path)
                if not match:
                    self._send(
                        404,
                        {
                            "message": "not found",
                            "code": "not_found",
                            "type": "invalid_request",
                            "link": "",
                        },
                    )
                    return
                index, what, doc_id = match.groups()
                docs = fake.documents.setdefault(index, {})
                if what == "documents" and method == "POST":
                    pk_param = (parse_qs(url.query).get("primaryKey") or [""])[0]
                    pk = fake.primary_keys.setdefault(index, pk_param or "id")
                    assert isinstance(body, list)
                    for doc in body:
                        docs[str(doc[pk])] = doc
                    self._send(202, {**TASK, "indexUid": index})
                elif what == "documents" and method == "DELETE" and doc_id:
                    docs.pop(unquote(doc_id), None)
                    self._send(202, {**TASK, "indexUid": index, "type": "documentDeletion"})
                elif what == "search" and method == "POST":
                    query = (body or {}).get("q", "")
                    limit = (body or {}).get("limit", 20)
                    if fake.search_order is not None:
                        pk = fake.primary_keys.get(index, "id")
                        hits = [{pk: k} for k in fake.search_order][:limit]
                    else:
                        words = set(query.lower().split())
                        hits = [
                            d
                            for d in docs.values()
                            if words & set(json.dumps(d).lower().replace('"', " ").split())
                        ][:limit]
                    self._send(
                        200,
                        {
                            "hits": hits,
                            "query": query,
                            "processingTimeMs": 1,
                            "limit": limit,
                            "offset": 0,
                            "estimatedTotalHits": len(hits),
                        },
                    )
                else:
                    self._send(405, {"message": "no", "code": "bad", "type": "x", "link": ""})

            def do_POST(self) -> None:  # noqa: N802
                self._handle("POST")

            def do_DELETE(self) -> None:  # noqa: N802
                self._handle("DELETE")

            def do_GET(self) -> None:  # noqa: N802
                self._handle("GET")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def writes(self) -> list[dict[str, Any]]:
        return [
            r
            for r in self.requests
            if r["method"] in ("POST", "DELETE") and not r["path"].endswith("/search")
        ]

    def searches(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"].endswith("/search")]

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


def config_for(fake: FakeMeili, **changes: Any) -> MeiliConfig:
    values: dict[str, Any] = {
        "url": fake.url,
        "key": "masterKey",
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


# ---------------------------------------------------------------------------------- compare


def test_compare_reports_overlap_rank_agreement_and_latency(
    engine: Engine, tmp_path: Path, fake: FakeMeili
) -> None:
    ids = imported(engine, tmp_path)
    config = config_for(fake)
    fake.primary_keys["notes"] = "id"
    fake.search_order = [1, 2, "four", "unknown-doc"]
    rows, summary = compare(
        engine, MeiliServer(config), config, [("q:1", "dog"), ("q:2", "bread"), ("q:3", 'bad "')]
    )
    assert [r["query"] for r in rows] == ["dog", "bread", 'bad "']
    assert rows[0]["meili_hits"] == 4 and rows[0]["meili_unmapped"] == 1
    assert 0.0 <= rows[0]["overlap"] <= 1.0
    assert rows[0]["ephemera_ms"] >= 0 and rows[0]["meili_ms"] > 0
    assert rows[2]["error"].startswith("q:3: unbalanced quote")
    assert summary["queries"] == 3 and summary["failed"] == 1
    assert summary["overlap_mean"] is not None
    assert state.get_json(engine.store, state.META_LAST_COMPARE)["queries"] == 3
    searched = fake.searches()
    assert searched[0]["body"] == {"q": "dog", "limit": 10}
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

    before = len(fake.requests)
    engine.add(Draft("after the cut-over"))
    engine.search("dog")
    assert len(fake.requests) == before  # no dual write, no routed search
    assert install(engine, config) is None  # new engines never attach again
    with pytest.raises(EphemeraError, match="already finished"):
        finish(engine, config)


# ---------------------------------------------------------------------------------- commands


def _ephemera(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ephemera_tui.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


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
