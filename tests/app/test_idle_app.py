"""An open app that nobody touches writes nothing to the database (its upkeep loop ticks every
``sync_interval`` and finds nothing to do)."""

from __future__ import annotations

from pilot_helpers import ready, settle
from sqlalchemy import event


async def test_an_idle_app_writes_nothing(make_app, seeded):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        for _ in range(50):  # the first ticks drain the outbox and run a cross-check pass
            await pilot.pause(0.1)
            run = app.upkeep.last_run if app.upkeep is not None else None
            if run is not None and run.idle:
                break
        assert app.upkeep is not None and app.upkeep.last_run is not None
        assert app.upkeep.last_run.idle
        writes: list[str] = []

        def seen(_c: object, _cur: object, statement: str, *_a: object) -> None:
            if statement.lstrip().split(" ", 1)[0].upper() in ("INSERT", "UPDATE", "DELETE"):
                writes.append(statement)

        event.listen(app.engine.store.engine, "before_cursor_execute", seen)
        try:
            await pilot.pause(3.0)  # 15 ticks of the 0.2 s upkeep loop in these tests
            await settle(pilot)
        finally:
            event.remove(app.engine.store.engine, "before_cursor_execute", seen)
        assert writes == []
