"""An open app serves the other processes on its data dir: a CLI search in another process
gets hybrid results (not keyword only), and a memory added or edited there shows up in the
app without a keypress."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from pilot_helpers import ready, settle

from ephemera_tui.app.widgets.results import ResultList


def cli_env(settings, tmp_path: Path) -> dict[str, str]:
    (tmp_path / "none.toml").write_text("")
    return {
        **os.environ,
        "EPHEMERA_DATA_DIR": str(settings.data_dir),
        "EPHEMERA_EMBEDDING_MODEL": settings.embedding_model,
        "EPHEMERA_CONFIG": str(tmp_path / "none.toml"),
    }


async def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "ephemera_tui.cli", *args]
    return await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, text=True, timeout=120
    )


async def test_cli_processes_are_served_by_the_open_app(make_app, settings, seeded, tmp_path):
    env = cli_env(settings, tmp_path)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        for _ in range(100):
            if getattr(app, "service", None) is not None:
                break
            await pilot.pause(0.05)
        assert app.service is not None
        first = await run_cli(env, "search", "lisbon", "--json")
        second = await run_cli(env, "search", "lisbon", "--json")
        assert first.returncode == 0, first.stderr
        assert "keyword results only" not in first.stderr + second.stderr
        hits = json.loads(first.stdout)
        assert hits and hits == json.loads(second.stdout)
        assert any(h["semantic_rank"] for h in hits)  # by meaning too, as the app searches

        added = await run_cli(env, "add", "A postcard from another shell")
        assert added.returncode == 0, added.stderr
        new_id = int(added.stdout.strip())
        for _ in range(40):  # within 2 s
            await pilot.pause(0.05)
            await settle(pilot, rounds=1)
            ids = [h.memory.id for h in app.screen.query_one(ResultList).hits]
            if new_id in ids:
                break
        assert new_id in ids

        edited = await run_cli(env, "edit", str(new_id), "--content", "A postcard, edited")
        assert edited.returncode == 0, edited.stderr
        for _ in range(40):
            await pilot.pause(0.05)
            await settle(pilot, rounds=1)
            texts = [h.memory.content for h in app.screen.query_one(ResultList).hits]
            if "A postcard, edited" in texts:
                break
        assert "A postcard, edited" in texts
