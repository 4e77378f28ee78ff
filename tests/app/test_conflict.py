"""No lost edits: when the memory being edited is changed elsewhere meanwhile, saving shows
both versions and lets the user choose instead of overwriting."""

from __future__ import annotations

from pilot_helpers import ready, settle
from textual.widgets import TextArea

from ephemera_tui.app.screens.capture import CaptureScreen
from ephemera_tui.app.screens.conflict import ConflictScreen
from ephemera_tui.engine import Draft


async def open_edit_form(app, pilot):
    await pilot.press(*"tomatoes", "tab", "e")
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, CaptureScreen) and screen.memory is not None
    return screen


async def test_a_stale_save_asks_and_keeps_both(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        form = await open_edit_form(app, pilot)
        memory = form.memory
        # Another shell edits the same memory meanwhile.
        app.engine.update(memory.id, Draft.from_memory(memory).with_changes(content="theirs"))
        form.query_one("#content", TextArea).text = "mine"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, ConflictScreen)
        assert app.screen.theirs.content == "theirs" and app.screen.mine == "mine"
        await pilot.press("t")  # keep theirs
        await settle(pilot)
        assert app.engine.get(memory.id).content == "theirs"


async def test_saving_mine_over_the_newer_version_is_a_choice(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        form = await open_edit_form(app, pilot)
        memory = form.memory
        app.engine.update(memory.id, Draft.from_memory(memory).with_changes(content="theirs"))
        form.query_one("#content", TextArea).text = "mine"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, ConflictScreen)
        await pilot.press("m")
        await settle(pilot)
        stored = app.engine.get(memory.id)
        assert stored.content == "mine" and stored.revision == memory.revision + 2
