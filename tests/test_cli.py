"""The ``ephemera`` command: happy paths and bad input in-process (Typer's CliRunner), and two
real processes where a second process is the point."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import invoke_ephemera, run_ephemera


def run(
    env: dict[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``ephemera ARGS`` in this process (see tests/helpers.py)."""
    return invoke_ephemera(*args, env=env, input=stdin)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_add_search_show_edit_delete(cli_env: dict[str, str]) -> None:
    added = run(
        cli_env,
        "add",
        "Hiked to the alpine lake",
        "-t",
        "trip",
        "--at",
        "2024-05-01",
        "--importance",
        "200",
        "--note",
        "bring a jacket next time",
    )
    assert added.returncode == 0, added.stderr
    memory_id = int(added.stdout.strip())
    other = int(run(cli_env, "add", "-", "--link", str(memory_id), stdin="Bought boots\n").stdout)

    found = run(cli_env, "search", "alpine tag:trip", "--json")
    hits = json.loads(found.stdout)
    assert hits[0]["id"] == memory_id
    assert {
        "id",
        "content",
        "created_at",
        "source",
        "importance",
        "confidence",
        "tags",
        "notes",
        "associations",
        "score",
    } <= set(hits[0])
    assert hits[0]["notes"] == "bring a jacket next time"

    shown = run(cli_env, "show", str(memory_id))
    assert "alpine lake" in shown.stdout and f"linked from: {other}" in shown.stdout

    edited = run(cli_env, "edit", str(memory_id), "--content", "Swam in the alpine lake")
    assert edited.returncode == 0, edited.stderr
    assert json.loads(run(cli_env, "show", str(memory_id), "--json").stdout)["content"] == (
        "Swam in the alpine lake"
    )
    deleted = run(cli_env, "delete", str(memory_id), "--yes")
    assert deleted.returncode == 0
    assert json.loads(run(cli_env, "show", str(other), "--json").stdout)["associations"] == []
    stats = json.loads(run(cli_env, "stats", "--json").stdout)
    assert stats["memories"] == 1 and stats["pending"] == 0
    assert run(cli_env, "check").returncode == 0


def test_import_export_round_trip(cli_env: dict[str, str], tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    lines = [
        {"content": "first", "created_at": "2024-01-02T03:04:05+00:00", "tags": ["x"]},
        {"content": "second", "created_at": 1_700_000_000_000, "source": "chat", "importance": 7},
        {"content": "third", "created_at": 1_700_000_001, "notes": "n", "confidence": 3},
    ]
    source.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    first = run(cli_env, "import", str(source), "--json")
    assert json.loads(first.stdout)["imported"] == 3, first.stderr
    again = run(cli_env, "import", str(source), "--json")
    assert json.loads(again.stdout)["imported"] == 0
    exported = run(cli_env, "export").stdout.splitlines()
    records = [json.loads(line) for line in exported]
    assert sorted(r["content"] for r in records) == ["first", "second", "third"]
    assert {r["created_at"] for r in records} == {1704164645, 1700000000, 1700000001}
    dump = tmp_path / "out.jsonl"
    dump.write_text("\n".join(exported) + "\n")
    reimport = run(cli_env, "import", str(dump), "--json")
    assert json.loads(reimport.stdout) | {"skip_reasons": {}} == {
        "imported": 0,
        "updated": 0,
        "skipped": 3,
        "skip_reasons": {},
        "invalid": 0,
        "pending": 0,
    }
    markdown = run(cli_env, "export", "--format", "markdown").stdout
    assert "## " in markdown and "second" in markdown


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("add", ""), ("content must not be empty",)),
        (("add", "x", "--importance", "300"), ("importance", "0 to 255")),
        (("show", "12345"), ("no memory with id 12345",)),
        (("add", "x", "--at", "the day after never"), ("--at",)),
        (("export", "--format", "pdf"), ("unknown format 'pdf'",)),
    ],
)
def test_bad_input_gets_one_clear_line(
    cli_env: dict[str, str], args: tuple[str, ...], needles: tuple[str, ...]
) -> None:
    assert_one_line_error(run(cli_env, *args), *needles)


