"""The search box while the MeiliSearch migration routes searches (the router must take the
engine's exact arguments: the app's first pass asks for keyword results only)."""

from __future__ import annotations

import inspect
from dataclasses import replace

from pilot_helpers import ready, settle

from ephemera_tui.app.widgets.results import ResultList
from ephemera_tui.engine import Engine
from ephemera_tui.migration.live import Router


def test_router_takes_the_engines_search_arguments() -> None:
    assert inspect.signature(Router.search) == inspect.signature(Engine.search)


async def test_typing_with_the_migration_configured_searches(make_app, settings, seeded):
    routed = replace(
        settings,
        meilisearch={
            "url": "http://127.0.0.1:9",  # nothing listens: reads stay with Ephemera
            "index": "memories",
            "read_mode": "ephemera",
            "shadow": False,
            "timeout": 0.2,
        },
    )
    app = make_app(settings=routed)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        assert isinstance(app.engine.search_router, Router)
        await pilot.press(*"lisbon")
        await settle(pilot)
        hits = app.screen.query_one(ResultList).hits
        assert seeded[0] in [h.memory.id for h in hits]
        assert not [n for n in app._notifications if n.severity == "error"]
