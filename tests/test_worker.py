"""The background worker: drain, sliced cross-check with a resume point, repair, scheduled
backups, the lease that keeps two workers from doing the same work, and health data."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np

from ephemera_tui.engine import Draft, Engine, Settings
from ephemera_tui.engine.backup.sets import list_backups
from ephemera_tui.engine.sync.worker import (
    CURSOR_KEY,
    Lease,
    Worker,
    check_slice,
    health,
)
from ephemera_tui.engine.vectors import VectorPoint
from tests.conftest import FixedClock
from tests.helpers import invoke_ephemera


def add_many(engine: Engine, n: int) -> list[int]:
    return [engine.add(Draft(content=f"memory {i} about subject {i % 7}")).id for i in range(n)]


def damage(engine: Engine, ids: list[int]) -> dict[str, list[int]]:
    """Break the vector side four ways behind the engine's back."""
    vectors = engine.vectors()
    assert vectors is not None
    missing, stale, wrong = [ids[2], ids[17]], [ids[5]], [ids[11]]
    vectors.delete(missing)
    payload = vectors.payloads(stale + wrong)
    vectors.upsert(
        [
            VectorPoint(
                stale[0], np.ones(384, dtype=np.float32), {**payload[stale[0]], "hash": "0" * 16}
            )
        ]
    )
    vectors.upsert(
        [
            VectorPoint(
                wrong[0],
                np.ones(384, dtype=np.float32),
                {**payload[wrong[0]], "model": "some-older-model"},
            )
        ]
    )
    orphan = ids[8] + 1  # an id between two memories, in no table
    vectors.upsert([VectorPoint(orphan, np.ones(384, dtype=np.float32), {"hash": "x"})])
    return {"missing": missing, "stale": stale, "wrong_model": wrong, "orphaned": [orphan]}


def test_worker_drains_checks_in_slices_and_repairs(engine: Engine, clock: FixedClock) -> None:
    ids = add_many(engine, 25)
    broken = damage(engine, ids)
    # Writes that could not be indexed yet wait in the outbox (SQL only, no push).
    queued = engine.store.insert([Draft(content="queued while the store was away")])
    assert engine.pending() == 1

    worker = Worker(engine, check_slice_size=10)
    first = worker.run_once()
    assert first.ran and first.synced == 1 and first.pending == 0
    assert first.checked == 10
    assert engine.store.get_meta(CURSOR_KEY) == str(ids[9])
    # The first slice holds ids[2] (missing), ids[5] (stale) and the orphan after ids[8].
    assert first.found == 3 and first.repaired == 3
    second = worker.run_once()
    assert second.checked == 10 and second.found == 2  # ids[11] wrong model, ids[17] missing
    third = worker.run_once()
    assert third.checked == 6 and third.wrapped  # 5 left + the queued one, then back to start
    assert engine.store.get_meta(CURSOR_KEY) == "-1"
    assert engine.check().problems == 0
    found = health(engine).to_dict()
    assert found["mismatches_found"] == 5 == sum(len(v) for v in broken.values())
    assert found["mismatches_repaired"] == 5
    assert found["last_full_check"] is not None and found["pending"] == 0
    assert engine.search("queued store").hits[0].memory.id == queued[0].id


def test_check_slice_ignores_pending_and_racing_writes(engine: Engine) -> None:
    ids = add_many(engine, 5)
    engine.store.requeue([ids[1]], "upsert")  # pending: not a problem even if its vector lags
    engine.vectors().delete([ids[1]])  # type: ignore[union-attr]
    report = check_slice(engine, -1, 100, repair=False)
    assert report.problems == 0 and report.upto_id is None and report.checked == 5


def test_lease_one_holder_expiry_and_release(settings: Settings) -> None:
    clock = FixedClock()
    with Engine(settings, clock=clock) as engine:
        a = Lease(engine.store, engine.clock, seconds=30, owner="a")
        b = Lease(engine.store, engine.clock, seconds=30, owner="b")
        assert a.claim()
        assert not b.claim()
        assert a.claim()  # renewal
        assert b.holder() == ("a", int(clock.now * 1000) + 30_000)
        clock.advance(31)  # a died without releasing: its lease runs out
        assert b.claim() and not a.claim()
        b.release()
        assert a.claim()


