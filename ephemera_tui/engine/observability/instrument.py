"""Wiring the recorder to an engine: the SQL query timer, cache and pool gauges, and the
``@instrumented`` decorator for engine methods."""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from ..core import Engine

from .recorder import METRICS_FILE, MetricsRecorder

F = TypeVar("F", bound=Callable[..., Any])

# ---------------------------------------------------------------------------- engine wiring


def open_metrics(engine: Engine) -> MetricsRecorder:
    """The recorder for an engine: ``metrics.db`` in its data directory, with the SQL query
    timer, the embedding cache and the pool/memory gauges attached.

    ``EPHEMERA_METRICS=0`` turns recording off.
    """
    enabled = os.environ.get("EPHEMERA_METRICS", "1").lower() not in ("0", "false", "off", "no")
    recorder = MetricsRecorder(engine.settings.data_dir / METRICS_FILE, enabled=enabled)
    if not enabled:
        return recorder
    ref = weakref.ref(engine)

    def cache(field: str) -> Callable[[], float | None]:
        def read() -> float | None:
            eng = ref()
            embedder = eng.loaded_embedder if eng is not None else None
            return None if embedder is None else float(embedder.stats()[field])

        return read

    recorder.track("cache.hits", cache("hits"))
    recorder.track("cache.misses", cache("misses"))

    def process_gauges() -> dict[str, float]:
        eng = ref()
        out: dict[str, float] = {"process.rss_bytes": float(process_memory())}
        if eng is not None:
            out.update({f"pool.{k}": float(v) for k, v in pool_stats(eng).items()})
        return out

    recorder.add_gauge_source(process_gauges)
    _time_sql(engine, recorder)
    return recorder


_QUIET = threading.local()


@contextlib.contextmanager
def unrecorded() -> Iterator[None]:
    """Leave this thread's SQL statements out of ``sql.query`` meanwhile: the upkeep loop's
    own look-ups every tick are not user-facing latency, and recording them would make an
    idle process write ``metrics.db`` every few seconds."""
    before = getattr(_QUIET, "on", False)
    _QUIET.on = True
    try:
        yield
    finally:
        _QUIET.on = before


def _time_sql(engine: Engine, recorder: MetricsRecorder) -> None:
    """Time every SQL statement (``sql.query``) and count database errors (``errors.sql``)."""
    from sqlalchemy import event

    sql_engine = engine.store.engine
    perf = time.perf_counter

    def before(conn: Any, _cursor: Any, _stmt: Any, _params: Any, _ctx: Any, _many: Any) -> None:
        conn.info.setdefault("ephemera_t0", []).append(perf())

    def after(conn: Any, _cursor: Any, _stmt: Any, _params: Any, _ctx: Any, _many: Any) -> None:
        stack = conn.info.get("ephemera_t0")
        if stack:
            elapsed = (perf() - stack.pop()) * 1000
            if not getattr(_QUIET, "on", False):
                recorder.observe("sql.query", elapsed)

    def failed(context: Any) -> None:
        conn = getattr(context, "connection", None)
        if conn is not None:
            stack = conn.info.get("ephemera_t0")
            if stack:
                stack.pop()
        recorder.error("sql")

    event.listen(sql_engine, "before_cursor_execute", before)
    event.listen(sql_engine, "after_cursor_execute", after)
    event.listen(sql_engine, "handle_error", failed)


def instrumented(op: str) -> Callable[[F], F]:
    """Decorate an Engine method: time it (``write.<op>``/``op.<op>``; for ``search`` the stage
    timings of its result) and count its failures (``errors.<op>``; rejected input counts as
    ``invalid.<op>``). A no-op sync (nothing to drain) is not timed."""
    from ..errors import NotFoundError, ValidationError

    kind = "op" if op == "check" else "write"

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            recorder: MetricsRecorder | None = getattr(self, "metrics", None)
            if recorder is None or not recorder.enabled:
                return func(self, *args, **kwargs)
            started = time.perf_counter()
            try:
                result = func(self, *args, **kwargs)
            except (ValidationError, NotFoundError):
                recorder.count(f"invalid.{op}")
                raise
            except Exception:
                recorder.error(op)
                raise
            ms = (time.perf_counter() - started) * 1000
            if op == "search":
                recorder.record_search(result.timings_ms, result.mode)
            elif op == "sync":
                if result.upserted or result.deleted or result.failed:
                    recorder.observe("write.sync", ms)
                    recorder.gauge("sync.last_at", time.time(), shared=True)
            else:
                recorder.observe(f"{kind}.{op}", ms)
            return result

        return wrapper  # type: ignore[return-value]

    return decorate


# ---------------------------------------------------------------------------- live facts


def process_memory() -> int:
    """Resident memory of this process in bytes (the embedded Qdrant shard lives in it)."""
    import psutil

    return int(psutil.Process().memory_info().rss)


def pool_stats(engine: Engine) -> dict[str, int]:
    """The SQL connection pool: its size, connections open and checked out, and overflow (open
    connections beyond the size). SQLAlchemy's own overflow counter starts at minus the size,
    which reads as nonsense on a screen, so it is turned into these plain counts."""
    pool = engine.store.engine.pool
    calls = {
        "size": "size",
        "checked_out": "checkedout",
        "checked_in": "checkedin",
        "overflow": "overflow",
    }
    out: dict[str, int] = {}
    for key, name in calls.items():
        method = getattr(pool, name, None)
        if callable(method):
            with contextlib.suppress(Exception):
                out[key] = int(method())
    if "size" in out and "overflow" in out:
        out["open"] = max(0, out["size"] + out["overflow"])
        out["overflow"] = max(0, out["overflow"])
    return out


def dir_bytes(path: Path) -> int | None:
    if not path.exists():
        return None
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.path.getsize(os.path.join(root, name))
    return total


def pid_alive(pid: int) -> bool:
    import psutil

    return pid == os.getpid() or psutil.pid_exists(pid)
