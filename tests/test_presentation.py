"""The presentation package: one rule per kind of figure (None, zero, one, large, negative, NaN,
and the rounding boundaries), the charts, the metrics and health text from typed reports, and
the CLI's ``--json`` shapes of those reports (in-process, SQLite, the fake embedder)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import FrozenInstanceError
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from ephemera_tui.cli.main import app
from ephemera_tui.engine import Draft, Engine
from ephemera_tui.engine.observability.report import (
    CacheFigures,
    IndexFigures,
    LatencyFigures,
    MetricsReport,
    OtherProcess,
    OutboxFigures,
    PoolFigures,
    ProcessFigures,
    collect,
)
from ephemera_tui.engine.store import MetaKey
from ephemera_tui.engine.sync.worker import (
    BackupRecord,
    Failure,
    Health,
    IndexBuild,
    Stamp,
    health,
)
from ephemera_tui.presentation.charts import bar, sparkline
from ephemera_tui.presentation.health import health_lines, index_note
from ephemera_tui.presentation.metrics import format_metrics, system_lines
from ephemera_tui.presentation.numbers import (
    count,
    milliseconds,
    percent,
    plural,
    ratio,
    significant,
    size,
)
from ephemera_tui.presentation.times import age, duration, relative_time

NAN = float("nan")
INF = float("inf")
DAY = 86400

# ---------------------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "-"),
        (NAN, "-"),
        (INF, "-"),
        (-INF, "-"),
        (0, "0.00"),
        (1, "1.00"),
        (0.04, "0.04"),
        (4.8, "4.80"),
        (9.994, "9.99"),
        (9.996, "10.0"),  # the precision follows the rounded value: never "10.00"
        (12.5, "12.5"),
        (99.96, "100"),
        (130, "130"),
        (999.4, "999"),
        (999.6, "1.00s"),  # not "1000"
        (1720, "1.72s"),
        (12_345, "12.3s"),
        (3_600_000, "3,600s"),
        (1e12, "1,000,000,000s"),
        (-4.8, "-4.80"),
        (-1720, "-1.72s"),
        (-0.001, "0.00"),  # no negative zero
    ],
)
def test_milliseconds(value: float | None, text: str) -> None:
    assert milliseconds(value) == text


def test_milliseconds_with_unit() -> None:
    assert milliseconds(4.8, unit=True) == "4.80 ms"
    assert milliseconds(1720, unit=True) == "1.72 s"
    assert milliseconds(None, unit=True) == "-"
    assert milliseconds(NAN, unit=True) == "-"


def test_significant_figures() -> None:
    assert significant(0.012345) == "0.01"
    assert significant(123_456.7) == "123,457"
    assert significant(-99.99) == "-100"
    assert significant(True) == "-"  # a flag is not a figure


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "-"),
        (NAN, "-"),
        (INF, "-"),
        (0, "0 B"),
        (1, "1 B"),
        (1023, "1,023 B"),  # every figure from a thousand on has separators
        (1023.6, "1.0 KB"),  # rounds to 1024 bytes: a kilobyte
        (1024, "1.0 KB"),
        (1536, "1.5 KB"),
        (1024 * 1024 - 1, "1.0 MB"),  # 1023.999 KB would read 1024.0 KB
        (187_000_000, "178.3 MB"),
        (96_000_000, "91.6 MB"),
        (3 * 1024**3, "3.0 GB"),
        (5 * 1024**5, "5,120.0 TB"),  # the largest unit keeps counting
        (-2048, "-2.0 KB"),
        (-1, "-1 B"),
    ],
)
def test_size(value: float | None, text: str) -> None:
    assert size(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "-"),
        (NAN, "-"),
        (0, "0"),
        (1, "1"),
        (999, "999"),
        (1234, "1,234"),
        (1_234_567_890, "1,234,567,890"),
        (-3, "-3"),
        (-1234, "-1,234"),
        (2.4, "2"),
    ],
)
def test_count(value: float | None, text: str) -> None:
    assert count(value) == text


@pytest.mark.parametrize(
    ("n", "noun", "text"),
    [
        (0, "memory", "0 memories"),
        (1, "memory", "1 memory"),
        (2, "memory", "2 memories"),
        (1451, "memory", "1,451 memories"),
        (-1, "memory", "-1 memories"),
        (1, "day", "1 day"),
        (7, "day", "7 days"),  # a vowel before the y: -s
        (3, "query", "3 queries"),
    ],
)
def test_plural(n: int, noun: str, text: str) -> None:
    assert plural(n, noun) == text


def test_plural_with_an_irregular_noun() -> None:
    assert plural(2, "process", "processes") == "2 processes"
    assert plural(1, "process", "processes") == "1 process"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "-"),
        (NAN, "-"),
        (0, "0%"),
        (1, "100%"),
        (0.2512, "25%"),
        (0.004, "0%"),
        (1.5, "150%"),
        (-0.25, "-25%"),
        (-0.001, "0%"),
    ],
)
def test_percent(value: float | None, text: str) -> None:
    assert percent(value) == text


def test_ratio() -> None:
    assert ratio(0.987) == "0.987"
    assert ratio(1) == "1.000"
    assert ratio(0) == "0.000"
    assert ratio(0.9876) == "0.988"
    assert ratio(None) == "-" and ratio(NAN) == "-"


# ---------------------------------------------------------------------------- times


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (NAN, "-"),
        (INF, "-"),
        (0, "0s"),
        (0.4, "0s"),
        (1, "1s"),
        (59.9, "59s"),  # cut down, never rounded up to a minute
        (60, "1 min"),
        (3599, "59 min"),
        (3600, "1 h"),
        (DAY - 1, "23 h"),
        (DAY, "1 day"),
        (2 * DAY, "2 days"),
        (10**9, "11,574 days"),
        (-5, "0s"),  # a clock that moved back
    ],
)
def test_duration(seconds: float | None, text: str) -> None:
    assert duration(seconds) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "never"),
        (NAN, "-"),
        (0, "just now"),
        (1, "just now"),
        (59, "just now"),
        (60, "1 min ago"),
        (5399, "1 h ago"),  # 1 h 29 min
        (7199, "1 h ago"),  # 1 h 59 min: cut down, as "2 h ago" would overstate it
        (7200, "2 h ago"),
        (DAY, "yesterday"),
        (2 * DAY - 1, "yesterday"),
        (2 * DAY, "2 days ago"),
        (400 * DAY, "400 days ago"),
        (-30, "just now"),
        (-61, "in the future"),
    ],
)
def test_age(seconds: float | None, text: str) -> None:
    assert age(seconds) == text


def test_relative_time_gives_a_date_from_thirty_days_back() -> None:
    now = 1_767_225_600.0  # 2026-01-01T00:00:00Z
    assert relative_time(now - 120, now) == "2 min ago"
    assert relative_time(now - 29 * DAY, now) == "29 days ago"
    assert relative_time(now + 3600, now) == "in the future"
    assert relative_time(NAN, now) == "-"
    month_ago = relative_time(now - 40 * DAY, now)
    assert len(month_ago.split()) == 2 and month_ago.split()[1] in ("Nov", "Dec")
    assert relative_time(now - 400 * DAY, now).endswith(" 2024")


# ---------------------------------------------------------------------------- charts


def test_bars_and_sparklines_of_odd_values() -> None:
    assert bar(NAN, 10, 4) == "" and bar(5, NAN, 4) == ""
    assert bar(-3, 10, 4) == "" and bar(3, -10, 4) == ""
    assert bar(5, 10, 0) == ""
    assert bar(20, 10, 4) == "████"  # never wider than its width
    assert bar(1e12, 1e12, 3) == "███"
    assert sparkline([]) == ""
    assert sparkline([NAN, -1, 0, 4]) == "   █"
    assert sparkline([NAN, NAN]) == "▁▁"
    assert sparkline([INF, 1]) == " █"


# ---------------------------------------------------------------------------- reports as text


def empty_metrics(**changes: Any) -> MetricsReport:
    """A report with nothing recorded: every optional figure None."""
    fields: dict[str, Any] = {
        "latency_ms": {},
        "errors": {},
        "invalid": {},
        "error_rate": {},
        "embedding_cache": CacheFigures(0, 0, None, None),
        "pool": PoolFigures(),
        "process": ProcessFigures(pid=1, rss_bytes=None),
        "processes": (),
        "outbox": OutboxFigures(0, None, 0, None),
        "index": IndexFigures(None, None, None, None, None, None),
        "last_sync_at": None,
        "series_ms": {},
        "metrics_file": None,
        "flush_errors": 0,
    }
    fields.update(changes)
    return MetricsReport(**fields)


def test_metrics_text_with_nothing_recorded() -> None:
    text = "\n".join(format_metrics(empty_metrics()))
    assert "(nothing recorded yet)" in text
    assert "embedding cache: 0 hits, 0 misses (-)" in text
    assert "sql pool: - checked out, - open, size - (overflow -)" in text
    assert "outbox: 0 pending, lag -" in text
    assert "memory: - (this process)" in text
    assert "not measured yet" in text and "errors: none" in text
    assert system_lines(empty_metrics()) == ["errors: none"]


def test_metrics_text_uses_the_shared_rules() -> None:
    latency = LatencyFigures(4.8, 12.5, 1720.0, 1720.0, 6.0, 50, 12_345, None)
    report = empty_metrics(
        latency_ms={"search.total": latency},
        errors={"vector_search": 2, "search": 1},
        embedding_cache=CacheFigures(310, 924, 0.2512, None),
        pool=PoolFigures(size=5, checked_out=1, checked_in=0, overflow=0, open=1),
        process=ProcessFigures(pid=1, rss_bytes=187_000_000),
        processes=(OtherProcess(2, 0.0, {"process.rss_bytes": 96e6, "pool.size": 5.0}),),
        outbox=OutboxFigures(3, 125.0, 1, None),
        index=IndexFigures(0.9876, 0.0, 50, 3.25, 0.5, None),
    )
    lines = format_metrics(report)
    assert "  search.total             4.80     12.5    1.72s   12,345" in lines
    text = "\n".join(lines)
    assert "embedding cache: 310 hits, 924 misses (25%)" in text
    assert "outbox: 3 pending, lag 2 min" in text
    assert "memory: 178.3 MB (this process)" in text
    assert "91.6 MB (pid 2, pool 0/5)" in text
    assert "index recall@10: 0.988 over 50 queries (index 0.50 ms, exact 3.25 ms)" in text
    assert "errors: search 1, vector_search 2" in text
    assert system_lines(report) == [
        "search: p50 4.80 ms, p95 12.5 ms, p99 1.72 s over 50 recent searches",
        "embedding cache hit rate 25%",
        "vector index recall@10 0.988",
        "errors: search 1, vector_search 2",
    ]


def bare_health(**changes: Any) -> Health:
    fields: dict[str, Any] = {
        "pending": 0,
        "outbox_oldest_age_s": None,
        "outbox_max_attempts": 0,
        "outbox_last_error": None,
        "mismatches_found": 0,
        "mismatches_repaired": 0,
        "last_check": None,
        "last_slice_check": None,
        "last_full_check": None,
        "check_cursor": None,
        "last_backup": None,
        "last_backup_error": None,
        "index_building": False,
        "last_index_build": None,
        "worker": None,
        "vector_status": "ok",
    }
    fields.update(changes)
    return Health(**fields)


def test_health_lines_of_a_new_journal() -> None:
    assert health_lines(bare_health()) == [
        "pending vectors: 0",
        "mismatches: found 0, repaired 0",
        "last full check: never",
        "last backup: never",
    ]
    assert index_note(bare_health()) is None


def test_health_lines_with_everything_set() -> None:
    found = bare_health(
        pending=1234,
        outbox_oldest_age_s=4.7,
        outbox_last_error="vector store down",
        mismatches_found=5,
        mismatches_repaired=5,
        last_check=Stamp(100, 7199.0),
        last_full_check=Stamp(200, 90.0),  # the full pass wins over ``ephemera check``
        last_backup=BackupRecord(300, "/b/set", 4, 9, "edge", 2 * DAY),
        last_backup_error=Failure(400, "disk full"),
        last_index_build=IndexBuild(at=1, points=12_000, indexed=11_500, seconds=95.3),
    )
    assert health_lines(found) == [
        "pending vectors: 1,234 (oldest 4s)",
        "mismatches: found 5, repaired 5",
        "last full check: 1 min ago",
        "last backup: 2 days ago (/b/set)",
        "last vector error: vector store down",
        "last backup error: disk full",
        "HNSW index: 11,500 of 12,000 vectors indexed by the last build in 1 min",
    ]


def test_index_note_for_every_ending() -> None:
    assert index_note(bare_health(index_building=True)) == "building in the background"
    failed = bare_health(last_index_build=IndexBuild(at=1, error="out of memory"))
    assert index_note(failed) == "last build failed: out of memory"
    cancelled = bare_health(last_index_build=IndexBuild(at=1, cancelled="the worker stopped"))
    assert index_note(cancelled) == "last build cancelled (the worker stopped); it starts again"
    unknown = bare_health(last_index_build=IndexBuild(at=1))  # a record with no counts
    assert index_note(unknown) == "- of - vectors indexed by the last build"


# ---------------------------------------------------------------------------- typed reports


HEALTH_KEYS = [
    "pending",
    "outbox_oldest_age_s",
    "outbox_max_attempts",
    "outbox_last_error",
    "mismatches_found",
    "mismatches_repaired",
    "last_check",
    "last_slice_check",
    "last_full_check",
    "check_cursor",
    "last_backup",
    "last_backup_error",
    "index_building",
    "last_index_build",
    "worker",
    "vector_status",
]
METRICS_KEYS = [
    "latency_ms",
    "errors",
    "invalid",
    "error_rate",
    "embedding_cache",
    "pool",
    "process",
    "processes",
    "outbox",
    "index",
    "last_sync_at",
    "series_ms",
    "metrics_file",
    "flush_errors",
]


def test_reports_are_frozen_records_with_the_json_shape(engine: Engine) -> None:
    engine.add(Draft(content="a walk by the river"))
    engine.search("river")
    report = collect(engine)
    found = health(engine)
    with pytest.raises(FrozenInstanceError):
        report.flush_errors = 3  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        found.pending = 3  # type: ignore[misc]
    metrics = json.loads(json.dumps(report.to_dict()))  # JSON as it is, no default=str
    assert list(metrics) == METRICS_KEYS
    assert list(metrics["latency_ms"]["search.total"]) == [
        "p50",
        "p95",
        "p99",
        "max",
        "mean",
        "window",
        "count",
        "last_at",
    ]
    assert metrics["latency_ms"]["search.total"]["count"] == 1
    assert report.latency_ms["search.total"].count == 1
    assert list(metrics["embedding_cache"]) == ["hits", "misses", "hit_rate", "this_process"]
    assert set(metrics["embedding_cache"]["this_process"]) == {"hits", "misses", "size"}
    assert metrics["outbox"] == {"size": 0, "lag_s": None, "max_attempts": 0, "last_error": None}
    assert set(metrics["pool"]) >= {"size", "checked_out", "overflow", "open"}
    data = json.loads(json.dumps(found.to_dict()))
    assert list(data) == HEALTH_KEYS
    assert data["pending"] == 0 and data["worker"] is None and data["last_backup"] is None
    assert found.vector_status == "ok"


def test_health_survives_unreadable_records(engine: Engine) -> None:
    """Hand-edited or foreign meta values count as absent: before, a last backup error or index
    build that was not JSON made ``health`` (and ``ephemera check``) raise."""
    store = engine.store
    store.set_meta(MetaKey.LAST_BACKUP_ERROR, "disk full, not json")
    store.set_meta(MetaKey.INDEX_BUILD_LAST, "{truncated")
    store.set_meta(MetaKey.WORKER_LAST_RUN, "[1, 2]")
    store.set_meta(MetaKey.LAST_BACKUP, '"a string"')
    store.set_meta(MetaKey.LAST_CHECK, "yesterday")
    found = health(engine)
    assert found.last_backup_error is None and found.last_index_build is None
    assert found.worker is None and found.last_backup is None and found.last_check is None
    assert health_lines(found)[2:4] == ["last full check: never", "last backup: never"]


# ---------------------------------------------------------------------------- the CLI


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Any]:
    (tmp_path / "none.toml").write_text("")
    env = {
        "EPHEMERA_DATA_DIR": str(tmp_path / "data"),
        "EPHEMERA_DATABASE_URL": f"sqlite:///{tmp_path / 'ephemera.db'}",
        "EPHEMERA_EMBEDDING_MODEL": "fake-hash-384",
        "EPHEMERA_CONFIG": str(tmp_path / "none.toml"),
    }
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        result = runner.invoke(app, list(args), env=env)
        assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
        return result

    yield invoke


def test_cli_check_stats_and_report_show_typed_reports(cli: Any) -> None:
    cli("add", "Hiked to the alpine lake", "--tag", "trip")
    cli("search", "lake")
    lines = cli("check").stdout.splitlines()
    assert lines[1:5] == [
        "pending vectors: 0",
        "mismatches: found 0, repaired 0",
        "last full check: just now",
        "last backup: never",
    ]
    data = json.loads(cli("check", "--json").stdout)
    assert list(data["health"]) == HEALTH_KEYS
    assert data["health"]["last_full_check"]["age_s"] >= 0
    stats = json.loads(cli("stats", "--json").stdout)
    assert list(stats["metrics"]) == METRICS_KEYS
    assert stats["metrics"]["latency_ms"]["search.total"]["count"] >= 1
    text = cli("stats").stdout
    assert "latency (ms)" in text and "embedding cache:" in text
    report = json.loads(cli("report", "-f", "json").stdout)
    assert list(report["system"]) == METRICS_KEYS
    shown = cli("report").stdout
    assert "System" in shown and "search: p50 " in shown and " ms, p95 " in shown


def test_presentation_stays_light() -> None:
    """The presentation package imports neither Textual nor the engine's heavy parts."""
    code = (
        "import sys\n"
        "import ephemera_tui.presentation.report, ephemera_tui.presentation.health\n"
        "import ephemera_tui.presentation.times\n"
        "heavy = sorted(m for m in ('textual', 'rich', 'sqlalchemy', 'ephemera_tui.engine')\n"
        "               if m in sys.modules)\n"
        "print(heavy)\n"
        "sys.exit(1 if heavy else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