def test_lease_race_has_exactly_one_winner(settings: Settings) -> None:
    """Eight threads, each with its own engine (own connections), claim at the same moment:
    first with no lease row (INSERT race), then over an expired lease (conditional UPDATE)."""
    clock = FixedClock()
    engines = [Engine(settings, clock=clock) for _ in range(8)]
    try:
        for round_no in range(4):
            barrier = threading.Barrier(len(engines))
            wins: list[str] = []

            def contend(
                engine: Engine,
                n: int,
                r: int = round_no,
                barrier: threading.Barrier = barrier,
                wins: list[str] = wins,
            ) -> None:
                lease = Lease(engine.store, engine.clock, seconds=60, owner=f"w{n}-r{r}")
                barrier.wait()
                if lease.claim():
                    wins.append(lease.owner)

            threads = [threading.Thread(target=contend, args=(e, n)) for n, e in enumerate(engines)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert len(wins) == 1, wins
            lease_value = engines[0].store.get_meta("worker_lease")
            assert lease_value is not None
            assert lease_value.startswith(wins[0] + "|")
            clock.advance(61)  # the winner "dies": its lease expires before the next round
    finally:
        for e in engines:
            e.close()


def test_two_workers_take_turns_and_do_not_repeat_work(settings: Settings) -> None:
    clock = FixedClock()
    with Engine(settings, clock=clock) as engine:
        add_many(engine, 12)
        one = Worker(engine, check_slice_size=5, owner="one", lease_seconds=30)
        two = Worker(engine, check_slice_size=5, owner="two", lease_seconds=30)
        runs = [one.run_once(), two.run_once(), one.run_once(), two.run_once()]
        assert [r.ran for r in runs] == [True, False, True, False]
        assert runs[1].holder == "one"
        # One worker walks the slices once: 5, 5, no repeat of the same slice.
        assert [r.checked for r in runs if r.ran] == [5, 5]
        clock.advance(31)  # "one" stops renewing: "two" takes over where the cursor is
        took_over = two.run_once()
        assert took_over.ran and took_over.checked == 2 and took_over.wrapped


def test_run_forever_stops_promptly_and_releases(engine: Engine) -> None:
    add_many(engine, 3)
    runs: list[object] = []
    worker = Worker(engine, interval=0.05, on_run=runs.append)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run_forever, args=(stop,), daemon=True)
    thread.start()
    deadline = time.time() + 20
    while len(runs) < 3 and time.time() < deadline:
        time.sleep(0.02)
    stop.set()
    thread.join(10)
    assert not thread.is_alive() and len(runs) >= 3
    holder = worker.lease.holder()
    assert holder is not None and holder[1] == 0  # released: another worker may start at once


def test_worker_standby_when_vectors_held_elsewhere(settings: Settings, clock: FixedClock) -> None:
    with Engine(settings, clock=clock) as holder, Engine(settings, clock=clock) as other:
        holder.vectors()
        other.add(Draft(content="written while the store is held"))
        blocked = Worker(other, owner="blocked").run_once()
        assert blocked.errors and "another process" in blocked.errors[0]
        assert blocked.pending == 1
        # It gave the lease up, so the holder's worker runs and indexes the write.
        done = Worker(holder, owner="holder").run_once()
        assert done.ran and done.synced == 1 and done.pending == 0


def test_scheduled_backups_and_retention(settings: Settings, tmp_path: Path) -> None:
    clock = FixedClock()
    root = tmp_path / "backups"
    with Engine(settings, clock=clock) as engine:
        add_many(engine, 4)
        worker = Worker(engine, backup_dir=root, backup_every=3600, keep_daily=2, keep_weekly=0)
        assert worker.run_once().backup is not None
        clock.advance(600)
        assert worker.run_once().backup is None  # not due yet
        for _ in range(3):
            clock.advance(86_400)
            assert worker.run_once().backup is not None
        assert len(list_backups(root)) == 2
        info = health(engine).to_dict()["last_backup"]
        assert info["memories"] == 4 and info["age_s"] == 0


def test_a_scheduled_backup_waits_for_the_user_to_pause(settings: Settings, tmp_path: Path) -> None:
    idle = [False]
    with Engine(settings, clock=FixedClock()) as engine:
        add_many(engine, 2)
        worker = Worker(engine, backup_dir=tmp_path / "backups", idle=lambda: idle[0])
        assert worker.run_once().backup is None  # due, but the user is typing
        idle[0] = True
        assert worker.run_once().backup is not None


def test_worker_and_check_commands(settings: Settings, cli_env: dict[str, str]) -> None:
    with Engine(settings) as engine:
        engine.store.insert([Draft(content="a memory for the worker")])  # queued, not indexed
    once = invoke_ephemera("worker", "--once", "--json", "--no-backup", env=cli_env)
    assert once.returncode == 0, once.stderr
    run = json.loads(once.stdout.strip().splitlines()[-1])
    assert run["ran"] and run["synced"] == 1 and run["checked"] == 1
    check = invoke_ephemera("check", "--json", env=cli_env)
    assert check.returncode == 0, check.stderr
    data = json.loads(check.stdout)
    assert data["problems"] == 0
    assert data["health"]["pending"] == 0
    assert data["health"]["last_full_check"] is not None
    assert data["health"]["worker"]["last_run"]["owner"]
    assert data["health"]["last_backup"] is None
