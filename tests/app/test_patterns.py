"""Patterns screen: drawn from the seed journal, keys change grouping and period; snapshots."""

from __future__ import annotations

import pytest
from pilot_helpers import ready, settle

from ephemera_tui.app.screens.patterns import PatternsScreen


async def open_patterns(pilot) -> PatternsScreen:  # type: ignore[no-untyped-def]
    await ready(pilot)
    screen = PatternsScreen()
    await pilot.app.push_screen(screen)
    await settle(pilot)
    return screen


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_patterns_snapshot(snap_compare, make_app, seeded, size) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(make_app(), terminal_size=size, run_before=open_patterns)


async def test_patterns_figures_and_keys(make_app, seeded) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_patterns(pilot)
        data = screen.data
        assert data is not None
        assert data.total == 12
        assert dict(data.sources)["note"] == 7
        assert data.period_days == 30
        assert [t.tag for t in data.rising][:1] == ["friends"] or data.rising
        assert screen.panel("activity").border_title == "Activity by week (u: change)"
        await pilot.press("u")
        assert screen.unit == "month"
        assert screen.panel("activity").border_title == "Activity by month (u: change)"
        await pilot.press("p")
        await settle(pilot)
        assert screen.data is not None and screen.data.period_days == 90
        assert "90 days" in str(screen.panel("tags").border_title)


async def test_patterns_of_an_empty_journal(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_patterns(pilot)
        assert screen.data is not None and screen.data.total == 0
        summary = screen.panel("summary").draw(60)
        assert summary[0].plain == "No memories yet."


async def test_f6_opens_patterns(make_app, seeded) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("f6")
        await settle(pilot)
        assert isinstance(app.screen, PatternsScreen)
        assert app.screen.data is not None and app.screen.data.total == 12


async def test_activity_shows_the_whole_history_and_all_time_tags(make_app, seeded) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_patterns(pilot)
        await pilot.press("u", "u")  # by day: two years of days, far wider than the panel
        axis = screen.panel("activity").draw(60)[-1].plain
        assert "2021-11-14" in axis and "2023-11-14" in axis
        top = [line.plain for line in screen.panel("top").draw(40)]
        assert top[0].startswith("friends") or top[0].startswith("garden")
        assert len(top) == 8


async def test_tags_compare_the_journals_own_last_weeks_when_it_is_old(make_app, seeded) -> None:  # type: ignore[no-untyped-def]
    from pilot_helpers import NOW

    from ephemera_tui.app import EphemeraApp

    app = EphemeraApp(make_app().settings, clock=lambda: NOW + 400 * 86400, blink=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_patterns(pilot)
        assert screen.data is not None and screen.data.recent_count > 0
        assert "days to 14 Nov 2023" in str(screen.panel("tags").border_title)
