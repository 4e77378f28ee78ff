"""Timeline: grouping, histogram navigation, jump to date, on this day, paging."""

from __future__ import annotations

from datetime import datetime

from pilot_helpers import ready, seed, settle

from ephemera_tui.app.screens.graph import GraphScreen
from ephemera_tui.app.screens.picker import PickerScreen
from ephemera_tui.app.screens.prompt import PromptScreen
from ephemera_tui.app.screens.timeline import TimelineScreen
from ephemera_tui.app.widgets.histogram import Histogram
from ephemera_tui.app.widgets.lines import PAGE_SIZE, MemoryLines
from ephemera_tui.app.widgets.results import ResultList


async def open_timeline(pilot) -> TimelineScreen:
    await ready(pilot)
    await pilot.press("f3")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, TimelineScreen)
    return screen


async def test_lists_newest_first_with_histogram(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_timeline(pilot)
        lines = screen.query_one(MemoryLines)
        assert lines.total == len(seeded)
        assert lines.current is not None and lines.current.id == seeded[0]
        histogram = screen.query_one(Histogram)
        assert histogram.buckets[-1][1] >= 1
        assert histogram.selected == len(histogram.buckets) - 1
        await pilot.press("j", "j")
        await settle(pilot)
        assert lines.cursor == 2 and lines.current.id == seeded[2]
        await pilot.press("k")
        assert lines.cursor == 1


async def test_histogram_moves_the_list(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_timeline(pilot)
        lines = screen.query_one(MemoryLines)
        histogram = screen.query_one(Histogram)
        await pilot.press("left", "left", "left")
        await settle(pilot)
        span = histogram.span
        assert span is not None
        start, end = span
        assert lines.current is not None
        assert lines.current.created_at < end
        assert lines.cursor > 0
        await pilot.press("right", "right", "right")
        await settle(pilot)
        assert lines.cursor == 0


async def test_group_by_week_and_month(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_timeline(pilot)
        await pilot.press("u")
        await settle(pilot)
        assert screen.query_one(MemoryLines).unit == "week"
        assert screen.query_one(Histogram).unit == "week"
        await pilot.press("u")
        await settle(pilot)
        histogram = screen.query_one(Histogram)
        assert histogram.unit == "month"
        first = datetime.fromtimestamp(histogram.buckets[0][0])
        assert first.day == 1 and first.hour == 0
        assert len(histogram.buckets) == 25  # Nov 2021 .. Nov 2023, empty months included


async def test_jump_to_date(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_timeline(pilot)
        await pilot.press("t")
        await pilot.pause()
        assert isinstance(app.screen, PromptScreen)
        await pilot.press(*"2023-10-01", "enter")
        await settle(pilot)
        current = screen.query_one(MemoryLines).current
        assert current is not None and current.id == seeded[9]  # 70 days ago: 2023-09-05
        await pilot.press("t")
        await pilot.pause()
        await pilot.press(*"last week", "enter")
        await settle(pilot)
        current = screen.query_one(MemoryLines).current
        assert current is not None and current.id == seeded[2]  # newest of 6-12 Nov


async def test_bad_date_is_a_notification(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_timeline(pilot)
        await pilot.press("t")
        await pilot.pause()
        await pilot.press(*"the twelfth of never", "enter")
        await settle(pilot)
        messages = [n.message for n in app._notifications]
        assert any("cannot understand" in m for m in messages)


async def test_on_this_day(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_timeline(pilot)
        await pilot.press("o")
        await settle(pilot)
        picker = app.screen
        assert isinstance(picker, PickerScreen)
        ids = [h.memory.id for h in picker.query_one(ResultList).hits]
        assert ids == [seeded[10], seeded[11]]
        await pilot.press("enter")
        await settle(pilot)
        assert app.current_mode == "graph"
        graph = app.screen
        assert isinstance(graph, GraphScreen)
        assert graph.current_memory is not None
        assert graph.current_memory.id == seeded[10]


async def test_pages_from_the_engine(make_app, settings):
    seed(settings.data_dir, extra=1500)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_timeline(pilot)
        lines = screen.query_one(MemoryLines)
        assert lines.total == 1512
        assert set(lines._pages) == {0}
        await pilot.press("G")
        await settle(pilot)
        assert lines.cursor == 1511
        assert lines.current is not None
        assert lines.current.content.startswith("Two years ago today")
        memory = lines.memory_at(1509)
        assert memory is not None
        assert memory.content == "filler memory number 1499 about nothing much"
        assert len(lines._pages) <= 3
        assert max(lines._pages) == 1511 // PAGE_SIZE
        await pilot.press("pageup")
        await settle(pilot)
        assert lines.cursor < 1511
