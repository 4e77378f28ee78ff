"""Building the embedded store's HNSW index without blocking search or capture.

An unindexed (plain) shard answers by exact scan: ~10 ms at 100k points, growing linearly.
qdrant-edge's ``optimize()`` builds HNSW (m=16, ef_construct=100) but holds the GIL for its
whole run (minutes at 100k on 2 cores), so it never runs on a thread of the app:

- :class:`BackgroundIndex` (driven by the upkeep worker of the app or of ``ephemera worker``)
  has a builder process index a copy of the store while this one keeps serving, then swaps;
- :func:`build_index` (``ephemera optimize``) builds in place, in a process that holds the
  store and does nothing else.

Points added after a build land in an appendable plain segment and are searchable at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import numpy as np

from ..diskspace import DiskSpaceError, ensure_free, tree_bytes
from ..errors import EphemeraError, VectorStoreError
from ..store import META, MetaKey
from .base import HEAD_ROWS, ROWS, VectorPoint
from .edge import EdgeVectors, drop_edge_shard

if TYPE_CHECKING:
    from ..core import Engine


@dataclass(frozen=True, slots=True)
class IndexBuild:
    before: dict[str, int]
    after: dict[str, int]
    seconds: float


def build_index(engine: Engine) -> IndexBuild:
    """Drain the outbox, then build the HNSW index of the embedded store in this process."""
    vectors = engine.vectors()
    if vectors is None:
        status = engine.vector_status
        if "another process" in status:
            threshold = engine.settings.index_threshold
            status += (
                f"; that process builds the index in the background once {threshold} vectors "
                "are unindexed (index_threshold)"
            )
        raise VectorStoreError(status)
    engine.vector_manager.ensure_space()  # an in-place build writes new segments
    optimize = getattr(vectors, "optimize", None)
    index_info = getattr(vectors, "index_info", None)
    if optimize is None or index_info is None:
        raise EphemeraError("a Qdrant server builds its own index; nothing to do here")
    engine.sync()
    before = index_info()
    started = time.perf_counter()
    optimize()
    vectors.flush()
    return IndexBuild(before, index_info(), round(time.perf_counter() - started, 1))


# ---------------------------------------------------------------------------- in the background

BUILD_KEY = MetaKey.INDEX_BUILD
LAST_BUILD_KEY = MetaKey.INDEX_BUILD_LAST
RETRY_AFTER_FAILURE = 3600.0
HAND_OVER_MAX_WAIT = 600.0
EXPORT_PAGE = 1000
_SUFFIX = re.compile(r"__hnsw\d+$")


def unindexed(engine: Engine) -> int:
    """Vectors of the open embedded store not yet in an HNSW index (0 for a server)."""
    vectors = engine.vector_manager.held  # only look at a store this engine holds
    index_info = getattr(vectors, "index_info", None)
    if index_info is None:
        return 0
    info = index_info()
    return int(info["points"]) - int(info["indexed"])


class BackgroundIndex:
    """Builds the HNSW index without blocking search or capture, for the process that holds the
    embedded store (the app, or ``ephemera worker``):

    1. start: record every id written from now on, export all points page by page (each page
       holds the store for a few ms), and start ``python -m ephemera_tui.engine.vectors.index``
       at low priority; it loads them into a new shard and builds its index (minutes, its own GIL);
    2. poll: meanwhile this process keeps searching and writing the old shard;
    3. swap: open the new shard, replay the ids written meanwhile from the old one, switch
       ``vector_collection`` (compare-and-set in SQL) and the engine's open store at once, and
       drop the old shard. Anything odd on the way (the store was closed, or switched by a
       re-embed, the builder failed) drops the copy; the old shard keeps serving.
    """

    def __init__(
        self, engine: Engine, threshold: int, idle: Callable[[], bool] | None = None
    ) -> None:
        self.engine = engine
        self.threshold = threshold
        self.idle = idle
        self._ready_at: float | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._source: EdgeVectors | None = None
        self._source_name = ""
        self._target_name = ""
        self._started = 0.0

    @property
    def active(self) -> bool:
        return self._process is not None

    def due(self) -> bool:
        """Whether a build would start now (reads only)."""
        return self._process is None and self._due()

    def step(self) -> str | None:
        """Start, poll or finish a build; a line saying what happened, or None (nothing did)."""
        if self._process is None:
            self._clean_leftover()
            if not self._due():
                return None
            return self._start()
        if self._process.poll() is None or not self._may_hand_over():
            return None
        return self._finish()

    def cancel(self, reason: str) -> None:
        """Stop a build in progress (at shutdown); its files are dropped. Not a failure: the
        next process holding the store starts again at once."""
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
                self._process.wait()
            with contextlib.suppress(EphemeraError):
                self._fail(reason, retry_later=False)

    # ------------------------------------------------------------------ steps

    def _due(self) -> bool:
        engine = self.engine
        if self.threshold <= 0 or engine.settings.qdrant_url:
            return False
        if engine.store.get_meta(MetaKey.REEMBED_TARGET):
            return False  # a re-embed is building its own collection
        raw = engine.store.get_meta(LAST_BUILD_KEY)
        last = json.loads(raw) if raw else {}
        if last.get("error") and engine.clock() - last.get("at", 0) < RETRY_AFTER_FAILURE:
            return False
        # qdrant leaves small segments unindexed (exact search is as fast there): count only
        # what became unindexed since the last build, or every small store would rebuild
        left_before = int(last.get("points", 0)) - int(last.get("indexed", 0))
        return unindexed(engine) - max(0, left_before) >= self.threshold

    def _start(self) -> str | None:
        engine = self.engine
        source = engine.vector_manager.held
        if not isinstance(source, EdgeVectors):
            return None
        self._source = source
        self._source_name = engine.vector_collection()
        stamp = int(engine.clock() * 1000)
        self._target_name = f"{_SUFFIX.sub('', self._source_name)}__hnsw{stamp}"
        target = engine.vector_manager.shard_path(self._target_name)
        work = target.parent / f"{target.name}.build"
        try:  # the export and the copy take about twice the shard: refuse before either
            ensure_free(target.parent, "index build", 2 * tree_bytes(source.path))
        except DiskSpaceError as exc:
            self._source = None
            self._fail(str(exc))
        work.mkdir(parents=True, exist_ok=True)
        engine.store.set_meta(BUILD_KEY, self._target_name)
        source.start_journal()
        args = [sys.executable, "-m", "ephemera_tui.engine.vectors.index", str(work), str(target)]
        # The copy keeps the store's format, except that stored rows move to head+rows (the
        # rows are all there; a store of one vector needs `ephemera reembed` for its rows).
        kept = HEAD_ROWS if source.format == ROWS else source.format
        args += [str(source.dim), kept]
        try:
            count = _export(source, work)
            self._started = time.perf_counter()
            with (work / "builder.log").open("wb") as log:
                self._process = subprocess.Popen(  # noqa: S603 - our module, our arguments
                    args,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                    start_new_session=True,  # a ctrl+c in the app's terminal is not its own
                )
        except (EphemeraError, OSError) as exc:  # the store closed mid-export, disk full...
            self._fail(f"cannot start: {exc}")
        return f"building the HNSW index of {count} vectors in the background"

    def _may_hand_over(self) -> bool:
        """Opening the new shard holds the GIL (about a second at 100k points): in the app,
        wait until the user pauses (``idle``), for at most HAND_OVER_MAX_WAIT seconds."""
        if self.idle is None or self._process is None or self._process.returncode != 0:
            return True
        if self._ready_at is None:
            self._ready_at = time.monotonic()
        return self.idle() or time.monotonic() - self._ready_at > HAND_OVER_MAX_WAIT

    def _finish(self) -> str:
        engine = self.engine
        self._ready_at = None
        process, self._process = self._process, None
        source = self._source
        assert process is not None and source is not None
        target = engine.vector_manager.shard_path(self._target_name)
        work = target.parent / f"{target.name}.build"
        result_file = work / "result.json"
        if process.returncode != 0 or not result_file.exists():
            log = (work / "builder.log").read_text(errors="replace").strip().splitlines()
            self._fail(
                f"index builder exited with {process.returncode}: "
                + (log[-1] if log else "no message")
            )
        built = json.loads(result_file.read_text())
        mark = time.perf_counter()
        try:
            fresh = EdgeVectors(target, source.dim, hnsw_ef=engine.settings.hnsw_ef)
        except EphemeraError as exc:
            self._fail(f"cannot open the rebuilt store: {exc}")
        opened = time.perf_counter()
        try:
            replayed = engine.vector_manager.adopt(
                fresh, self._target_name, replaces=source, expected=self._source_name
            )
        except EphemeraError as exc:
            fresh.close()
            self._fail(str(exc))
        if replayed is None:
            fresh.close()
            self._fail("the vector store was closed or switched during the build")
        handed_over = time.perf_counter()
        drop_edge_shard(engine.vector_manager.shard_path(self._source_name))
        shutil.rmtree(work, ignore_errors=True)
        info = fresh.index_info()
        last = {
            "at": int(engine.clock()),
            "collection": self._target_name,
            "points": info["points"],
            "indexed": info["indexed"],
            "replayed": replayed,
            "seconds": round(time.perf_counter() - self._started, 1),
            "build_seconds": built.get("seconds"),
            "open_ms": round((opened - mark) * 1000),
            "replay_ms": round((handed_over - opened) * 1000),
        }
        with engine.store.write() as conn:
            conn.execute(META.delete().where(META.c.key.in_([BUILD_KEY, LAST_BUILD_KEY])))
            conn.execute(META.insert().values(key=LAST_BUILD_KEY, value=json.dumps(last)))
        self._source = None
        return (
            f"HNSW index built: {info['indexed']} of {info['points']} vectors indexed "
            f"in {last['seconds']}s, {replayed} writes replayed"
        )

    def _fail(self, error: str, retry_later: bool = True) -> NoReturn:
        engine = self.engine
        if self._source is not None:
            self._source.take_journal()
        self._process = None
        self._source = None
        record = {"at": int(engine.clock()), "error" if retry_later else "cancelled": error}
        engine.store.set_meta(LAST_BUILD_KEY, json.dumps(record))
        self._clean_leftover()
        raise EphemeraError(f"background index build failed: {error}")

    def _clean_leftover(self) -> None:
        """Drop the copy of a build this process is not running (it died, or failed)."""
        name = self.engine.store.get_meta(BUILD_KEY)
        if not name or name == self.engine.vector_collection():
            return
        if drop_edge_shard(self.engine.vector_manager.shard_path(name)):
            self.engine.store.set_meta(BUILD_KEY, "")


def _export(source: EdgeVectors, work: Path) -> int:
    """Stream every point of ``source`` into ``work`` (raw ids.u64, each point's row count
    in rows.u32 and its rows in vectors.f32, and payloads.jsonl), one page at a time so
    that searches and writes interleave and memory stays flat at any size."""
    count = 0
    after = -1
    with (
        (work / "ids.u64").open("wb") as ids,
        (work / "rows.u32").open("wb") as counts,
        (work / "vectors.f32").open("wb") as vectors,
        (work / "payloads.jsonl").open("w", encoding="utf-8") as payloads,
    ):
        while True:
            page = source.export(after, EXPORT_PAGE)
            if not page:
                break
            ids.write(np.asarray([pid for pid, _, _ in page], dtype=np.uint64).tobytes())
            counts.write(np.asarray([len(rows) for _, rows, _ in page], dtype=np.uint32).tobytes())
            vectors.write(np.vstack([rows for _, rows, _ in page]).astype(np.float32).tobytes())
            payloads.writelines(json.dumps(payload) + "\n" for _, _, payload in page)
            after = page[-1][0]
            count += len(page)
            time.sleep(0)  # let a waiting search have the store
    return count


def _build_from_export(work: Path, target: Path, dim: int, format: str = HEAD_ROWS) -> None:
    """The builder process: a new shard at ``target`` from ``work``'s export, indexed."""
    with contextlib.suppress(OSError):
        os.nice(10)
    started = time.perf_counter()
    ids = np.fromfile(work / "ids.u64", dtype=np.uint64)
    counts = np.fromfile(work / "rows.u32", dtype=np.uint32).astype(np.int64)
    starts = np.concatenate([np.zeros(1, dtype=np.int64), np.cumsum(counts)])
    vectors = np.memmap(work / "vectors.f32", dtype=np.float32, mode="r").reshape(-1, dim)
    store = EdgeVectors(target, dim, format=format)
    try:
        with (work / "payloads.jsonl").open(encoding="utf-8") as payloads:
            batch: list[VectorPoint] = []
            for n, line in enumerate(payloads):
                point_rows = np.asarray(vectors[starts[n] : starts[n + 1]])
                batch.append(VectorPoint(int(ids[n]), point_rows, json.loads(line)))
                if len(batch) == EXPORT_PAGE:
                    store.upsert(batch)
                    batch = []
            store.upsert(batch)
        store.optimize()
        info = store.index_info()
    finally:
        store.close()
    result = {**info, "seconds": round(time.perf_counter() - started, 1)}
    (work / "result.json").write_text(json.dumps(result))


if __name__ == "__main__":
    _build_from_export(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), *sys.argv[4:5])
