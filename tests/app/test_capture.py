"""Capture and edit: the form, validation, tag completion, delete with confirmation."""

from __future__ import annotations

from pilot_helpers import NOW, open_engine, ready, settle
from textual.widgets import Input, Static, TextArea

from ephemera_tui.app.screens.capture import CaptureScreen
from ephemera_tui.app.screens.confirm import ConfirmScreen
from ephemera_tui.app.screens.search import SearchScreen
from ephemera_tui.app.widgets.results import ResultList


async def test_capture_from_search_saves_and_shows_at_once(make_app, seeded, settings):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert isinstance(app.screen, CaptureScreen)
        await pilot.press(*"Swam in the cold sea at dawn")
        app.screen.query_one("#tags", Input).value = "swim sea"
        app.screen.query_one("#importance", Input).value = "240"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, SearchScreen)
        hits = app.screen.query_one(ResultList).hits
        assert hits[0].memory.content == "Swam in the cold sea at dawn"
        assert hits[0].memory.tags == ("swim", "sea")
        assert hits[0].memory.importance == 240
        assert app.memory_count == len(seeded) + 1
    engine = open_engine(settings.data_dir)
    try:
        assert engine.count() == len(seeded) + 1
    finally:
        engine.close()


async def test_capture_is_reachable_from_every_screen(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        for mode in ("f3", "f4"):
            await pilot.press(mode)
            await settle(pilot)
            await pilot.press("ctrl+n")
            await pilot.pause()
            assert isinstance(app.screen, CaptureScreen)
            await pilot.press("escape")
            await pilot.pause()
            assert not isinstance(app.screen, CaptureScreen)


async def test_invalid_form_keeps_what_was_typed(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("ctrl+n")
        await pilot.pause()
        screen = app.screen
        await pilot.press(*"A thought")
        screen.query_one("#importance", Input).value = "999"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is screen
        error = str(screen.query_one("#form-error", Static).render())
        assert "importance" in error and "255" in error
        assert screen.query_one("#content", TextArea).text == "A thought"
        screen.query_one("#importance", Input).value = ""
        screen.query_one("#when", Input).value = "someday maybe never"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is screen
        assert "when" in str(screen.query_one("#form-error", Static).render())


async def test_empty_content_is_refused(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("ctrl+n")
        await pilot.pause()
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, CaptureScreen)
        assert "content" in str(app.screen.query_one("#form-error", Static).render())


async def test_when_accepts_natural_dates(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("ctrl+n")
        await pilot.pause()
        await pilot.press(*"Remembered later")
        app.screen.query_one("#when", Input).value = "yesterday"
        await pilot.press("ctrl+s")
        await settle(pilot)
        hit = next(
            h
            for h in app.screen.query_one(ResultList).hits
            if h.memory.content == "Remembered later"
        )
        assert NOW - 2 * 86400 < hit.memory.created_at < NOW - 86400 + 1


async def test_tag_completion_from_existing_tags(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("ctrl+n")
        await pilot.pause()
        tags = app.screen.query_one("#tags", Input)
        tags.focus()
        await pilot.press(*"work lis")
        await settle(pilot)
        await pilot.press("right")
        assert tags.value == "work lisbon"


async def test_edit_updates_memory(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press(*"tomatoes", "tab", "e")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, CaptureScreen) and screen.memory is not None
        assert screen.memory.id == seeded[2]
        screen.query_one("#content", TextArea).text = "Planted tomatoes, basil and chives"
        await pilot.press("ctrl+s")
        await settle(pilot)
        hit = app.screen.query_one(ResultList).current_hit
        assert hit is not None and hit.memory.id == seeded[2]
        assert hit.memory.content == "Planted tomatoes, basil and chives"
        assert hit.memory.created_at == int(NOW - 2.5 * 86400)  # seconds kept though not shown


async def test_delete_asks_first(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press(*"tomatoes", "tab", "d")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await settle(pilot)
        assert app.memory_count == len(seeded)
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("y")
        await settle(pilot)
        assert app.memory_count == len(seeded) - 1
        ids = [h.memory.id for h in app.screen.query_one(ResultList).hits]
        assert seeded[2] not in ids


async def test_delete_from_edit_form(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press(*"tomatoes", "tab", "e")
        await pilot.pause()
        await pilot.press("ctrl+d")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await settle(pilot)
        assert isinstance(app.screen, SearchScreen)
        assert app.memory_count == len(seeded) - 1


async def test_external_editor_unavailable_is_reported(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("ctrl+n")
        await pilot.pause()
        await pilot.press("ctrl+o")
        await pilot.pause()
        assert isinstance(app.screen, CaptureScreen)
        assert "external editor" in str(app.screen.query_one("#form-error", Static).render())


async def test_save_right_after_fast_typing_keeps_every_key(make_app, seeded):
    """Keys typed faster than the form processes them (a paste, a script) reach the text
    before ctrl+s saves it."""
    from textual import events

    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("ctrl+n")
        await pilot.pause()
        for ch in "burst of keys":
            key = "space" if ch == " " else ch
            app.post_message(events.Key(key, ch))
        app.post_message(events.Key("ctrl+s", None))
        await settle(pilot)
        assert isinstance(app.screen, SearchScreen)
        assert app.screen.query_one(ResultList).hits[0].memory.content == "burst of keys"


async def open_form(pilot) -> CaptureScreen:
    await ready(pilot)
    await pilot.press("ctrl+n")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, CaptureScreen)
    return screen


async def when_hint(pilot, screen: CaptureScreen, typed: str) -> str:
    screen.query_one("#when", Input).value = typed
    for _ in range(100):
        await pilot.pause(0.02)
        text = str(screen.query_one("#when-hint", Static).render())
        if "→" in text or "?" in text:
            break
    await settle(pilot)
    return str(screen.query_one("#when-hint", Static).render())


async def test_when_shows_the_resolved_date_before_saving(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_form(pilot)
        assert "→ now" in await when_hint(pilot, screen, "")
        hint = await when_hint(pilot, screen, "2023-11-02 10:30")
        assert "→ Thu 2 Nov 2023 10:30" in hint
        hint = await when_hint(pilot, screen, "yesterday")
        assert "Mon 13 Nov 2023" in hint and "⚠" not in hint
        hint = await when_hint(pilot, screen, "tomorrow")
        assert "⚠" in hint and "future" in hint
        hint = await when_hint(pilot, screen, "someday maybe never")
        assert "cannot understand" in hint and "Unix seconds" not in hint


async def test_every_problem_is_listed_at_once(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_form(pilot)
        screen.query_one("#importance", Input).value = "999"
        screen.query_one("#confidence", Input).value = "300"
        screen.query_one("#when", Input).value = "someday maybe never"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is screen
        error = str(screen.query_one("#form-error", Static).render())
        for field in ("content", "importance", "confidence", "when"):
            assert field in error
        assert "Unix seconds" not in error
        assert screen.query_one("#importance").has_class("-invalid")


async def test_tab_takes_the_tag_suggestion_and_the_hint_stays(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_form(pilot)
        tags = screen.query_one("#tags", Input)
        tags.focus()
        await pilot.press(*"work li")
        for _ in range(50):
            await pilot.pause(0.02)
            if tags.suggestion:  # type: ignore[attr-defined]
                break
        await pilot.press("tab")
        assert tags.value == "work lisbon"
        assert app.focused is tags
        assert "tab" in str(screen.query_one("#tags-hint", Static).render())
        await pilot.press("tab")  # no suggestion now: on to the next field
        assert app.focused is screen.query_one("#source", Input)


async def test_keys_typed_with_tab_land_in_the_field_focused_after_it(make_app, seeded):
    """A paste or a macro at 0 ms: what follows Tab belongs to the next field."""
    from textual import events

    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_form(pilot)
        for key, char in [("a", "a"), ("b", "b"), ("tab", None)] + [(c, c) for c in "trip"]:
            app.post_message(events.Key(key, char))
        await settle(pilot)
        assert screen.query_one("#content", TextArea).text == "ab"
        assert screen.query_one("#tags", Input).value == "trip"


async def test_external_editor_text_ends_with_a_newline(make_app, seeded, tmp_path, monkeypatch):
    import contextlib

    script = tmp_path / "editor.sh"
    script.write_text('#!/bin/sh\necho "second line" >> "$1"\n')
    script.chmod(0o755)
    monkeypatch.setenv("VISUAL", str(script))
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_form(pilot)
        monkeypatch.setattr(app, "suspend", contextlib.nullcontext)
        await pilot.press(*"first line", "ctrl+o")
        await pilot.pause()
        assert screen.query_one("#content", TextArea).text == "first line\nsecond line"
