"""Hostile input: imports that validate whole before the first write, labels without control
characters, one content limit on every backend, terminal-safe output, clean one-line errors.

Each test here failed before its fix (issue 16: items 1, 7, 8, 11, 12, 15).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from ephemera_tui.cli.main import app
from ephemera_tui.engine import Draft, Engine, Settings
from ephemera_tui.engine.errors import ValidationError

RAW = ("\x1b", "\x07", "\x9b", "\u202e")  # ESC, BEL, C1 CSI, right-to-left override
MAX_TEXT_BYTES = 1 << 20  # the documented content limit (domain.MAX_TEXT_BYTES)


@pytest.fixture
def env(tmp_path: Path, db_url: str) -> dict[str, str]:
    (tmp_path / "none.toml").write_text("")
    return {
        "EPHEMERA_DATA_DIR": str(tmp_path / "data"),
        "EPHEMERA_DATABASE_URL": db_url,
        "EPHEMERA_EMBEDDING_MODEL": "fake-hash-384",
        "EPHEMERA_CONFIG": str(tmp_path / "none.toml"),
        "EPHEMERA_SERVICE": "off",
    }


def run(env: dict[str, str], *args: str, stdin: bytes | str | None = None) -> Any:
    """``ephemera ARGS`` in this process; an exception that escapes fails the test."""
    umask = os.umask(0o022)
    os.umask(umask)
    try:
        return CliRunner().invoke(app, list(args), env=env, input=stdin, catch_exceptions=False)
    finally:
        os.umask(umask)  # the command makes this process's umask private


def count(env: dict[str, str]) -> int:
    settings = Settings(
        data_dir=Path(env["EPHEMERA_DATA_DIR"]),
        database_url=env["EPHEMERA_DATABASE_URL"],
        embedding_model="fake-hash-384",
    )
    with Engine(settings) as engine:
        return engine.count()


def one_line_error(result: Any) -> str:
    assert result.exit_code == 1, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ephemera: error: "), result.stderr
    assert "internal error" not in result.stderr
    return lines[0]


# Lines that parse as JSON objects but that some database refuses at write time, and lines
# that broke the parser itself; each comes after 300 good lines (more than one batch).
BAD_LINES = {
    "surrogate in content": '{"content": "bad \\ud800 text"}',
    "surrogate in a tag": '{"content": "fine", "tags": ["x\\udfff"]}',
    "created_at 1e25": '{"content": "fine", "created_at": 1e25}',
    "id 2^63": '{"content": "fine", "id": 9223372036854775808}',
    "link id 2^63": '{"content": "fine", "associations": [9223372036854775808]}',
    "content over 1 MiB": json.dumps({"content": "é" * (MAX_TEXT_BYTES // 2 + 1)}),
    "notes over 1 MiB": json.dumps({"content": "fine", "notes": "n" * (MAX_TEXT_BYTES + 1)}),
    "importance as text": '{"content": "fine", "importance": "high"}',
    "importance 256": '{"content": "fine", "importance": 256}',
    "tags as text": '{"content": "fine", "tags": "a,b"}',
    "source as a number": '{"content": "fine", "source": 7}',
    "notes as a list": '{"content": "fine", "notes": ["a"]}',
    "control character in a tag": '{"content": "fine", "tags": ["a\\u001b[31m"]}',
    "bidi override in a source": '{"content": "fine", "source": "a\\u202eb"}',
    "NaN": '{"content": "fine", "importance": NaN}',
    "Infinity": '{"content": "fine", "created_at": Infinity}',
    "a number of 5000 digits": '{"content": "fine", "importance": ' + "9" * 5000 + "}",
    "nested 100,000 deep": "[" * 100_000 + "]" * 100_000,
    "a list, not an object": '["content"]',
    "link to a missing memory": '{"content": "fine", "associations": [424242]}',
}


def _file(tmp_path: Path, bad: str) -> Path:
    good = [json.dumps({"content": f"good line {i}", "tags": ["ok"]}) for i in range(300)]
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join([*good, bad]) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("kind", list(BAD_LINES))
def test_import_writes_nothing_when_a_line_would_fail(
    env: dict[str, str], tmp_path: Path, kind: str
) -> None:
    path = _file(tmp_path, BAD_LINES[kind])
    message = one_line_error(run(env, "import", str(path)))
    assert f"{path}:301:" in message
    assert count(env) == 0


@pytest.mark.parametrize("kind", ["surrogate in content", "created_at 1e25", "id 2^63"])
def test_skip_bad_skips_lines_that_would_fail_at_write_time(
    env: dict[str, str], tmp_path: Path, kind: str
) -> None:
    path = _file(tmp_path, BAD_LINES[kind])
    result = run(env, "import", "--skip-bad", "--json", str(path))
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["imported"], summary["invalid"]) == (300, 1)
    assert f"{path}:301:" in result.stderr
    assert count(env) == 300


def test_import_links_resolve_against_the_file_and_the_journal(
    env: dict[str, str], tmp_path: Path
) -> None:
    first = run(env, "add", "already here")
    known = int(first.stdout)
    path = tmp_path / "links.jsonl"
    lines = [
        {"content": "has an id", "id": 5},
        {"content": "links within the file", "associations": [5]},
        {"content": "links to the journal", "associations": [known]},
    ]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert run(env, "import", str(path)).exit_code == 0
    assert count(env) == 4
    path.write_text(json.dumps({"content": "dangling", "associations": [777]}) + "\n")
    assert "association 777 is not a memory" in one_line_error(run(env, "import", str(path)))


def test_import_from_stdin_leaves_no_copy_on_disk(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    body = "".join(json.dumps({"content": f"secret {i}"}) + "\n" for i in range(5))
    result = run(env, "import", "-", stdin=body.encode())
    assert result.exit_code == 0, result.stderr
    assert count(env) == 5
    assert list(scratch.iterdir()) == []


def test_import_from_stdin_that_is_not_utf8_is_one_line(env: dict[str, str]) -> None:
    message = one_line_error(run(env, "import", "-", stdin=b'{"content": "\xff\xfe"}\n'))
    assert "stdin:1: not UTF-8" in message


def test_reimport_says_what_still_waits_for_sync(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "in.jsonl"
    rows = [{"content": f"m{i}", "created_at": 1_700_000_000 + i} for i in range(3)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    monkeypatch.setenv("EPHEMERA_MIN_FREE_MB", str(1 << 40))  # vector writes refused
    assert run(env, "import", str(path)).exit_code == 0
    again = run(env, "import", str(path))
    assert again.exit_code == 0
    assert "skipped 3" in again.stdout
    assert "3 memories still wait for `ephemera sync`" in again.stderr


def test_one_content_limit_on_every_backend(env: dict[str, str]) -> None:
    settings = Settings(
        data_dir=Path(env["EPHEMERA_DATA_DIR"]),
        database_url=env["EPHEMERA_DATABASE_URL"],
        embedding_model="fake-hash-384",
    )
    with Engine(settings) as engine:
        stored = engine.add(Draft("é" * (MAX_TEXT_BYTES // 2)))  # exactly 1 MiB of UTF-8
        assert len(engine.get(stored.id).content.encode()) == MAX_TEXT_BYTES
        with pytest.raises(ValidationError, match="limit is 1,048,576"):
            Draft("x" * (MAX_TEXT_BYTES + 1))


def test_tags_that_differ_only_in_case_are_one_tag(env: dict[str, str]) -> None:
    """MariaDB's collation refused Work beside work (after 20 misleading retries)."""
    result = run(env, "add", "x", "--tag", "Work", "--tag", "work", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["tags"] == ["Work"]


@pytest.mark.parametrize(
    "option",
    [["--tag", "a\x1b[31m"], ["--source", "s\x07"], ["--source", "x\u202ey"], ["--tag", "\x9b"]],
)
def test_labels_refuse_control_characters(env: dict[str, str], option: list[str]) -> None:
    message = one_line_error(run(env, "add", "text", *option))
    assert "control character" in message
    assert not any(ch in message for ch in RAW)


@pytest.mark.parametrize(
    "args",
    [
        ["add", "\udcff"],
        ["add", "x", "--note", "\udcff"],
        ["add", "x", "--tag", "\udcff"],
        ["add", "x", "--source", "\udcff"],
        ["search", "\udcff"],
    ],
)
def test_argv_that_is_not_utf8_is_one_line(env: dict[str, str], args: list[str]) -> None:
    message = one_line_error(run(env, *args))
    assert "not valid Unicode" in message


def _poison(env: dict[str, str]) -> int:
    """A memory whose every field drives a terminal, as an older version stored it."""
    hostile = "line one \x1b]0;owned\x07 \x1b[2J\nline two \u202eevil\x9b31m"
    added = run(env, "add", hostile, "--note", "note \x1b[5m blink", "--tag", "t")
    memory_id = int(added.stdout)
    settings = Settings(
        data_dir=Path(env["EPHEMERA_DATA_DIR"]),
        database_url=env["EPHEMERA_DATABASE_URL"],
        embedding_model="fake-hash-384",
    )
    with Engine(settings) as engine, engine.store.write() as conn:
        conn.execute(
            text("UPDATE memory_fragments SET source = :s, tags = :t WHERE id = :i"),
            {"s": "diary\x1b]2;x\x07", "t": json.dumps(["t\x1b[31m", "u\u202e"]), "i": memory_id},
        )
    return memory_id


def test_human_readable_output_never_carries_raw_controls(env: dict[str, str]) -> None:
    memory_id = _poison(env)
    outputs = {
        "show": run(env, "show", str(memory_id)),
        "search": run(env, "search", "line"),
        "markdown": run(env, "export", "--format", "markdown"),
        "report": run(env, "report"),
    }
    for name, result in outputs.items():
        assert result.exit_code == 0, (name, result.stderr)
        assert not any(ch in result.stdout for ch in RAW), (name, result.stdout)
        assert not any(ch in result.stderr for ch in RAW), (name, result.stderr)
    assert "\\x1b]0;owned\\x07" in outputs["show"].stdout  # shown, not hidden
    assert "line one" in outputs["show"].stdout and "line two" in outputs["show"].stdout


def test_json_output_escapes_what_a_terminal_acts_on(env: dict[str, str]) -> None:
    memory_id = _poison(env)
    for args in (["show", str(memory_id), "--json"], ["search", "line", "--json"]):
        result = run(env, *args)
        assert result.exit_code == 0, result.stderr
        assert not any(ch in result.stdout for ch in RAW), result.stdout
        data = json.loads(result.stdout)
        memory = data[0] if isinstance(data, list) else data
        assert "\u202e" in memory["content"] and "\x9b" in memory["content"]  # same data


def test_export_to_a_missing_folder_or_a_folder_is_one_line(
    env: dict[str, str], tmp_path: Path
) -> None:
    run(env, "add", "x")
    assert "cannot write" in one_line_error(run(env, "export", "-o", str(tmp_path / "no/x.md")))
    assert "cannot write" in one_line_error(run(env, "export", "-o", str(tmp_path)))


def test_unlinking_unknown_ids_or_memories_not_linked_is_refused(env: dict[str, str]) -> None:
    a = int(run(env, "add", "a").stdout)
    b = int(run(env, "add", "b").stdout)
    assert "no memory with id 999" in one_line_error(run(env, "link", "--remove", str(a), "999"))
    assert "not linked" in one_line_error(run(env, "link", "--remove", str(a), str(b)))
    assert run(env, "link", str(a), str(b)).exit_code == 0
    assert run(env, "link", "--remove", str(b), str(a)).exit_code == 0


def test_finishing_a_migration_that_never_started_is_refused(env: dict[str, str]) -> None:
    message = one_line_error(run(env, "migrate", "meili", "finish"))
    assert "nothing to finish" in message


@pytest.mark.parametrize("zone", ["UTC", "Asia/Tokyo", "America/Los_Angeles"])
def test_a_bad_stored_date_breaks_no_listing(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, zone: str
) -> None:
    """Dates written before the range was enforced (or by another tool) are shown at the
    range's end by show, search, export --format markdown and report, in any time zone."""
    import time

    first = int(run(env, "add", "far past").stdout)
    second = int(run(env, "add", "far future").stdout)
    settings = Settings(
        data_dir=Path(env["EPHEMERA_DATA_DIR"]),
        database_url=env["EPHEMERA_DATABASE_URL"],
        embedding_model="fake-hash-384",
    )
    with Engine(settings) as engine, engine.store.write() as conn:
        for memory_id, stamp in ((first, -99_999_999_999_999), (second, 253_402_300_799)):
            conn.execute(
                text("UPDATE memory_fragments SET created_at = :c WHERE id = :i"),
                {"c": stamp, "i": memory_id},
            )
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        for args in (
            ["show", str(first)],
            ["show", str(second)],
            ["search", "far"],
            ["export", "--format", "markdown"],
            ["report"],
            ["report", "--format", "html"],
        ):
            result = run({**env, "TZ": zone}, *args)
            assert result.exit_code == 0, (args, result.stderr)
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize(
    "args",
    [
        ["show", str(2**64)],
        ["delete", "-y", str(2**63)],
        ["edit", str(2**64), "--content", "y"],
        ["link", "--remove", "1", str(2**64)],
        ["search", "x", "-n", str(2**64)],
    ],
)
def test_numbers_no_database_holds_are_one_line(env: dict[str, str], args: list[str]) -> None:
    one_line_error(run(env, *args))
