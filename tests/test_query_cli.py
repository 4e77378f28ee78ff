"""The command line with lenient queries, typed dates, the editor and readable output (in-process
through Typer's CliRunner, on a SQLite data dir with the fake embedder)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from ephemera_tui.cli.main import app


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "none.toml").write_text("")
    return {
        "EPHEMERA_DATA_DIR": str(tmp_path / "data"),
        "EPHEMERA_DATABASE_URL": f"sqlite:///{tmp_path / 'ephemera.db'}",
        "EPHEMERA_EMBEDDING_MODEL": "fake-hash-384",
        "EPHEMERA_CONFIG": str(tmp_path / "none.toml"),
        "VISUAL": "",
        "EDITOR": "",
    }


@pytest.fixture
def cli(env: dict[str, str]) -> Iterator[Any]:
    runner = CliRunner()

    def invoke(*args: str, stdin: str | None = None, extra: dict[str, str] | None = None) -> Result:
        return runner.invoke(app, list(args), env={**env, **(extra or {})}, input=stdin)

    yield invoke


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def added(cli: Any, *args: str) -> int:
    return int(ok(cli("add", *args)).stdout.strip())


@pytest.mark.parametrize(
    "query", ["Re: meeting", "Note: meeting", "CS:GO meeting", '"', 'meeting "']
)
def test_search_accepts_what_people_type(cli: Any, query: str) -> None:
    memory_id = added(cli, "Re: meeting with Anna about CS:GO")
    result = ok(cli("search", query, "--json"))
    assert result.stderr == ""
    hits = json.loads(result.stdout)
    if query != '"':
        assert [h["id"] for h in hits] == [memory_id]


def test_a_bad_filter_value_is_a_notice_and_the_rest_runs(cli: Any) -> None:
    memory_id = added(cli, "coffee with Anna")
    result = ok(cli("search", "coffee importance>=300 on:0001-01-01", "--json"))
    assert [h["id"] for h in json.loads(result.stdout)] == [memory_id]
    notices = result.stderr.splitlines()
    assert len(notices) == 2
    assert notices[0].startswith("ephemera: left out 'importance>=300'")
    assert "outside the accepted dates 1900-01-01 to 2200-12-31" in notices[1]


def test_queries_file_never_aborts_for_one_bad_line(cli: Any, tmp_path: Path) -> None:
    added(cli, "apples and pears")
    queries = tmp_path / "q.txt"
    queries.write_bytes(b"pear\nbad \xff line\nTODO: apples importance>=999\n\napples\n")
    result = cli("search", "--queries", str(queries), "--json")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 4
    assert len(lines[0]) == 1
    assert lines[1] == {"line": 2, "query": None, "error": "not valid UTF-8"}
    assert lines[2][0]["content"] == "apples and pears"  # its bad filter is left out
    assert lines[3][0]["content"] == "apples and pears"
    assert f"{queries}:3: left out 'importance>=999'" in result.stderr
    assert result.exit_code == 1
    assert "1 of the queries could not run" in result.stderr.splitlines()[-1]


def test_queries_file_keeps_going_after_an_engine_error(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ephemera_tui.engine.core import Engine
    from ephemera_tui.engine.errors import DatabaseError

    added(cli, "apples and pears")
    real = Engine.search

    def flaky(self: Engine, raw: str, *args: Any, **kwargs: Any) -> Any:
        if raw == "boom":
            raise DatabaseError("database unavailable: lost connection")
        return real(self, raw, *args, **kwargs)

    monkeypatch.setattr(Engine, "search", flaky)
    queries = tmp_path / "q.txt"
    queries.write_text("boom\napples\n")
    lines = [json.loads(x) for x in cli("search", "--queries", str(queries)).stdout.splitlines()]
    assert lines[0] == {
        "line": 1,
        "query": "boom",
        "error": "database unavailable: lost connection",
    }
    assert lines[1][0]["content"] == "apples and pears"


def test_at_takes_a_bare_time_as_the_latest_such_moment(cli: Any) -> None:
    from datetime import datetime, timedelta

    memory_id = added(cli, "stand-up", "--at", "23:59")
    shown = json.loads(ok(cli("show", str(memory_id), "--json")).stdout)
    moment = datetime.fromtimestamp(shown["created_at"])
    now = datetime.now()
    assert (moment.hour, moment.minute) == (23, 59)
    assert timedelta(0) <= now - moment < timedelta(days=1)


def test_at_in_the_future_is_saved_with_a_notice(cli: Any) -> None:
    result = ok(cli("add", "dentist", "--at", "tomorrow 9:00"))
    assert result.stderr.startswith("ephemera: --at: ")
    assert result.stderr.rstrip().endswith("is in the future")
    int(result.stdout)


@pytest.mark.parametrize(
    ("at", "message"),
    [
        ("-99999999999999", "outside the accepted dates"),
        ("0001-01-01", "outside the accepted dates"),
        ("2024-13-01", "'2024-13-01' is not a real date"),
    ],
)
def test_at_outside_the_range_is_refused_in_one_line(cli: Any, at: str, message: str) -> None:
    result = cli("add", "x", "--at", at)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("ephemera: error: --at: ")
    assert message in result.stderr
    assert json.loads(ok(cli("stats", "--json")).stdout)["memories"] == 0


def _editor(tmp_path: Path, body: str) -> str:
    """An editor command (in a folder with a space, so it must be shell-split) running ``body``
    with the file's path as ``path``."""
    folder = tmp_path / "my editors"
    folder.mkdir(exist_ok=True)
    script = folder / "ed.py"
    script.write_text(f"import sys\npath = sys.argv[-1]\n{body}\n")
    return f"'{sys.executable}' '{script}' --wait"


