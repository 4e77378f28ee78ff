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


async def test_arrows_jump_to_the_previous_and_next_busy_period(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_timeline(pilot)
        lines = screen.query_one(MemoryLines)
        histogram = screen.query_one(Histogram)
        for n in range(1, 10):  # nine busy days back, however many empty days between
            await pilot.press("left" if n % 2 else "h")
            await settle(pilot)
            assert histogram.buckets[histogram.selected][1] > 0
            assert lines.current is not None and lines.current.id == seeded[n]
        await pilot.press("right", "l")
        await settle(pilot)
        assert lines.current is not None and lines.current.id == seeded[7]


async def test_brackets_leap_and_g_G_go_to_the_ends(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_timeline(pilot)
        lines = screen.query_one(MemoryLines)
        histogram = screen.query_one(Histogram)
        await pilot.press("left_square_bracket")  # a month of days back: 40 days ago
        await settle(pilot)
        assert lines.current is not None and lines.current.id == seeded[8]
        await pilot.press("left_square_bracket", "left_square_bracket")
        await settle(pilot)
        assert lines.current is not None and lines.current.id == seeded[10]  # a year ago
        await pilot.press("right_square_bracket")
        await settle(pilot)
        assert lines.current is not None and lines.current.id == seeded[9]
        await pilot.press("G")
        await settle(pilot)
        assert lines.current is not None and lines.current.id == seeded[11]
        assert histogram.selected == 0
        await pilot.press("g")
        await settle(pilot)
        assert lines.current is not None and lines.current.id == seeded[0]
        assert histogram.selected == len(histogram.buckets) - 1


def row(lines: MemoryLines, y: int) -> str:
    return str(lines.render_line(y).text)


async def test_years_show_when_not_this_year_once_per_header(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await open_timeline(pilot)
        lines = screen.query_one(MemoryLines)
        assert row(lines, 0).startswith("Tue 14 Nov ")  # this year: no year
        assert "2023" not in row(lines, 0)
        assert row(lines, 10).startswith("Mon 14 Nov 2022")
        assert row(lines, 11).startswith("Sun 14 Nov 2021")
        await pilot.press("G")
        await settle(pilot)
        title = str(screen.query_one(Histogram).render())
        assert title.count("2021") == 1
        await pilot.press("u")  # by week
        await settle(pilot)
        await pilot.press("g")
        await settle(pilot)
        assert row(lines, 0).startswith("13–19 Nov ")
        assert row(lines, 10).startswith("14–20 Nov 2022")
        await pilot.press("u")  # by month
        await settle(pilot)
        assert row(lines, 0).startswith("November ")
        assert row(lines, 10).startswith("November 2022")
        title = str(screen.query_one(Histogram).render())
        assert "November" in title and "2023" not in title


async def test_the_top_row_always_names_its_group(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_timeline(pilot)
        await pilot.press("u", "u")  # by month: November holds four memories
        await settle(pilot)
        lines = screen.query_one(MemoryLines)
        assert row(lines, 1).startswith(" " * 8)  # inside the group: no label
        lines.scroll_to(y=2, animate=False, immediate=True)
        await pilot.pause()
        assert row(lines, 0).startswith("November")


async def test_the_list_has_no_sideways_scrollbar(make_app, settings):
    """Its thumb was the stray block at the foot of the list, once the list was long enough
    for a vertical scrollbar to narrow it."""
    seed(settings.data_dir, extra=60)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_timeline(pilot)
        lines = screen.query_one(MemoryLines)
        assert lines.show_vertical_scrollbar
        assert not lines.show_horizontal_scrollbar
        assert lines.virtual_size.width <= lines.scrollable_content_region.width


async def test_enter_reads_the_highlighted_memory(make_app, seeded):
    from ephemera_tui.app.screens.reader import ReaderScreen

    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_timeline(pilot)
        await pilot.press("j", "enter")
        await settle(pilot)
        assert isinstance(app.screen, ReaderScreen)
        assert app.screen.memory.id == seeded[1]
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, TimelineScreen)
        assert app.is_running
