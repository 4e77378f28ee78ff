"""Trust: the highlight follows the memory just saved, e/d act on what the preview shows, and
a draft is never lost (Escape asks; an interrupted draft is offered back on ctrl+n)."""

from __future__ import annotations

import asyncio

from pilot_helpers import NOW, open_engine, ready, settle
from textual.widgets import Input, Static, TextArea

from ephemera_tui.app.screens.capture import CaptureScreen
from ephemera_tui.app.screens.confirm import ConfirmScreen
from ephemera_tui.app.screens.search import SearchScreen
from ephemera_tui.app.screens.timeline import TimelineScreen
from ephemera_tui.app.widgets.lines import MemoryLines
from ephemera_tui.app.widgets.results import ResultList
from ephemera_tui.engine import Draft


def drafts(settings):  # imported late: the rest of the file runs on any version of the app
    from ephemera_tui.app.state import DraftStore

    return DraftStore(settings.data_dir)


async def save_new(pilot, text: str) -> None:
    await pilot.press("ctrl+n")
    await pilot.pause()
    assert isinstance(pilot.app.screen, CaptureScreen)
    await pilot.press(*text, "ctrl+s")
    await settle(pilot)


async def test_highlight_and_delete_follow_the_memory_just_saved(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await pilot.press("tab")  # into the list, highlight on the newest memory
        results = app.screen.query_one(ResultList)
        assert results.current_hit is not None and results.current_hit.memory.id == seeded[0]
        await save_new(pilot, "Just written down")
        screen = app.screen
        assert isinstance(screen, SearchScreen)
        hit = results.current_hit
        assert hit is not None and hit.memory.content == "Just written down"
        assert "Just written down" in str(screen.query_one("#preview", Static).render())
        await pilot.press("d")
        await pilot.pause()
        confirm = app.screen
        assert isinstance(confirm, ConfirmScreen)
        assert "Just written down" in confirm.question.plain


async def test_e_and_d_act_on_what_the_preview_shows(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await pilot.press("tab", "j", "j")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, SearchScreen)
        shown = screen.current_memory
        assert shown is not None and shown.id == seeded[2]
        assert shown.content in str(screen.query_one("#preview", Static).render())
        await pilot.press("e")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, CaptureScreen) and form.memory is not None
        assert form.memory.id == shown.id


async def test_timeline_keeps_its_memory_when_another_arrives(make_app, seeded, settings):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("f3")
        await settle(pilot)
        lines = app.screen.query_one(MemoryLines)
        await pilot.press("j", "j")
        await settle(pilot)
        assert lines.current is not None and lines.current.id == seeded[2]
        engine = open_engine(settings.data_dir)
        try:
            await asyncio.to_thread(
                engine.add, Draft(content="From another shell", created_at=int(NOW))
            )
        finally:
            engine.close()
        for _ in range(60):
            await pilot.pause(0.05)
            if lines.total == len(seeded) + 1 and lines.current is not None:
                break
        await settle(pilot)
        assert lines.total == len(seeded) + 1
        assert lines.current is not None and lines.current.id == seeded[2]
        assert lines.cursor == 3


async def test_timeline_highlight_follows_the_memory_just_saved(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("f3")
        await settle(pilot)
        await pilot.press("j", "j", "j")
        await settle(pilot)
        await save_new(pilot, "Saved from the timeline")
        assert isinstance(app.screen, TimelineScreen)
        lines = app.screen.query_one(MemoryLines)
        for _ in range(100):  # under load the timeline's reload can land after settle() returns
            if lines.current is not None and lines.current.content == "Saved from the timeline":
                break
            await settle(pilot, rounds=1)
            await pilot.pause(0.05)
        current = lines.current
        assert current is not None and current.content == "Saved from the timeline"


async def test_escape_with_changes_asks_and_the_draft_comes_back(make_app, seeded, settings):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("ctrl+n")
        await pilot.pause()
        await pilot.press(*"Half a thought")
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")  # keep editing
        await pilot.pause()
        form = app.screen
        assert isinstance(form, CaptureScreen)
        assert form.query_one("#content", TextArea).text == "Half a thought"
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("y")  # close by mistake
        await settle(pilot)
        assert isinstance(app.screen, SearchScreen)
        assert app.memory_count == len(seeded)
        assert drafts(settings).load() is not None
        await pilot.press("ctrl+n")
        await pilot.pause()
        offer = app.screen
        assert isinstance(offer, ConfirmScreen) and "Half a thought" in offer.question.plain
        await pilot.press("y")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, CaptureScreen)
        assert form.query_one("#content", TextArea).text == "Half a thought"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.memory_count == len(seeded) + 1
        assert drafts(settings).load() is None  # saved: nothing left to offer


async def test_escape_without_changes_closes_at_once(make_app, seeded, settings):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("tab", "e")
        await pilot.pause()
        assert isinstance(app.screen, CaptureScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, SearchScreen)
        assert drafts(settings).load() is None


async def test_a_draft_survives_the_app_closing(make_app, seeded, settings):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("ctrl+n")
        await pilot.pause()
        await pilot.press(*"Typed when the connection dropped")
        app.screen.query_one("#tags", Input).value = "ssh"
        await pilot.pause()
    again = make_app()
    async with again.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert isinstance(again.screen, ConfirmScreen)
        await pilot.press("y")
        await pilot.pause()
        form = again.screen
        assert isinstance(form, CaptureScreen)
        assert form.query_one("#content", TextArea).text == "Typed when the connection dropped"
        assert form.query_one("#tags", Input).value == "ssh"


async def test_declining_the_draft_starts_an_empty_form(make_app, seeded, settings):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("ctrl+n")
        await pilot.pause()
        await pilot.press(*"Not wanted", "escape")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        await pilot.press("ctrl+n")
        await pilot.pause()
        await pilot.press("n")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, CaptureScreen)
        assert form.query_one("#content", TextArea).text == ""
        assert drafts(settings).load() is None


async def test_an_interrupted_edit_comes_back_as_an_edit(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press(*"tomatoes", "tab", "e")
        await pilot.pause()
        app.screen.query_one("#content", TextArea).text = "Planted tomatoes, and peppers"
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        await pilot.press("ctrl+n")
        await pilot.pause()
        await pilot.press("y")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, CaptureScreen)
        assert form.memory is not None and form.memory.id == seeded[2]
        assert form.query_one("#content", TextArea).text == "Planted tomatoes, and peppers"
