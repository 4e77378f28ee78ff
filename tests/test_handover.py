"""The ``ephemera`` program shortens the interpreter's switch interval for its own process;
the engine as a library leaves it alone."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ephemera_tui.engine import Engine, Settings
from ephemera_tui.engine.handover import SWITCH_INTERVAL_S

cli_main = importlib.import_module("ephemera_tui.cli.main")  # the package exports main()


@pytest.fixture
def default_interval() -> Iterator[float]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.005)
    try:
        yield 0.005
    finally:
        sys.setswitchinterval(before)


def test_the_program_hands_the_lock_over_within_a_millisecond(
    default_interval: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[float] = []
    monkeypatch.setattr(cli_main, "app", lambda: seen.append(sys.getswitchinterval()))
    cli_main.main()
    assert seen == [pytest.approx(SWITCH_INTERVAL_S)]
    assert SWITCH_INTERVAL_S <= 0.001


def test_an_engine_in_someone_elses_process_leaves_it_alone(
    default_interval: float, tmp_path: Path
) -> None:
    with Engine(Settings(data_dir=tmp_path, embedding_model="fake-hash-384")) as engine:
        engine.search("anything at all")
    assert sys.getswitchinterval() == pytest.approx(default_interval)
