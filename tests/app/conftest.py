"""Hermetic fixtures for the app tests: temporary data dir, fixed clock, UTC, fake embedder."""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ["TZ"] = "UTC"
time.tzset()
os.environ.pop("NO_COLOR", None)
sys.path.insert(0, str(Path(__file__).parent))
ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from pilot_helpers import clock, seed  # noqa: E402

from ephemera_tui.app import EphemeraApp  # noqa: E402
from ephemera_tui.engine import Settings  # noqa: E402
from tests.helpers import copy_sparse  # noqa: E402


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings pointing at a fresh temporary data directory, with the fake embedder."""
    return Settings(
        data_dir=tmp_path / "data",
        embedding_model="fake-hash-384",
        sync_interval=0.2,
        backup_every_hours=0,  # no scheduled backups in UI tests
        fusion="rrf",  # pinned: the "why this hit" snapshots show the fused score
        rrf_k=60,
    )


@pytest.fixture(scope="session")
def seed_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[int]]:
    """Seed once per session; tests get a copy (seeding takes a second, copying milliseconds)."""
    template = tmp_path_factory.mktemp("seed") / "data"
    return template, seed(template)


@pytest.fixture
def seeded(settings: Settings, seed_template: tuple[Path, list[int]]) -> list[int]:
    """Ids of the seed memories, in seed order (index 0 is the newest memory)."""
    template, ids = seed_template
    shutil.copytree(template, settings.data_dir, copy_function=copy_sparse)
    return ids


@pytest.fixture
def make_app(settings: Settings) -> Callable[..., EphemeraApp]:
    """Build apps with the fixed clock and no cursor blink."""

    def build(**overrides: object) -> EphemeraApp:
        chosen = overrides.pop("settings", settings)
        return EphemeraApp(chosen, clock=clock, blink=False, **overrides)  # type: ignore[arg-type]

    return build
