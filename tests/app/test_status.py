"""Status screen: live figures from every process, and hermetic snapshots at 80x24 and 120x40."""

from __future__ import annotations

import pytest
from pilot_helpers import NOW, ready, settle

from ephemera_tui.app.screens.status import HealthPanel, LatencyPanel, StatusData, StatusScreen


def fixed_status(_engine: object) -> StatusData:
    """Figures that never change, so the snapshots do not either."""
    series = [4.0, 5.5, 3.2, 8.0, 4.4, 12.5, 3.9, 4.1, 6.0, 5.0, 4.8, 30.0, 4.2, 4.0]
    latency = {
        "search.total": {"p50": 4.8, "p95": 12.5, "p99": 30.0, "count": 1234},
        "search.parse": {"p50": 0.04, "p95": 0.09, "p99": 0.2, "count": 1234},
        "search.keyword": {"p50": 0.9, "p95": 3.1, "p99": 7.5, "count": 1234},
        "search.embed": {"p50": 2.9, "p95": 4.0, "p99": 5.1, "count": 1100},
        "search.vector": {"p50": 0.6, "p95": 2.2, "p99": 9.0, "count": 1100},
        "search.enrich": {"p50": 0.5, "p95": 1.1, "p99": 1.9, "count": 1234},
        "write.add": {"p50": 6.2, "p95": 14.0, "p99": 1720.0, "count": 57},
        "write.sync": {"p50": 40.0, "p95": 95.0, "p99": 130.0, "count": 9},
        "sql.query": {"p50": 0.02, "p95": 0.3, "p99": 2.0, "count": 48211},
    }
    metrics = {
        "latency_ms": latency,
        "series_ms": {
            "search.total": series,
            "search.vector": [s / 7 for s in series],
            "write.add": [6.0, 7.0, 5.5, 14.0],
        },
        "errors": {"vector_search": 2},
        "pool": {"size": 5, "checked_out": 1, "overflow": 0, "checked_in": 0, "open": 1},
        "embedding_cache": {"hits": 310, "misses": 924, "hit_rate": 0.2512},
        "process": {"pid": 1, "rss_bytes": 187_000_000},
        "processes": [{"pid": 2, "process.rss_bytes": 96_000_000}],
        "outbox": {"size": 3, "lag_s": 4.0, "max_attempts": 0, "last_error": None},
        "index": {"recall_at_10": 0.987, "sample": 50, "measured_at": NOW - 600},
        "last_sync_at": NOW - 30,
    }
    stamps = {"sync": NOW - 30, "check": NOW - 7200, "backup": NOW - 86400 * 2, "worker": NOW - 5}
    journal = {
        "data dir": "/home/ana/.local/share/ephemera",
        "stores": "SQLite ephemera.db · embedded Qdrant",
        "model": "ephemera/all-MiniLM-L6-v2-int8",
    }
    return StatusData(metrics, stamps, "synced 3, pending 0, checked 500", journal=journal)


async def open_status(pilot, loader=fixed_status) -> StatusScreen:  # type: ignore[no-untyped-def]
    await ready(pilot)
    screen = StatusScreen(loader=loader)
    await pilot.app.push_screen(screen)
    await settle(pilot)
    return screen


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_status_snapshot(snap_compare, make_app, seeded, size) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(make_app(), terminal_size=size, run_before=open_status)


async def test_status_shows_searches_made_here_and_elsewhere(make_app, seeded, settings) -> None:  # type: ignore[no-untyped-def]
    from pilot_helpers import open_engine

    other = open_engine(settings.data_dir)  # "another process": its own recorder, same file
    try:
        other.search("coffee")
        other.search("river")
    finally:
        other.close()
    app = make_app()
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await open_status(pilot, loader=None)  # the real loader
        latency = screen.query_one(LatencyPanel).metrics
        assert latency is not None
        assert latency["latency_ms"]["search.total"]["count"] == 2
        assert app.engine is not None
        app.engine.search("garden")  # this process: shows up at the next refresh
        screen.action_refresh_now()
        await settle(pilot)
        metrics = screen.query_one(LatencyPanel).metrics
        assert metrics is not None
        assert metrics["latency_ms"]["search.total"]["count"] == 3
        assert len(metrics["series_ms"]["search.total"]) == 3
        health = screen.query_one(HealthPanel)
        text = "\n".join(line.plain for line in health._lines())
        assert "checked out" in text and "hit rate" in text and "Errors        none" in text


async def test_measure_recall_from_the_status_screen(make_app, seeded) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await open_status(pilot, loader=None)
        await pilot.press("m")
        await settle(pilot)
        for _ in range(50):
            data = screen.data
            if data is not None and data.metrics["index"]["recall_at_10"] is not None:
                break
            await pilot.pause(0.05)
            await settle(pilot)
        assert screen.data is not None
        assert screen.data.metrics["index"]["recall_at_10"] == 1.0


async def test_f5_opens_status_and_escape_returns(make_app, seeded) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("f5")
        await settle(pilot)
        assert isinstance(app.screen, StatusScreen)
        await pilot.press("escape")
        await settle(pilot)
        assert app.current_mode == "search"


async def test_status_fits_80x24_and_says_where_the_journal_lives(make_app, seeded) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_status(pilot)
        body = screen.query_one("#status-body")
        assert body.max_scroll_y == 0  # nothing hidden below
        text = "\n".join(line.plain for line in screen.query_one(HealthPanel)._lines())
        assert "Data dir" in text and "Stores" in text and "Model" in text


async def test_real_status_names_the_data_dir_backends_and_model(
    make_app, seeded, settings
) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_status(pilot, loader=None)
        assert screen.data is not None
        facts = screen.data.journal
        assert facts["data dir"] == str(settings.data_dir)
        assert facts["stores"] == "SQLite ephemera.db · embedded Qdrant"
        assert facts["model"] == "fake-hash-384"