def test_malformed_import_line_writes_nothing(cli_env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"content": "ok one"}\n{"content": "ok two"}\n{"content": "x", "importance": 999}\n'
    )
    assert_one_line_error(run(cli_env, "import", str(bad)), f"{bad}:3:", "importance")
    assert json.loads(run(cli_env, "stats", "--json").stdout)["memories"] == 0
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"content": "fine"}\n{not json\n')
    assert_one_line_error(run(cli_env, "import", str(broken)), f"{broken}:2:", "not valid JSON")
    skipped = run(cli_env, "import", str(bad), "--skip-bad", "--json")
    assert json.loads(skipped.stdout)["imported"] == 2


def test_unreachable_database_is_one_line(cli_env: dict[str, str]) -> None:
    env = dict(cli_env, EPHEMERA_DATABASE_URL="mysql+pymysql://root@127.0.0.1:1/nothing")
    assert_one_line_error(run(env, "stats"), "unavailable", "127.0.0.1:1")
    env = dict(cli_env, EPHEMERA_DATABASE_URL="postgres-ish://what")
    assert_one_line_error(run(env, "stats"), "database URL")


def test_bad_config_file_is_one_line(cli_env: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("semantic_weight = 'lots'\n")
    env = dict(cli_env, EPHEMERA_CONFIG=str(config))
    assert_one_line_error(run(env, "stats"), str(config), "semantic_weight")
    config.write_text("colour = 'red'\n")
    assert_one_line_error(run(env, "stats"), "unknown setting 'colour'")


def test_search_queries_file_prints_one_json_line_per_query(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    run(cli_env, "add", "apples and pears")
    run(cli_env, "add", "a pear tree")
    queries = tmp_path / "q.txt"
    queries.write_text("pear\napples\n\nnothing-matches-zzz\n")
    result = run(cli_env, "search", "--queries", str(queries), "--json", "-n", "5")
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert len(json.loads(lines[0])) == 2
    assert json.loads(lines[1])[0]["content"] == "apples and pears"


def test_second_process_writes_while_the_first_holds_the_vector_store(
    cli_env: dict[str, str],
) -> None:
    """The embedded store admits one process: others commit SQL + outbox and search by keyword."""
    holder_code = (
        "import sys, time\n"
        "from ephemera_tui.engine import Engine, load_settings\n"
        "engine = Engine(load_settings())\n"
        "assert engine.vectors() is not None\n"
        "print('ready', flush=True)\n"
        "for line in sys.stdin:\n"
        "    if line.strip() == 'sync':\n"
        "        print('synced', engine.sync().upserted, flush=True)\n"
        "    else:\n"
        "        break\n"
        "engine.close()\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", holder_code],
        env=cli_env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().strip() == "ready"
        added = run_ephemera("add", "the red kite over the valley", env=cli_env)
        assert added.returncode == 0, added.stderr
        assert "semantic indexing deferred" in added.stderr
        found = run_ephemera("search", "kite", env=cli_env)
        assert found.returncode == 0
        assert "keyword results only" in found.stderr and "another process" in found.stderr
        assert "red kite" in found.stdout
        assert json.loads(run_ephemera("stats", "--json", env=cli_env).stdout)["pending"] == 1
        holder.stdin.write("sync\n")
        holder.stdin.flush()
        assert holder.stdout.readline().split() == ["synced", "1"]
    finally:
        if holder.stdin:
            holder.stdin.write("quit\n")
            holder.stdin.flush()
        holder.wait(timeout=30)
    time.sleep(0.2)
    after = run_ephemera("search", "kite", "--json", env=cli_env)
    assert after.stderr == ""
    assert json.loads(after.stdout)[0]["semantic_rank"] == 1
