"""A stand-in for a Qdrant server: the REST calls Ephemera's server backend makes, answered by
qdrant-client's local mode in one process, so several processes can share one vector store
here (no Qdrant server can run on this machine).

It is not Qdrant: collection creation records ``shard_number``, ``replication_factor`` and
``write_consistency_factor`` (local mode has no shards) and splits points into that many
shards by ``id % shard_number``; a shard snapshot is this stand-in's own JSON-lines file
with Qdrant's description (name, size, sha256 checksum). It also counts the upserts of every
point and records each write's ``ordering``, for tests to check (``GET /_standin/stats``).

Run: ``python -m tests.scaling.qdrant_standin PORT [--upsert-delay SECONDS] [--dir DIR]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qdrant_client import QdrantClient, models
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route


def _ok(result: Any) -> JSONResponse:
    if hasattr(result, "model_dump"):
        result = result.model_dump(mode="json")
    elif isinstance(result, list):
        result = [r.model_dump(mode="json") if hasattr(r, "model_dump") else r for r in result]
    return JSONResponse({"result": result, "status": "ok", "time": 0.0})


def _multipart_file(content_type: str, body: bytes) -> bytes:
    """The first file part of a multipart/form-data body (stdlib only)."""
    from email.parser import BytesParser
    from email.policy import HTTP

    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    for part in message.iter_parts():
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            return payload
    raise ValueError("no file in the upload")


def _fail(status: int, message: str) -> JSONResponse:
    return JSONResponse({"status": {"error": message}, "time": 0.0}, status_code=status)


class StandIn:
    """The state behind the routes: one local-mode client, shard layouts, counters."""

    def __init__(self, folder: Path, upsert_delay: float = 0.0) -> None:
        self.client = QdrantClient(location=":memory:")
        self.folder = folder
        self.upsert_delay = upsert_delay
        self.lock = threading.Lock()
        self.layout: dict[str, dict[str, Any]] = {}
        self.upserts: Counter[int] = Counter()
        self.orderings: list[str | None] = []
        self.snapshots: dict[str, Path] = {}
        self.wrong_checksum = False  # report a checksum that does not match (tests)

    def shards(self, name: str) -> int:
        return int(self.layout.get(name, {}).get("shard_number") or 1)

    def points_of_shard(self, name: str, shard: int) -> list[Any]:
        out: list[Any] = []
        offset = None
        while True:
            records, offset = self.client.scroll(
                name, offset=offset, limit=1000, with_payload=True, with_vectors=True
            )
            out += [r for r in records if int(r.id) % self.shards(name) == shard]
            if offset is None:
                return out


def build(state: StandIn) -> Starlette:
    """The stand-in's application."""

    def guarded(handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def run(request: Request) -> Response:
            body = await request.body() if request.method in ("POST", "PUT") else b""
            try:
                with state.lock:
                    response: Response = handler_sync(handler, request, body)
                    return response
            except (ValueError, KeyError) as exc:
                return _fail(400, str(exc))

        return run

    def handler_sync(handler: Callable[..., Any], request: Request, body: bytes) -> Any:
        return handler(request, body)

    def name_of(request: Request) -> str:
        return str(request.path_params["name"])

    def root(_request: Request, _body: bytes) -> Response:
        return JSONResponse({"title": "qdrant stand-in", "version": "1.20.0"})

    def exists(request: Request, _body: bytes) -> Response:
        return _ok({"exists": state.client.collection_exists(name_of(request))})

    def collection(request: Request, body: bytes) -> Response:
        name = name_of(request)
        if request.method == "GET":
            if not state.client.collection_exists(name):
                return _fail(404, f"Collection `{name}` doesn't exist!")
            info = state.client.get_collection(name).model_dump(mode="json")
            info["config"]["params"].update(state.layout.get(name, {}))
            return _ok(info)
        if request.method == "DELETE":
            state.layout.pop(name, None)
            return _ok(state.client.delete_collection(name))
        spec = models.CreateCollection.model_validate(json.loads(body))
        if state.client.collection_exists(name):
            return _fail(409, f"Wrong input: Collection `{name}` already exists!")
        state.client.create_collection(
            name, vectors_config=spec.vectors, hnsw_config=spec.hnsw_config
        )
        state.layout[name] = {
            "shard_number": spec.shard_number or 1,
            "replication_factor": spec.replication_factor or 1,
            "write_consistency_factor": spec.write_consistency_factor or 1,
        }
        return _ok(True)

    def index(request: Request, body: bytes) -> Response:
        spec = models.CreateFieldIndex.model_validate(json.loads(body))
        state.client.create_payload_index(name_of(request), spec.field_name, spec.field_schema)
        return _ok({"operation_id": 0, "status": "completed"})

    def upsert(request: Request, body: bytes) -> Response:
        points = models.PointsList.model_validate(json.loads(body)).points
        state.orderings.append(request.query_params.get("ordering"))
        if state.upsert_delay:
            time.sleep(state.upsert_delay)
        state.client.upsert(name_of(request), points=points)
        state.upserts.update(int(p.id) for p in points)
        return _ok({"operation_id": 0, "status": "completed"})

    def delete(request: Request, body: bytes) -> Response:
        ids = models.PointIdsList.model_validate(json.loads(body))
        state.orderings.append(request.query_params.get("ordering"))
        state.client.delete(name_of(request), points_selector=ids)
        return _ok({"operation_id": 0, "status": "completed"})

    def query(request: Request, body: bytes) -> Response:
        spec = models.QueryRequest.model_validate(json.loads(body))
        found = state.client.query_points(
            name_of(request),
            query=spec.query,
            query_filter=spec.filter,
            limit=spec.limit or 10,
            with_payload=spec.with_payload or False,
            search_params=spec.params,
        )
        return _ok(found)

    def retrieve(request: Request, body: bytes) -> Response:
        spec = models.PointRequest.model_validate(json.loads(body))
        return _ok(
            state.client.retrieve(
                name_of(request),
                ids=spec.ids,
                with_payload=spec.with_payload if spec.with_payload is not None else True,
                with_vectors=spec.with_vector or False,
            )
        )

    def scroll(request: Request, body: bytes) -> Response:
        spec = models.ScrollRequest.model_validate(json.loads(body))
        records, offset = state.client.scroll(
            name_of(request),
            offset=spec.offset,
            limit=spec.limit or 10,
            with_payload=spec.with_payload if spec.with_payload is not None else True,
            with_vectors=spec.with_vector or False,
        )
        return _ok(
            {
                "points": [r.model_dump(mode="json") for r in records],
                "next_page_offset": offset,
            }
        )

    def count(request: Request, body: bytes) -> Response:
        spec = models.CountRequest.model_validate(json.loads(body or b"{}"))
        return _ok(state.client.count(name_of(request), count_filter=spec.filter, exact=True))

    def aliases(_request: Request, _body: bytes) -> Response:
        return _ok(state.client.get_aliases())

    def change_aliases(_request: Request, body: bytes) -> Response:
        spec = models.ChangeAliasesOperation.model_validate(json.loads(body))
        return _ok(state.client.update_collection_aliases(spec.actions))

    def cluster(request: Request, _body: bytes) -> Response:
        name = name_of(request)
        shards = [
            {
                "shard_id": k,
                "points_count": len(state.points_of_shard(name, k)),
                "state": "Active",
            }
            for k in range(state.shards(name))
        ]
        return _ok(
            {
                "peer_id": 1,
                "shard_count": len(shards),
                "local_shards": shards,
                "remote_shards": [],
                "shard_transfers": [],
            }
        )

    def shard_snapshots(request: Request, _body: bytes) -> Response:
        name, shard = name_of(request), int(request.path_params["shard"])
        if request.method == "GET":
            return _ok([])
        target = state.folder / f"{name}-shard-{shard}-{uuid.uuid4().hex[:8]}.snapshot"
        with target.open("w", encoding="utf-8") as out:
            for r in state.points_of_shard(name, shard):
                out.write(json.dumps({"id": r.id, "vector": r.vector, "payload": r.payload}) + "\n")
        state.snapshots[target.name] = target
        digest = hashlib.sha256(target.read_bytes()).hexdigest()
        if state.wrong_checksum:
            digest = "0" * 64
        return _ok(
            {
                "name": target.name,
                "creation_time": "2026-01-01T00:00:00",
                "size": target.stat().st_size,
                "checksum": digest,
            }
        )

    def shard_snapshot(request: Request, _body: bytes) -> Response:
        file = state.snapshots.get(str(request.path_params["snap"]))
        if file is None:
            return _fail(404, "snapshot not found")
        if request.method == "DELETE":
            file.unlink(missing_ok=True)
            state.snapshots.pop(file.name, None)
            return _ok(True)
        return FileResponse(file)

    async def upload(request: Request) -> Response:
        data = _multipart_file(request.headers["content-type"], await request.body())
        with state.lock:
            name, shard = name_of(request), int(request.path_params["shard"])
            expected = request.query_params.get("checksum")
            if expected and hashlib.sha256(data).hexdigest() != expected:
                return _fail(400, "Snapshot checksum mismatch")
            old = [r.id for r in state.points_of_shard(name, shard)]
            if old:
                state.client.delete(name, points_selector=models.PointIdsList(points=old))
            points = []
            for line in data.decode().splitlines():
                item = json.loads(line)
                if int(item["id"]) % state.shards(name) != shard:
                    return _fail(400, f"point {item['id']} does not belong to shard {shard}")
                points.append(models.PointStruct(**item))
            if points:
                state.client.upsert(name, points=points)
            return _ok(True)

    def stats(_request: Request, _body: bytes) -> Response:
        return JSONResponse(
            {
                "upserts": {str(k): v for k, v in state.upserts.items()},
                "orderings": state.orderings,
                "layout": state.layout,
            }
        )

    def configure(_request: Request, body: bytes) -> Response:
        state.wrong_checksum = bool(json.loads(body).get("wrong_checksum"))
        return _ok(True)

    c = "/collections/{name}"
    return Starlette(
        routes=[
            Route("/", guarded(root), methods=["GET"]),
            Route(f"{c}/exists", guarded(exists), methods=["GET"]),
            Route("/aliases", guarded(aliases), methods=["GET"]),
            Route("/collections/aliases", guarded(change_aliases), methods=["POST"]),
            Route(c, guarded(collection), methods=["GET", "PUT", "DELETE"]),
            Route(f"{c}/index", guarded(index), methods=["PUT"]),
            Route(f"{c}/points", guarded(upsert), methods=["PUT"]),
            Route(f"{c}/points", guarded(retrieve), methods=["POST"]),
            Route(f"{c}/points/delete", guarded(delete), methods=["POST"]),
            Route(f"{c}/points/query", guarded(query), methods=["POST"]),
            Route(f"{c}/points/scroll", guarded(scroll), methods=["POST"]),
            Route(f"{c}/points/count", guarded(count), methods=["POST"]),
            Route(f"{c}/cluster", guarded(cluster), methods=["GET"]),
            Route(
                f"{c}/shards/{{shard}}/snapshots",
                guarded(shard_snapshots),
                methods=["GET", "POST"],
            ),
            Route(f"{c}/shards/{{shard}}/snapshots/upload", upload, methods=["POST"]),
            Route(
                f"{c}/shards/{{shard}}/snapshots/{{snap}}",
                guarded(shard_snapshot),
                methods=["GET", "DELETE"],
            ),
            Route("/_standin/stats", guarded(stats), methods=["GET"]),
            Route("/_standin/settings", guarded(configure), methods=["POST"]),
        ]
    )


class Running:
    """A stand-in in a process of its own, on a free port (``url``); :meth:`stop` ends it."""

    def __init__(self, port: int, upsert_delay: float = 0.0) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="qdrant-standin-"))
        self.url = f"http://127.0.0.1:{port}"
        root = Path(__file__).resolve().parents[2]
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.scaling.qdrant_standin",
                str(port),
                "--upsert-delay",
                str(upsert_delay),
                "--dir",
                str(self.folder),
            ],
            cwd=root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        import httpx

        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(self.url + "/", timeout=1).raise_for_status()
                return
            except httpx.HTTPError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    err = self.process.stderr.read().decode() if self.process.stderr else ""
                    raise RuntimeError(f"the Qdrant stand-in did not start: {err[-500:]}") from None
                time.sleep(0.1)

    def stats(self) -> dict[str, Any]:
        import httpx

        data: dict[str, Any] = httpx.get(self.url + "/_standin/stats", timeout=30).json()
        return data

    def configure(self, **options: Any) -> None:
        import httpx

        httpx.post(self.url + "/_standin/settings", json=options, timeout=30).raise_for_status()

    def stop(self) -> None:
        import shutil

        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        shutil.rmtree(self.folder, ignore_errors=True)


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--upsert-delay", type=float, default=0.0)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="qdrant-standin-"))
    uvicorn.run(
        build(StandIn(folder, args.upsert_delay)),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
