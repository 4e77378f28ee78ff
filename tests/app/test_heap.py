"""The ``ephemera`` program freezes start-up's objects out of the collector's full passes once
its engine is ready; an app built without asking (as in every other test) leaves the heap be."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from pilot_helpers import ready

from ephemera_tui.engine.heap import settle


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """Start and end with nothing frozen, so the rest of the run collects as usual."""
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_settle_takes_what_lives_now_out_of_the_walks(unfrozen: None) -> None:
    before: list[object] = [[]]  # lists are always tracked
    frozen = settle()
    after: list[object] = [[]]
    walked = {id(o) for o in gc.get_objects()}
    assert frozen > 10_000  # modules, classes, functions: the process's start-up
    assert id(before) not in walked
    assert id(after) in walked


async def test_the_program_settles_once_the_engine_is_ready(make_app, seeded, unfrozen) -> None:
    app = make_app(settle_heap=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        for _ in range(250):  # the engine worker settles after the vector store opens
            if gc.get_freeze_count():
                break
            await pilot.pause(0.02)
        assert gc.get_freeze_count() > 10_000
        assert id(app.engine) not in {id(o) for o in gc.get_objects()}


async def test_an_app_in_a_shared_process_leaves_the_heap_be(make_app, seeded, unfrozen) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.pause(0.5)
        assert gc.get_freeze_count() == 0
