"""Snapshots of every screen at 80x24 and 120x40 (fixed clock, UTC, no cursor blink)."""

from __future__ import annotations

import pytest
from pilot_helpers import ready, settle

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]


async def home(pilot) -> None:
    await ready(pilot)


async def search_with_why(pilot) -> None:
    await ready(pilot)
    await pilot.press(*"garden", "tab", "w")
    await settle(pilot)


async def timeline(pilot) -> None:
    await ready(pilot)
    await pilot.press("f3")
    await settle(pilot)
    await pilot.press("j", "j", "j")
    await settle(pilot)


async def timeline_by_month(pilot) -> None:
    await ready(pilot)
    await pilot.press("f3")
    await settle(pilot)
    await pilot.press("u", "u")
    await settle(pilot)


async def graph(pilot) -> None:
    await ready(pilot)
    await pilot.press("tab", "o")
    await settle(pilot)


async def capture(pilot) -> None:
    await ready(pilot)
    await pilot.press("ctrl+n")
    await settle(pilot)
    await pilot.press(*"A new [bold]thought[/bold]")
    await pilot.pause()


async def capture_when(pilot) -> None:
    from textual.widgets import Input, Static

    await capture(pilot)
    form = pilot.app.screen
    form.query_one("#when", Input).value = "yesterday 18:00"
    for _ in range(100):
        await pilot.pause(0.02)
        if "→ Mon" in str(form.query_one("#when-hint", Static).render()):
            break
    await settle(pilot)


async def reader(pilot) -> None:
    await ready(pilot)
    await pilot.press("tab", "enter")
    await settle(pilot)


async def search_re(pilot) -> None:
    await ready(pilot)
    await pilot.press(*"Re: planning meeting")
    await settle(pilot)


async def edit(pilot) -> None:
    await ready(pilot)
    await pilot.press("tab", "e")
    await settle(pilot)


async def confirm_delete(pilot) -> None:
    await ready(pilot)
    await pilot.press("tab", "d")
    await settle(pilot)


async def help_search(pilot) -> None:
    await ready(pilot)
    await pilot.press("f1")
    await settle(pilot)


async def on_this_day(pilot) -> None:
    await ready(pilot)
    await pilot.press("f3")
    await settle(pilot)
    await pilot.press("o")
    await settle(pilot)


SCENES = {
    "home": home,
    "search_why": search_with_why,
    "timeline": timeline,
    "timeline_month": timeline_by_month,
    "graph": graph,
    "capture": capture,
    "capture_when": capture_when,
    "reader": reader,
    "search_re": search_re,
    "edit": edit,
    "confirm_delete": confirm_delete,
    "help": help_search,
    "on_this_day": on_this_day,
}


@pytest.mark.parametrize("scene", ["home", "graph", "timeline"])
def test_screen_without_colour(scene, snap_compare, make_app, seeded, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app()
    assert app.no_color
    assert snap_compare(app, terminal_size=(80, 24), run_before=SCENES[scene])


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("scene", list(SCENES))
def test_screen(scene, size, snap_compare, make_app, seeded):
    assert snap_compare(make_app(), terminal_size=size, run_before=SCENES[scene])
