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


def subtitle_of(app) -> str:
    return str(app.screen.query_one("#query", Input).border_subtitle)


async def scroll_to_the_end(pilot, results: ResultList, rounds: int = 20) -> None:
    for _ in range(rounds):
        results.action_last()
        await settle(pilot)


async def test_lists_page_past_fifty_with_real_counts(make_app, settings):
    from pilot_helpers import seed

    from ephemera_tui.app.screens.search import PAGE

    seed(settings.data_dir, extra=130)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        results = app.screen.query_one(ResultList)
        assert subtitle_of(app).startswith("142 memories")
        await pilot.press("escape")  # leave the box for the list
        await scroll_to_the_end(pilot, results)
        assert len(results.hits) == 142
        assert results.hits[-1].memory.content.startswith("Two years ago today")
        # a filter-only query: counted by the engine, paged by offset
        app.screen.query_one("#query", Input).value = "source:bulk"
        await settle(pilot)
        assert subtitle_of(app).startswith("130 matches")
        await scroll_to_the_end(pilot, results)
        assert len(results.hits) == 130
        # words: ranked, and paged by asking for more
        app.screen.query_one("#query", Input).value = "filler memory"
        await settle(pilot)
        assert len(results.hits) == PAGE
        await scroll_to_the_end(pilot, results)
        assert len(results.hits) > 100
        ids = [h.memory.id for h in results.hits]
        assert len(ids) == len(set(ids))


async def test_escape_leaves_an_empty_box_then_q_quits(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        box = app.screen.query_one("#query", Input)
        shown = {
            b.binding.description for b in app.screen.active_bindings.values() if b.binding.show
        }
        assert "Leave box" in shown and "Quit" not in shown  # q types a letter here
        await pilot.press("escape")
        assert not box.has_focus and box.value == ""
        shown = {
            b.binding.description for b in app.screen.active_bindings.values() if b.binding.show
        }
        assert "Quit" in shown and "Read" in shown
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running


async def test_question_mark_at_launch_opens_help(make_app, seeded):
    from ephemera_tui.app.screens.help import HelpScreen

    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen.query_one("#query", Input).value == ""


async def test_enter_opens_a_full_screen_reader(make_app, seeded):
    from ephemera_tui.app.screens.reader import ReaderScreen

    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press(*"corner cafe lisbon", "enter")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        reader = app.screen
        assert isinstance(reader, ReaderScreen)
        assert reader.memory.id == seeded[0]
        text = str(reader.query_one("#reader-text", Static).render())
        assert "she is moving to Lisbon" in text
        assert "Ask about the flat" in text  # notes
        assert "#friends" in text and "#lisbon" in text  # tags
        assert "→ Ana sent photos" in text and "← Idea: a journal" in text  # links both ways
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, SearchScreen)


async def test_search_box_completes_tags(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        box = app.screen.query_one("#query", Input)
        await pilot.press(*"river tag:gar")
        for _ in range(50):
            await pilot.pause(0.02)
            if box.suggestion:  # type: ignore[attr-defined]
                break
        await pilot.press("tab")
        assert box.value == "river tag:garden"
        assert app.focused is box


async def test_why_names_the_filter_of_a_filter_only_match(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await pilot.press(*"tag:walk", "enter", "w")
        await settle(pilot)
        text = str(app.screen.query_one("#preview", Static).render())
        assert "matches tag:walk" in text
        assert "fused score" not in text and "no keyword match" not in text


async def test_preview_tags_wrap_under_their_column(make_app, settings, seeded):
    from pilot_helpers import open_engine

    from ephemera_tui.engine import Draft

    tags = tuple(f"tag{n:02d}-longish" for n in range(14))
    engine = open_engine(settings.data_dir)
    try:
        engine.add(Draft(content="A memory with many tags", created_at=1_700_000_100, tags=tags))
    finally:
        engine.close()
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        pane = app.screen.query_one("#preview-pane")
        text = app.screen.query_one("#preview", Static).render()
        lines = str(text).splitlines()
        start = next(i for i, line in enumerate(lines) if line.startswith("tags"))
        following = lines[start + 1 : start + 4]
        assert all(len(line) <= pane.content_region.width for line in lines[start : start + 4])
        assert following[0].startswith(" " * 11 + "#tag")


async def test_selected_row_stands_out_without_colour(make_app, seeded, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        results = app.screen.query_one(ResultList)
        assert app.focused is app.screen.query_one("#query", Input)
        for y in (0, 1):
            styles = [seg.style for seg in results.render_line(y) if seg.text.strip()]
            assert styles and all(s is not None and (s.underline or s.reverse) for s in styles)
        plain = [seg.style for seg in results.render_line(2) if seg.text.strip()]
        assert not any(s is not None and (s.underline or s.reverse) for s in plain)


async def test_relative_times_move_on(settings, seeded, monkeypatch):
    from pilot_helpers import NOW

    from ephemera_tui.app import EphemeraApp
    from ephemera_tui.app.screens.base import JournalScreen

    monkeypatch.setattr(JournalScreen, "time_refresh", 0.1)
    now = [NOW]
    app = EphemeraApp(settings, clock=lambda: now[0], blink=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        results = app.screen.query_one(ResultList)
        assert "2 h ago" in str(results.render_line(1).text)
        now[0] = NOW + 3 * 3600
        await pilot.pause(0.4)
        assert "5 h ago" in str(results.render_line(1).text)
        assert "5 h ago" in str(app.screen.query_one("#preview", Static).render())


async def test_a_key_that_keeps_the_top_hit_leaves_the_preview_alone(make_app, seeded):
    """Each preview update lays the whole screen out again; typing on while the highlighted
    memory stays must not repaint it (the text it would show is the same)."""
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press(*"lisbon")
        await settle(pilot)
        screen = app.screen
        pane = screen.query_one("#preview", Static)
        shown = str(pane.render())
        assert "Lisbon" in shown or "lisbon" in shown.lower()
        updates: list[object] = []
        real_update = pane.update
        pane.update = lambda *a, **k: (updates.append(a), real_update(*a, **k))[1]  # type: ignore[method-assign]
        top = screen.query_one(ResultList).current_hit
        await pilot.press("space")
        await settle(pilot)
        assert screen.query_one(ResultList).current_hit == top
        assert updates == []
        screen.action_toggle_why()  # why-this-hit changes the text: that is painted
        await settle(pilot)
        assert len(updates) == 1
