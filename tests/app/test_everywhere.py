"""App-wide behaviour: help from bindings, palette, keymap, status, live updates, errors."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
from pathlib import Path

from pilot_helpers import NOW, clock, open_engine, ready, settle
from textual.command import CommandPalette
from textual.widgets import Static

from ephemera_tui.app.keys import screen_actions
from ephemera_tui.app.screens.capture import CaptureScreen
from ephemera_tui.app.screens.help import HelpScreen
from ephemera_tui.app.screens.timeline import TimelineScreen
from ephemera_tui.app.widgets.results import ResultList
from ephemera_tui.app.widgets.status import StatusLine
from ephemera_tui.engine import DatabaseError, Draft

ROOT = Path(__file__).resolve().parents[2]


async def test_help_is_generated_from_bindings(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(100, 40)) as pilot:
        await ready(pilot)
        await pilot.press("tab")  # out of the search box, so ? is a key not a letter
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        described = {a.description for a in app.screen.actions}
        for binding in (*type(app).BINDINGS, *app.get_screen_stack()[0].BINDINGS):
            assert binding.description in described
        await pilot.press("escape")
        await pilot.press("f3")
        await settle(pilot)
        await pilot.press("f1")
        await pilot.pause()
        described = {a.description for a in app.screen.actions}
        assert {"Group", "Go to", "This day"} <= described
        assert "Why" not in described


async def test_keymap_from_settings(make_app, seeded, settings):
    remapped = dataclasses.replace(settings, keys={"app.capture": "f12", "search.why": "y"})
    app = make_app(settings=remapped)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("f12")
        await pilot.pause()
        capture = app.screen
        assert isinstance(capture, CaptureScreen)
        await pilot.press("escape")
        await pilot.pause()
        actions = {a.description: a.keys for a in screen_actions(app.screen, app.user_keymap)}
        assert actions["New"] == ("f12",)
        assert actions["Why"] == ("y",)


async def test_palette_offers_screen_actions(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"timeline")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, TimelineScreen)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"go to")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert type(app.screen).__name__ == "PromptScreen"


async def test_status_line_counts(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        status = str(app.screen.query_one(StatusLine).render())
        assert "12 memories" in status and "all synced" in status and "Search" in status


async def test_memory_from_another_process_appears_within_two_seconds(make_app, seeded, settings):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        engine = open_engine(settings.data_dir)  # vectors are held by the app: SQL + outbox only
        try:
            await asyncio.to_thread(
                engine.add, Draft(content="Written by a second shell", created_at=int(NOW))
            )
        finally:
            engine.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 2.0
        results = app.screen.query_one(ResultList)
        while loop.time() < deadline:
            if results.hits and results.hits[0].memory.content == "Written by a second shell":
                break
            await pilot.pause(0.05)
        assert results.hits[0].memory.content == "Written by a second shell"
        assert app.memory_count == len(seeded) + 1


async def test_q_quits_outside_text_fields(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("q")
        assert app.is_running
        await pilot.press("tab", "q")
        await pilot.pause()
        assert not app.is_running


def failing_factory(settings):
    raise DatabaseError("cannot open database at /nowhere: unable to open database file")


async def test_engine_errors_are_notifications(make_app):
    app = make_app(engine_factory=failing_factory)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.3)
        await settle(pilot)
        messages = [n.message for n in app._notifications]
        assert any("unable to open database file" in m for m in messages)
        assert app.is_running
        await pilot.press("ctrl+n")
        await pilot.press(*"hello", "ctrl+s")
        await pilot.pause()
        assert "still opening" in str(app.screen.query_one("#form-error", Static).render())


async def test_theme_from_settings(make_app, settings):
    app = make_app(settings=dataclasses.replace(settings, theme="nord"))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.theme == "nord"


def test_importing_the_app_leaves_heavy_libraries_alone():
    code = (
        "import sys, ephemera_tui.app; "
        "heavy = [m for m in ('sqlalchemy', 'qdrant_client', 'qdrant_edge', 'fastembed', "
        "'ephemera_tui.engine.core') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert out.stdout.strip() == "[]"


def test_clock_is_fixed():
    assert clock() == NOW


async def test_palette_lists_theme_once(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("tab", "ctrl+p")
        await pilot.pause()
        await pilot.press(*"theme")
        await pilot.pause(0.5)
        palette = app.screen
        assert isinstance(palette, CommandPalette)
        from textual.widgets import OptionList

        listing = palette.query_one(OptionList)
        titles = [str(listing.get_option_at_index(i).prompt) for i in range(listing.option_count)]
        assert sum("Theme" in t for t in titles) == 1


async def test_a_chosen_theme_is_kept_across_restarts(make_app, settings):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.theme = "nord"
        await pilot.pause()
    again = make_app()
    async with again.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert again.theme == "nord"
    assert (settings.data_dir / "app-state.json").exists()
    config = Path(settings.data_dir).parent / "config.toml"
    assert not config.exists()  # the user's config file is never written


async def test_an_edited_config_theme_wins_over_an_old_choice(make_app, settings):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.theme = "nord"
        await pilot.pause()
    configured = make_app(settings=dataclasses.replace(settings, theme="gruvbox"))
    async with configured.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert configured.theme == "gruvbox"


def test_keyword_only_notices_put_the_reason_first():
    from ephemera_tui.app.format import short_notice

    notice = short_notice(
        "keyword results only: vector store /tmp/pytest-of-x/pytest-9/test_x0/data/vectors/"
        "ephemera_memory_vectors is open in another process (an open app or worker); "
        "it will index new memories"
    )
    assert notice.startswith("keyword only: open in another process")
    assert "/tmp/" not in notice and "…/ephemera_memory_vectors" in notice


async def test_status_line_says_why_search_is_keyword_only(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        reason = (
            "vector store /very/long/path/to/the/data/dir/vectors/ephemera_memory_vectors is "
            "open in another process (an open app or worker); it will index new memories"
        )
        # The app's own upkeep tick sets vector_state from the engine (here: open, so "");
        # one landing between the assignment and the repaint would undo it, so set it again.
        line = ""
        for _ in range(20):
            app.vector_state = reason
            await pilot.pause()
            line = str(app.screen.query_one(StatusLine).render())
            if app.vector_state == reason:
                break
        assert "keyword only: open in another process" in line
