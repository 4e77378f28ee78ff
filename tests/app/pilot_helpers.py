"""Shared test data and helpers for the app tests: fixed clock, seed memories, waiting."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from textual.worker import WorkerCancelled, WorkerError, WorkerFailed

from ephemera_tui.engine import Draft, Engine, Settings

NOW = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
DAY = 86400

INTERACTIVE = {"edit", "delete", "jump-prompt", "link-picker", "on-this-day-pick", "conflict"}
"""Worker groups that wait for the user (a modal answer); tests never wait for them."""

SEED = [
    # (content, days ago, source, importance, tags, notes)
    (
        "Coffee with Ana at the corner cafe; she is moving to Lisbon",
        0.1,
        "chat",
        200,
        ("friends", "lisbon"),
        "Ask about the flat",
    ),
    (
        "Ana sent photos from Lisbon: blue tiles everywhere",
        1.2,
        "chat",
        150,
        ("friends", "lisbon"),
        None,
    ),
    ("Planted tomatoes and basil in the raised garden bed", 2.5, "note", 90, ("garden",), None),
    (
        "Long walk by the river thinking about the garden plan",
        3.4,
        "note",
        60,
        ("walk", "garden"),
        None,
    ),
    (
        "Quarterly planning meeting: ship search before the timeline",
        5.0,
        "meeting",
        230,
        ("work", "planning"),
        "Owner: me",
    ),
    ("Fixed the flaky sync test; the outbox drained twice", 8.0, "git", 120, ("work",), None),
    (
        "Read about [bold]Rich markup[/bold] and \x1b[31mred escape\x1b[0m codes",
        12.0,
        "web",
        40,
        ("reading", "terminal"),
        None,
    ),
    (
        "Dinner with the family; grandma told the river story again",
        20.0,
        "note",
        180,
        ("family",),
        None,
    ),
    ("Idea: a journal that links memories by meaning", 40.0, "note", 250, ("ideas",), None),
    ("Bought a notebook for sketching gardens", 70.0, "note", 30, ("sketch", "garden"), None),
    ("Same day last year: first coffee at the corner cafe", 365.0, "note", 100, ("friends",), None),
    ("Two years ago today: moved into the flat by the river", 730.0, "note", 210, ("home",), None),
]


def clock() -> float:
    """The fixed clock every test runs at."""
    return NOW


def open_engine(data_dir: Path) -> Engine:
    """An engine on the test data directory, at the fixed clock."""
    return Engine(Settings(data_dir=data_dir, embedding_model="fake-hash-384"), clock=clock)


def seed(data_dir: Path, extra: int = 0) -> list[int]:
    """Write the seed memories (plus ``extra`` filler ones) and a few links; return their ids."""
    engine = open_engine(data_dir)
    try:
        ids = []
        for content, days, source, importance, tags, notes in SEED:
            memory = engine.add(
                Draft(
                    content=content,
                    created_at=int(NOW - days * DAY),
                    source=source,
                    importance=importance,
                    confidence=200,
                    tags=tags,
                    notes=notes,
                )
            )
            ids.append(memory.id)
        if extra:
            engine.import_drafts(
                (
                    Draft(
                        content=f"filler memory number {n} about nothing much",
                        created_at=int(NOW - 100 * DAY - n * 3600),
                        source="bulk",
                    ),
                    None,
                )
                for n in range(extra)
            )
        engine.link(ids[0], ids[1])
        engine.link(ids[3], ids[2])
        engine.link(ids[8], ids[0])
        engine.sync()
    finally:
        engine.close()
    return ids


async def settle(pilot: Any, rounds: int = 3) -> None:
    """Let engine workers finish and the screen catch up (never waits on open dialogs)."""
    app = pilot.app
    for _ in range(rounds):
        busy = [
            w
            for w in app.workers
            if w.group not in INTERACTIVE and not (w.name or "").startswith("action_")
        ]
        for worker in busy:
            with contextlib.suppress(WorkerCancelled, WorkerFailed, WorkerError):
                await worker.wait()
        await pilot.pause()


async def ready(pilot: Any) -> None:
    """Wait until the engine is open and the first screen has its data."""
    app = pilot.app
    for _ in range(250):
        if app.engine is not None and app.memory_count is not None:
            break
        await pilot.pause(0.02)
    await settle(pilot)
