"""Sliced workers: several workers on one database share the outbox (a lease per slice) and
the cross-check (a claim per range) without doing anything twice; a dead worker's slice or
range is taken over once its lease runs out; an idle sliced worker writes nothing.

In-process tests here (several Worker objects, one engine and vector store, a fixed clock);
three real ``ephemera worker`` processes sharing MariaDB and one vector store are in
test_worker_processes.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from sqlalchemy import event

from ephemera_tui.engine import Draft, Engine
from ephemera_tui.engine.store import Lease, MetaKey
from ephemera_tui.engine.sync.worker import CURSOR_KEY, LAST_FULL_KEY, Worker, health
from ephemera_tui.engine.vectors import VectorPoint
from tests.conftest import FixedClock

SLICES = 4


def _queue(engine: Engine, n: int) -> list[int]:
    """Memories written to SQL only: their vectors wait in the outbox."""
    return [m.id for m in engine.store.insert([Draft(f"queued note {i}") for i in range(n)])]


@pytest.fixture
def upserts(engine: Engine) -> Iterator[Counter[int]]:
    """How often each point is written to the vector store."""
    vectors = engine.vectors()
    assert vectors is not None
    counted: Counter[int] = Counter()
    original = vectors.upsert

    def upsert(points: Any) -> None:
        counted.update(p.id for p in points)
        original(points)

    vectors.upsert = upsert  # type: ignore[method-assign]
    yield counted


def _worker(engine: Engine, owner: str, **kwargs: Any) -> Worker:
    return Worker(
        engine, slices=SLICES, owner=owner, lease_seconds=30, check_slice_size=10, **kwargs
    )


def test_workers_split_the_outbox_by_slice_without_repeats(
    engine: Engine, clock: FixedClock, upserts: Counter[int]
) -> None:
    ids = _queue(engine, 40)
    store = engine.store
    # "busy" is draining slice 1 right now: nobody else may touch its rows.
    busy = Lease(
        store, engine.clock, key=f"{MetaKey.OUTBOX_SLICE_LEASE}1", seconds=30, owner="busy"
    )
    assert busy.claim()
    one = _worker(engine, "one")
    first = one.run_once()
    assert first.ran and first.synced == sum(1 for i in ids if i % SLICES != 1)
    assert store.pending_ids() == {i for i in ids if i % SLICES == 1}
    # Nothing due for "two" but slice 1, still held: it waits and writes nothing there.
    two = _worker(engine, "two")
    assert two.run_once().synced == 0
    clock.advance(31)  # "busy" died without releasing: its lease runs out
    taken = two.run_once()
    assert taken.synced == sum(1 for i in ids if i % SLICES == 1)
    assert engine.pending() == 0
    assert set(upserts) == set(ids) and set(upserts.values()) == {1}
    holder = Lease.parse(store.get_meta(f"{MetaKey.OUTBOX_SLICE_LEASE}1"))
    assert holder is not None and holder[0] == "two" and holder[1] == 0  # released after


def test_workers_hand_out_cross_check_ranges_once_each(engine: Engine, clock: FixedClock) -> None:
    ids = [engine.add(Draft(f"memory {i}")).id for i in range(25)]
    workers = [_worker(engine, name) for name in ("a", "b", "c")]
    runs = [w.run_once() for w in workers]
    # Three ranges of up to 10 ids, one per worker: the pass is done after one round.
    assert sorted(r.checked for r in runs) == [5, 10, 10]
    assert sum(r.wrapped for r in runs) == 1
    assert store_meta(engine, CURSOR_KEY) == "-1" and store_meta(engine, LAST_FULL_KEY)
    assert not engine.store.meta_with_prefix(MetaKey.CHECK_CLAIM)
    # The pass is recent: nobody has anything to do, and nobody writes.
    writes = _count_writes(engine)
    for _ in range(3):
        for w in workers:
            assert w.run_once().idle
    assert writes() == 0
    assert len(ids) == 25


def test_a_dead_workers_range_is_taken_over_after_its_lease(
    engine: Engine, clock: FixedClock
) -> None:
    ids = [engine.add(Draft(f"memory {i}")).id for i in range(25)]
    store = engine.store
    # "dead" claimed the first range and stopped there.
    expires = int(clock.now * 1000) + 30_000
    key = f"{MetaKey.CHECK_CLAIM}-1:{ids[9]}"
    assert store.claim_range(CURSOR_KEY, None, str(ids[9]), key, f"dead|{expires}")
    alive = _worker(engine, "alive")
    runs = [alive.run_once(), alive.run_once(), alive.run_once()]
    assert [r.checked for r in runs] == [10, 5, 0]  # the other two ranges; the pass waits
    assert store_meta(engine, CURSOR_KEY) == "-2" and not runs[1].wrapped
    clock.advance(31)
    taken = alive.run_once()
    assert taken.checked == 10 and taken.wrapped
    assert store_meta(engine, CURSOR_KEY) == "-1"


def test_sliced_workers_find_and_repair_damage(engine: Engine, clock: FixedClock) -> None:
    ids = [engine.add(Draft(f"memory {i} about subject {i % 7}")).id for i in range(25)]
    vectors = engine.vectors()
    assert vectors is not None
    vectors.delete([ids[3], ids[14]])
    payload = vectors.payloads([ids[20]])[ids[20]]
    stale = {**payload, "hash": "0" * 16}
    vectors.upsert([VectorPoint(ids[20], np.ones(384, dtype=np.float32), stale)])
    vectors.upsert([VectorPoint(ids[8] + 1, np.ones(384, dtype=np.float32), {"hash": "x"})])
    workers = [_worker(engine, name) for name in ("a", "b")]
    found = 0
    for _ in range(4):
        for w in workers:
            found += w.run_once().found
    assert found == 4
    assert engine.check().problems == 0 and engine.pending() == 0
    state = health(engine)
    assert state.mismatches_found == 4 and state.mismatches_repaired == 4


def test_one_slice_keeps_the_single_lease(engine: Engine) -> None:
    """worker_slices = 1 (the default): one worker at a time does everything."""
    _queue(engine, 6)
    one = Worker(engine, owner="one", lease_seconds=30, check_slice_size=10)
    two = Worker(engine, owner="two", lease_seconds=30, check_slice_size=10)
    assert one.slices == 1 and one.run_once().synced == 6
    engine.store.insert([Draft("another")])
    standby = two.run_once()
    assert not standby.ran and standby.holder == "one"
    assert not engine.store.meta_with_prefix(MetaKey.OUTBOX_SLICE_LEASE)


def store_meta(engine: Engine, key: str) -> str | None:
    return engine.store.get_meta(key)


def _count_writes(engine: Engine) -> Any:
    """A function returning how many INSERT/UPDATE/DELETE statements ran since the call."""
    seen = [0]

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().split(" ", 1)[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            seen[0] += 1

    event.listen(engine.store.engine, "before_cursor_execute", before)
    return lambda: seen[0]
