"""Idle costs nothing: an upkeep loop with no work claims no lease and writes no row, and a
second process that finds the vector store held does not load the embedding model first."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event

from ephemera_tui.engine import Draft, Engine, Settings
from ephemera_tui.engine.sync.worker import Worker

from .conftest import FixedClock


@contextmanager
def counting_writes(engine: Engine) -> Iterator[list[str]]:
    """Every INSERT, UPDATE, DELETE or REPLACE the engine's SQL pool runs meanwhile."""
    writes: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.lstrip().split(" ", 1)[0].upper() in ("INSERT", "UPDATE", "DELETE", "REPLACE"):
            writes.append(statement)

    event.listen(engine.store.engine, "before_cursor_execute", seen)
    try:
        yield writes
    finally:
        event.remove(engine.store.engine, "before_cursor_execute", seen)


def test_an_idle_upkeep_loop_writes_nothing(settings: Settings, clock: FixedClock) -> None:
    with Engine(settings, clock=clock) as engine:
        for n in range(30):
            engine.add(Draft(content=f"memory {n}"))
        worker = Worker(engine, interval=1.0, check_slice_size=10)
        for _ in range(10):  # drain and one full cross-check pass (these write)
            if worker.run_once().idle:
                break
        with counting_writes(engine) as writes:
            runs = []
            for _ in range(120):  # two minutes of a 1 s upkeep loop
                clock.advance(1.0)
                runs.append(worker.run_once())
        assert writes == []
        assert all(r.idle and not r.errors for r in runs)
        clock.advance(3600)  # the next cross-check pass is due: work again
        assert not worker.run_once().idle


def test_a_held_store_is_found_before_the_model_loads(settings: Settings) -> None:
    with Engine(settings) as holder, Engine(settings) as other:
        assert holder.vectors() is not None
        assert other.vectors() is None
        assert "another process" in other.vector_status
        assert other.loaded_embedder is None  # the model was never loaded for nothing
