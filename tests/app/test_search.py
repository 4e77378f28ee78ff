"""Search screen: search as you type, preview, why-this-hit, literal content, vim keys."""

from __future__ import annotations

from pilot_helpers import ready, settle
from textual.widgets import Input, Static

from ephemera_tui.app.screens.search import SearchScreen
from ephemera_tui.app.widgets.results import ResultList


async def test_opens_with_cursor_in_search_box(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        assert isinstance(app.screen, SearchScreen)
        assert app.focused is app.screen.query_one("#query", Input)
        results = app.screen.query_one(ResultList)
        assert len(results.hits) == 12  # empty query browses the most recent
        assert results.hits[0].memory.id == seeded[0]


async def test_an_empty_store_says_how_to_begin(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await settle(pilot)
        assert str(app.screen.query_one("#query", Input).border_subtitle) == "empty"
        assert "ctrl+n" in str(app.screen.query_one(ResultList).render_line(0).text)


async def test_typing_searches_and_highlights(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press(*"lisbon")
        await settle(pilot)
        results = app.screen.query_one(ResultList)
        ids = [h.memory.id for h in results.hits]
        assert seeded[0] in ids and seeded[1] in ids
        assert all("lisbon" in h.matched_terms for h in results.hits)
        subtitle = str(app.screen.query_one("#query", Input).border_subtitle)
        assert subtitle.startswith(f"{len(results.hits)} matches")


async def test_query_syntax_filters(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press(*"garden tag:walk")
        await settle(pilot)
        hits = app.screen.query_one(ResultList).hits
        assert [h.memory.id for h in hits] == [seeded[3]]


async def test_a_bad_filter_value_is_named_beside_the_results(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press(*"garden importance>=999")
        await settle(pilot)
        subtitle = str(app.screen.query_one("#query", Input).border_subtitle)
        assert "importance" in subtitle and "255" in subtitle
        assert app.screen.query_one(ResultList).hits  # the rest of the query still ran


async def test_stale_queries_do_not_overwrite_newer_ones(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        screen = app.screen
        assert isinstance(screen, SearchScreen)
        for text in ("coffee", "river", "tomatoes"):
            screen.query_one("#query", Input).value = text
        await settle(pilot)
        hits = screen.query_one(ResultList).hits
        assert hits[0].memory.id == seeded[2]


async def test_preview_and_why_this_hit(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await pilot.press(*"lisbon")
        await settle(pilot)
        await pilot.press("tab")
        assert isinstance(app.focused, ResultList)
        preview = app.screen.query_one("#preview", Static)
        await pilot.press("w")
        await settle(pilot)
        text = str(preview.render())
        assert "Why this hit" in text and "words" in text and "meaning" in text
        assert "Links" in text
        await pilot.press("j")
        await settle(pilot)
        assert app.screen.query_one(ResultList).highlighted == 1


async def test_markup_and_escapes_are_shown_literally(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(120, 30)) as pilot:
        await ready(pilot)
        await pilot.press(*"markup")
        await settle(pilot)
        hit = app.screen.query_one(ResultList).current_hit
        assert hit is not None
        preview = str(app.screen.query_one("#preview", Static).render())
        assert "[bold]Rich markup[/bold]" in preview
        assert "\x1b" not in preview
        assert "[31mred escape" in preview


async def test_escape_returns_to_box_then_clears(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press(*"river", "tab")
        focused = app.focused
        assert isinstance(focused, ResultList)
        await pilot.press("escape")
        query = app.screen.query_one("#query", Input)
        assert app.focused is query and query.value == "river"
        await pilot.press("escape")
        assert query.value == ""


async def test_o_opens_graph(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press(*"tomatoes", "enter")
        await settle(pilot)
        await pilot.press("o")
        await settle(pilot)
        assert app.current_mode == "graph"
        assert app.screen.current_memory.id == seeded[2]
