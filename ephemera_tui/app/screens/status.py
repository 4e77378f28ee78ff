"""Status: how the journal is doing, live. Latency per search stage and per write with a
sparkline of the newest observations, the SQL pool, the embedding cache, memory, the outbox,
vector index recall, errors, and when the last sync, check and backup ran.

Figures come from every ephemera process (``metrics.db``), refreshed every two seconds.
Every figure is labelled in words, so the screen reads the same without colour.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Footer

from ...presentation.health import index_note
from ...presentation.numbers import milliseconds, size
from ...presentation.times import duration, relative_time
from ..widgets.status import StatusLine
from ..workers import engine_call
from .base import JournalScreen
from .patterns import charts, fit

if TYPE_CHECKING:
    from ...engine import Engine
    from ...engine.sync.worker import Health

REFRESH_SECONDS = 2.0
COMPACT_BELOW = 34
"""Screens shorter than this show the search stages on one line, so all fits at 80x24."""
STAGES = ("parse", "keyword", "embed", "vector", "enrich")
ROWS = (
    ("search.total", "search total"),
    ("search.parse", "· parse"),
    ("search.keyword", "· keyword (SQL)"),
    ("search.embed", "· embed query"),
    ("search.vector", "· vector search"),
    ("search.enrich", "· enrich (SQL)"),
    ("write.add", "add"),
    ("write.update", "update"),
    ("write.delete", "delete"),
    ("write.import", "import"),
    ("write.sync", "vector sync"),
    ("op.check", "cross-check"),
    ("sql.query", "SQL statement"),
)
ALWAYS = {
    "search.total",
    "search.parse",
    "search.keyword",
    "search.embed",
    "search.vector",
    "search.enrich",
}


@dataclass(frozen=True, slots=True)
class StatusData:
    """What the status screen shows: :func:`ephemera_tui.engine.metrics.collect` plus the
    upkeep stamps (last check, backup, worker run)."""

    metrics: dict[str, Any]
    stamps: dict[str, float | None] = field(default_factory=dict)
    worker: str | None = None
    index: str | None = None  # the background HNSW build: running, or how the last one went
    journal: dict[str, str] = field(default_factory=dict)  # where the data lives, what reads it


def journal_facts(engine: Engine) -> dict[str, str]:
    """Data dir, the SQL and vector backends, and the embedding model, in words."""
    settings = engine.settings
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        inside = Path(path).parent == Path(settings.data_dir)
        database = f"SQLite {Path(path).name if inside else path}"
    else:
        database = re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)
    vectors = f"Qdrant {settings.qdrant_url}" if settings.qdrant_url else "embedded Qdrant"
    status = engine.vector_status
    vectors += "" if status == "ok" else f" (not in use: {status})"
    return {
        "data dir": str(settings.data_dir),
        "stores": f"{database} · {vectors}",
        "model": str(settings.embedding_model),
    }


def load_status(engine: Engine) -> StatusData:
    """Read every figure (runs in a worker thread)."""
    from ...engine.observability.report import collect

    report = collect(engine, series=60)
    stamps: dict[str, float | None] = {"sync": report.last_sync_at}
    worker: str | None = None
    index: str | None = None
    health: Health | None = None
    with contextlib.suppress(Exception):
        from ...engine.sync.worker import health as worker_health

        health = worker_health(engine)
    if health is not None:
        check = health.last_check_any
        stamps["check"] = check.at if check else None
        stamps["backup"] = health.last_backup.at if health.last_backup else None
        run = health.worker.last_run if health.worker else None
        if run:
            stamps["worker"] = run.at
            worker = run.summary
        index = index_note(health)
    else:
        raw = engine.store.get_meta("last_check")
        stamps["check"] = float(raw) if raw else None
    return StatusData(report.to_dict(), stamps, worker, index, journal_facts(engine))


class LatencyPanel(Widget):
    """p50/p95/p99 per stage and per write, with a sparkline of the newest observations."""

    DEFAULT_CSS = """
    LatencyPanel { height: auto; border: round $border-blurred; padding: 0 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self.metrics: dict[str, Any] | None = None
        self.compact = False
        self.border_title = "Latency, ms (all processes, newest 5000)"

    def show(self, metrics: dict[str, Any]) -> None:
        self.metrics = metrics
        self.refresh(layout=True)

    def _rows(self) -> list[tuple[str, str]]:
        latency = (self.metrics or {}).get("latency_ms", {})
        rows = [(key, label) for key, label in ROWS if key in ALWAYS or key in latency]
        if self.compact:
            rows = [(k, lbl) for k, lbl in rows if k.removeprefix("search.") not in STAGES]
            rows.insert(1, ("search.stages", "· stages p50"))
        return rows

    def get_content_height(self, container: Any, viewport: Any, width: int) -> int:
        return len(self._rows()) + 1

    def _stages_line(self, label: str, label_w: int) -> Text:
        latency = (self.metrics or {}).get("latency_ms", {})
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(f"{label:<{label_w}}")
        parts = []
        for stage in STAGES:
            s = latency.get(f"search.{stage}")
            parts.append(f"{stage} {milliseconds(s['p50']) if s else '-'}")
        room = max(0, self.content_region.width - label_w)
        joined = "  ".join(parts)
        line.append(joined if len(joined) <= room else " ".join(parts))
        return line

    def render(self) -> Text:
        width = max(20, self.content_region.width)
        latency = (self.metrics or {}).get("latency_ms", {})
        series = (self.metrics or {}).get("series_ms", {})
        label_w = 16
        spark_w = max(0, width - label_w - 4 * 8 - 2)
        head = Text(f"{'':<{label_w}}{'p50':>8}{'p95':>8}{'p99':>8}{'count':>8}", style="bold")
        if spark_w >= 4:
            head.append(f"  {'recent':<{spark_w}}"[: spark_w + 2], style="bold")
        lines = [head]
        for key, label in self._rows():
            if key == "search.stages":
                lines.append(self._stages_line(label, label_w))
                continue
            s = latency.get(key)
            line = Text(no_wrap=True, overflow="ellipsis")
            line.append(f"{label:<{label_w}}", style="bold" if key == "search.total" else "")
            if s is None:
                line.append(f"{'-':>8}{'-':>8}{'-':>8}{0:>8}", style="dim")
            else:
                p50, p95, p99 = (milliseconds(s[q]) for q in ("p50", "p95", "p99"))
                line.append(f"{p50:>8}{p95:>8}{p99:>8}")
                line.append(f"{s['count']:>8}")
                values = series.get(key, [])[-spark_w:] if spark_w >= 4 else []
                if values:
                    line.append("  " + charts().sparkline([float(v) for v in values]))
            lines.append(line)
        return fit(lines, width)


class HealthPanel(Widget):
    """Pool, cache, memory, outbox, index, errors and the upkeep stamps, one fact a line."""

    DEFAULT_CSS = """
    HealthPanel { height: auto; border: round $border-blurred; padding: 0 1; }
    """

    def __init__(self, now: Callable[[], float], *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.now = now
        self.data: StatusData | None = None
        self.border_title = "Journal and health"

    def show(self, data: StatusData) -> None:
        self.data = data
        self.refresh(layout=True)

    def _lines(self) -> list[Text]:
        if self.data is None:
            return [Text("reading the figures…", style="dim")]
        m = self.data.metrics
        now = self.now()

        def ago(ts: float | None) -> str:
            return "never" if ts is None else relative_time(ts, now)

        def row(label: str, value: str, warn: bool = False) -> Text:
            line = Text(no_wrap=True, overflow="ellipsis")
            line.append(f"{label:<14}", style="bold")
            line.append(value, style="bold reverse" if warn else "")
            return line

        pool = m.get("pool", {})
        cache = m.get("embedding_cache", {})
        rate = cache.get("hit_rate")
        outbox = m.get("outbox", {})
        index = m.get("index", {})
        errors = m.get("errors", {})
        others = m.get("processes", [])
        memory = size(m.get("process", {}).get("rss_bytes")) + " this process"
        if others:
            total = sum(p.get("process.rss_bytes", 0) for p in others)
            memory += f" · {len(others)} other {'process' if len(others) == 1 else 'processes'}"
            memory += f" {size(total)}"
        lag = outbox.get("lag_s")
        recall = index.get("recall_at_10")
        recall_text = (
            "not measured yet (m: measure now)"
            if recall is None
            else f"{recall:.3f} over {index.get('sample')} queries, "
            f"{ago(index.get('measured_at'))} (m: again)"
        )
        error_text = ", ".join(f"{op} {n}" for op, n in sorted(errors.items())) or "none"
        stamps = self.data.stamps
        facts = [row(name.capitalize(), value) for name, value in self.data.journal.items()]
        lines = facts + [
            row(
                "SQL pool",
                f"{pool.get('checked_out', '-')} checked out, {pool.get('open', '-')} open, "
                f"size {pool.get('size', '-')}, overflow {pool.get('overflow', '-')}",
            ),
            row(
                "Embed cache",
                f"{cache.get('hits', 0)} hits, {cache.get('misses', 0)} misses"
                + ("" if rate is None else f" ({rate:.0%} hit rate)"),
            ),
            row("Memory", memory),
            row(
                "Outbox",
                f"{outbox.get('size', 0)} waiting"
                + ("" if lag is None else f", oldest {duration(lag)}"),
                warn=bool(outbox.get("size")) and (lag or 0) > 60,
            ),
            row("Index", f"recall@10 {recall_text}", warn=recall is not None and recall < 0.9),
            row("Errors", error_text, warn=bool(errors)),
            row(
                "Last",
                f"sync {ago(stamps.get('sync'))} · check {ago(stamps.get('check'))} · "
                f"backup {ago(stamps.get('backup'))}",
            ),
        ]
        if self.data.index:
            lines.insert(-2, row("HNSW", self.data.index, warn="failed" in self.data.index))
        if self.data.worker:
            lines.append(row("Worker", f"{ago(stamps.get('worker'))}: {self.data.worker}"))
        return lines

    def get_content_height(self, container: Any, viewport: Any, width: int) -> int:
        return len(self._lines())

    def render(self) -> Text:
        return fit(self._lines(), max(10, self.content_region.width))


class StatusScreen(JournalScreen):
    """Live figures; ``r`` refreshes now, ``m`` measures vector index recall."""

    HELP_TITLE = "Status"
    DEFAULT_CSS = """
    StatusScreen #status-body { height: 1fr; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.mode('search')", "Search", show=False, id="status.back"),
        Binding("r", "refresh_now", "Refresh", id="status.refresh"),
        Binding("m", "measure", "Recall", id="status.measure"),
    ]

    def __init__(
        self,
        loader: Callable[[Engine], StatusData] | None = None,
        interval: float = REFRESH_SECONDS,
    ) -> None:
        super().__init__()
        self.loader = loader or load_status
        self.interval = interval
        self.data: StatusData | None = None

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="status-body"):
            yield LatencyPanel(id="status-latency")
            yield HealthPanel(self.now, id="status-health")
        yield StatusLine("Status")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#status-body").focus()
        self._fit()
        self.reload()
        if self.interval > 0:
            self.set_interval(self.interval, self.reload)

    def on_resize(self) -> None:
        self._fit()

    def _fit(self) -> None:
        panel = self.query_one(LatencyPanel)
        compact = self.app.size.height < COMPACT_BELOW
        if panel.compact != compact:
            panel.compact = compact
            panel.refresh(layout=True)

    def reload(self) -> None:
        engine_call(self, self.loader, self._loaded, group="status", title="Status")

    def _loaded(self, data: StatusData) -> None:
        self.data = data
        self.query_one(LatencyPanel).show(data.metrics)
        self.query_one(HealthPanel).show(data)

    def action_refresh_now(self) -> None:
        """Read the figures again now."""
        self.reload()

    def action_measure(self) -> None:
        """Measure recall@10 of the vector index against exact search (a few hundred searches)."""
        from ...engine.observability.quality import measure_index_quality

        def job(engine: Engine) -> Any:
            return measure_index_quality(engine)

        def done(result: Any) -> None:
            if result is None:
                self.notify("the vector store is not available here", title="Index recall")
            self.reload()

        self.notify("measuring recall@10…", title="Index recall", timeout=2)
        engine_call(self, job, done, group="status-measure", title="Index recall")