def test_edit_in_editor_ends_the_file_with_a_newline_and_takes_exactly_it_off(
    cli: Any, tmp_path: Path
) -> None:
    memory_id = added(cli, "first line")
    seen = tmp_path / "seen.txt"
    editor = _editor(
        tmp_path,
        f"text = open(path).read()\nopen({str(seen)!r}, 'w').write(text)\n"
        "open(path, 'a').write('second line\\n')",
    )
    ok(cli("edit", str(memory_id), extra={"VISUAL": editor, "EDITOR": "false"}))
    assert seen.read_text() == "first line\n"
    shown = json.loads(ok(cli("show", str(memory_id), "--json")).stdout)
    assert shown["content"] == "first line\nsecond line"


def test_edit_with_no_change_changes_nothing(cli: Any, tmp_path: Path) -> None:
    memory_id = added(cli, "ends with a blank line\n")
    result = ok(cli("edit", str(memory_id), extra={"EDITOR": _editor(tmp_path, "pass")}))
    assert "no change" in result.stderr
    shown = json.loads(ok(cli("show", str(memory_id), "--json")).stdout)
    assert shown["content"] == "ends with a blank line\n"


def test_stats_prints_no_python_dicts(cli: Any) -> None:
    added(cli, "one memory")
    ok(cli("search", "memory"))
    from ephemera_tui.cli.commands.maintenance import readable

    assert readable({"hits": 0, "misses": 2, "ratio": 0.123456}) == "hits 0, misses 2, ratio 0.1235"
    assert readable(None) == "-"
    out = ok(cli("stats")).stdout
    assert "{" not in out and "[" not in out and "'" not in out


def test_one_memory_is_singular(cli: Any, tmp_path: Path) -> None:
    from ephemera_tui.presentation.numbers import plural

    assert (plural(1, "memory"), plural(2, "memory"), plural(1451, "day")) == (
        "1 memory",
        "2 memories",
        "1,451 days",
    )
    added(cli, "only one")
    result = ok(cli("export", "-o", str(tmp_path / "out.jsonl")))
    assert "wrote 1 memory to" in result.stderr


def test_deferred_indexing_notice_has_no_nested_parentheses(
    cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ephemera_tui.engine.core import Engine

    monkeypatch.setattr(
        Engine, "vector_status", property(lambda self: "vector store is busy (pid 42)")
    )
    result = ok(cli("add", "x"))
    assert (
        result.stderr
        == "ephemera: saved; semantic indexing deferred: vector store is busy (pid 42)\n"
    )


def test_import_shows_progress_from_the_start(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from contextlib import contextmanager

    from ephemera_tui.cli.commands import transfer
    from ephemera_tui.engine import jsonl

    events: list[str] = []

    @contextmanager
    def recording(total: int | None, label: str) -> Iterator[Any]:
        events.append(f"bar {label.split()[0]} {total}")
        yield lambda n: events.append(f"+{n}")

    real_read = jsonl.read_jsonl

    def reading(*args: Any, **kwargs: Any) -> Any:
        events.append("read")
        return real_read(*args, **kwargs)

    monkeypatch.setattr(transfer, "progress", recording)
    monkeypatch.setattr(jsonl, "read_jsonl", reading)
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"content": f"m{i}"}) + "\n" for i in range(3)))
    ok(cli("import", str(source)))
    assert events[:5] == ["bar checking 3", "read", "+1", "+1", "+1"]
    assert "bar importing 3" in events[5:]
