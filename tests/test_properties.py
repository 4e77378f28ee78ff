"""Property-based tests (Hypothesis): every reader of outside input answers generated input
with a valid result or a clean EphemeraError, never another exception, and what validates
writes whole (issue 16, item 13).

Readers driven: the import reader (engine.jsonl, then the store on SQLite and MariaDB), the
query parser (and a search with it), the settings loader (environment and TOML), the backup
manifest reader, and the MeiliSearch dump/export reader. Example counts are kept modest so
the file runs in well under a minute.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import tarfile
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ephemera_tui.engine import Draft, Engine, Settings
from ephemera_tui.engine.errors import EphemeraError
from ephemera_tui.engine.filters import fold_tag

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NOW = 1_767_225_600.0

# Text as hostile input carries it: controls, C1, bidi overrides, lone surrogates, emoji.
nasty_chars = st.sampled_from(
    ["\x00", "\x1b", "\x07", "\x9b", "\u202e", "\u2066", "\ud800", "\udfff", "😀", "é", "\n"]
)
nasty_text = st.text(
    alphabet=st.one_of(st.characters(codec="utf-8"), nasty_chars), max_size=40
) | st.sampled_from(["", " ", "a" * 101, 'tag:x after:0000 on:9999-12-31 "open'])
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 255, 256, -1, 2**63 - 1, 2**63, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
)
json_values = st.recursive(
    st.none() | st.booleans() | numbers | nasty_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(nasty_text, inner, max_size=4),
    max_leaves=12,
)
FIELD_NAMES = [
    "content", "created_at", "source", "importance", "confidence", "tags", "notes",
    "associations", "id",
]  # fmt: skip
records = st.dictionaries(
    st.sampled_from(FIELD_NAMES) | nasty_text,
    json_values | st.lists(nasty_text, max_size=3) | st.lists(numbers, max_size=3),
    max_size=9,
).map(lambda d: {"content": "x", **d} if "content" not in d and len(d) % 2 else d)


def _line(value: Any) -> bytes:
    """A JSON line as an outside tool might write it (NaN/Infinity included)."""
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


lines = st.one_of(
    records.map(_line),
    json_values.map(_line),
    st.binary(max_size=60),
    st.integers(1, 3000).map(lambda depth: b"[" * depth + b"]" * depth),
    st.integers(4301, 6000).map(
        lambda digits: b'{"content": "x", "importance": ' + b"9" * digits + b"}"
    ),
)


# ---------------------------------------------------------------------------- import reader


@FAST
@given(st.lists(lines, max_size=6))
def test_the_import_reader_validates_or_refuses_cleanly(body: list[bytes]) -> None:
    from ephemera_tui.engine import jsonl

    handle = io.BytesIO(b"\n".join(body) + b"\n")
    try:
        found = list(jsonl.iter_records(handle, "gen", NOW))
    except EphemeraError as exc:
        assert str(exc).startswith("gen:") and "\n" not in str(exc)
        return
    for record in found:
        _assert_storable(record.draft)


def _assert_storable(draft: Draft) -> None:
    """A validated draft holds nothing a database refuses (the limits the store relies on)."""
    from ephemera_tui.engine.dates import MAX_TIMESTAMP, MIN_TIMESTAMP
    from ephemera_tui.engine.domain import MAX_ID, MAX_TEXT_BYTES

    assert len(draft.content.encode("utf-8")) <= MAX_TEXT_BYTES and draft.content.strip()
    assert draft.created_at is None or MIN_TIMESTAMP <= draft.created_at <= MAX_TIMESTAMP
    assert len(draft.source) <= 50 and draft.source.encode("utf-8")
    for tag in draft.tags:
        assert 0 < len(tag) <= 100 and tag.encode("utf-8")
    assert len({fold_tag(t) for t in draft.tags}) == len(draft.tags)
    assert all(0 < a <= MAX_ID for a in draft.associations)
    for value in (draft.importance, draft.confidence):
        assert value is None or 0 <= value <= 255


@pytest.fixture(scope="module")
def journals(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Engine]]:
    """One SQLite journal and, when a server answers, one MariaDB journal for the module."""
    from tests.conftest import MYSQL_SERVER, REQUIRE_MYSQL

    root = tmp_path_factory.mktemp("properties")
    engines = {
        "sqlite": Engine(
            Settings(
                data_dir=root / "sqlite",
                database_url=f"sqlite:///{root / 'sqlite' / 'ephemera.db'}",
                embedding_model="fake-hash-384",
            )
        )
    }
    admin = None
    name = f"ephemera_test_{uuid.uuid4().hex[:12]}"
    try:
        from sqlalchemy import create_engine, text

        admin = create_engine(MYSQL_SERVER + "/", connect_args={"connect_timeout": 3})
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4"))
        engines["mysql"] = Engine(
            Settings(
                data_dir=root / "mysql",
                database_url=f"{MYSQL_SERVER}/{name}",
                embedding_model="fake-hash-384",
            )
        )
    except Exception as exc:  # noqa: BLE001 - no server: the SQLite half still runs
        if REQUIRE_MYSQL:
            raise
        print(f"MariaDB not reachable, SQLite only: {exc}")
    try:
        yield engines
    finally:
        for engine in engines.values():
            engine.close()
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
            admin.dispose()


@SLOW
@given(body=st.lists(records.map(_line), min_size=1, max_size=8))
def test_what_validates_writes_whole_on_every_backend(
    journals: dict[str, Engine], body: list[bytes]
) -> None:
    """Never a partial write: a file either fails validation (nothing written) or every
    valid line is written, on SQLite and on MariaDB alike."""
    from ephemera_tui.engine import jsonl

    try:
        found = list(jsonl.iter_records(io.BytesIO(b"\n".join(body)), "gen", NOW))
    except EphemeraError:
        return
    rows = [(r.draft, None) for r in found]  # fresh ids: the property is about the values
    for engine in journals.values():
        before = engine.count()
        report = engine.import_drafts(rows)
        assert engine.count() == before + report.imported
        assert report.imported + report.skipped == len(rows)


# ---------------------------------------------------------------------------- query parser


@FAST
@given(nasty_text | st.text(max_size=80))
def test_the_query_parser_never_raises(raw: str) -> None:
    from ephemera_tui.engine.query import parse_query

    parsed = parse_query(raw, NOW)
    assert all(isinstance(p, str) and "\n" not in p for p in parsed.problems)


@SLOW
@given(raw=nasty_text | st.text(max_size=60))
def test_a_search_answers_or_refuses_cleanly(journals: dict[str, Engine], raw: str) -> None:
    for engine in journals.values():
        try:
            result = engine.search(raw, limit=5)
        except EphemeraError:
            continue
        assert len(result.hits) <= 5


# ---------------------------------------------------------------------------- settings


SETTING_NAMES = [f.name for f in fields(Settings) if f.name not in ("config_path",)]
toml_values = st.one_of(
    st.integers(min_value=-(2**64), max_value=2**64).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(
        lambda f: (
            "nan" if math.isnan(f) else ("inf" if f > 0 else "-inf") if math.isinf(f) else repr(f)
        )
    ),
    nasty_text.map(lambda s: json.dumps(s)),
    st.sampled_from(
        [
            "true",
            "false",
            "[]",
            "[1, 2]",
            '["a"]',
            "{a = 1}",
            '"mysql://x/y"',
            '"sqlite://"',
            '"sqlite:///:memory:"',
            '"mysql+pymysql://h"',
            "1e999",
        ]
    ),
)


@FAST
@given(
    env=st.dictionaries(
        st.sampled_from(SETTING_NAMES).map(lambda n: "EPHEMERA_" + n.upper()),
        nasty_text | st.sampled_from(["-1", "1e999", "nan", "0", "garbage", "inf"]),
        max_size=4,
    ),
    table=st.dictionaries(
        st.sampled_from([*SETTING_NAMES, "unknown_key", "migration", "keys"]),
        toml_values,
        max_size=4,
    ),
    junk=st.sampled_from(
        ["", "[keys]\nquit = 5\n", "[migration.meilisearch]\nbogus = 1\n", "= broken", "[keys\n"]
    ),
)
def test_the_settings_loader_answers_or_refuses_cleanly(
    env: dict[str, str], table: dict[str, str], junk: str
) -> None:
    from ephemera_tui.engine.config import load_settings

    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.toml"
        body = "".join(f"{key} = {value}\n" for key, value in table.items()) + junk
        config.write_text(body, encoding="utf-8", errors="surrogatepass")
        env = {k: v.encode("utf-8", "replace").decode("utf-8") for k, v in env.items()}
        env.setdefault("EPHEMERA_DATA_DIR", str(Path(tmp) / "data"))
        try:
            loaded = load_settings({}, env=env, config_path=config)
        except EphemeraError as exc:
            assert "\n" not in str(exc).strip()
            return
        assert isinstance(loaded, Settings)


# ---------------------------------------------------------------------------- manifest reader


@pytest.fixture(scope="module")
def good_set(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    from ephemera_tui.engine.backup import create_backup

    root = tmp_path_factory.mktemp("set")
    with Engine(
        Settings(
            data_dir=root / "data",
            database_url=f"sqlite:///{root / 'data' / 'ephemera.db'}",
            embedding_model="fake-hash-384",
        )
    ) as engine:
        engine.add(Draft("one memory", tags=("t",)))
        made = create_backup(engine, root / "sets")
    return made.path, json.loads((made.path / "manifest.json").read_text())


def _mutate(manifest: Any, path: list[str], value: Any) -> Any:
    if not path or not isinstance(manifest, dict):
        return value
    key = (
        path[0]
        if path[0] in manifest or not manifest
        else list(manifest)[hash(path[0]) % len(manifest)]
    )
    return {**manifest, key: _mutate(manifest.get(key), path[1:], value)}


@FAST
@given(
    where=st.lists(
        st.sampled_from(
            [
                "files",
                "sql",
                "counts",
                "vectors",
                "kind",
                "bytes",
                "sha256",
                "file",
                "points",
                "dim",
                "model",
                "created_at",
                "format_version",
            ]
        ),
        min_size=1,
        max_size=3,
    ),
    value=json_values,
    drop=st.booleans(),
)
def test_the_manifest_reader_names_what_is_wrong(
    good_set: tuple[Path, dict[str, Any]], where: list[str], value: Any, drop: bool
) -> None:
    from ephemera_tui.engine.backup import BackupError
    from ephemera_tui.engine.backup.sets import check_manifest

    set_dir, manifest = good_set
    changed = _mutate(manifest, where, value)
    if drop and isinstance(changed, dict) and where[0] in changed:
        changed = {k: v for k, v in changed.items() if k != where[0]}
    try:
        checked = check_manifest(changed, set_dir)
    except BackupError as exc:
        assert str(exc).startswith(f"backup set {set_dir}: ")
        return
    assert checked is changed


@SLOW
@given(data=st.binary(max_size=300) | json_values.map(_line))
def test_load_manifest_survives_any_manifest_file(
    good_set: tuple[Path, dict[str, Any]], data: bytes
) -> None:
    import shutil

    from ephemera_tui.engine.backup import BackupError, load_manifest

    set_dir, _ = good_set
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / set_dir.name
        shutil.copytree(set_dir, copy)
        (copy / "manifest.json").write_bytes(data)
        with pytest.raises(BackupError):
            load_manifest(copy)


# ---------------------------------------------------------------------------- dump reader


def _tar_gz(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return out.getvalue()


dump_members = st.dictionaries(
    st.sampled_from(
        [
            "metadata.json",
            "indexes/movies/metadata.json",
            "indexes/movies/documents.jsonl",
            "indexes/movies/settings.json",
            "tasks/queue.jsonl",
            "keys.jsonl",
            "instance_uid.uuid",
        ]
    ),
    st.one_of(
        json_values.map(_line),
        st.lists(json_values.map(_line), max_size=3).map(b"\n".join),
        st.just(_line({"dumpVersion": "V6", "dbVersion": "1.0.0", "dumpDate": "2024-01-01"})),
        st.binary(max_size=40),
        st.integers(1, 3000).map(lambda depth: b"[" * depth + b"]" * depth),
        st.integers(4301, 6000).map(lambda digits: b'{"id": ' + b"9" * digits + b"}"),
    ),
    max_size=5,
)


@SLOW
@given(
    kind=st.sampled_from(["ndjson", "array", "dump", "gzip-junk"]),
    docs=st.lists(lines, max_size=5),
    members=dump_members,
)
def test_the_dump_reader_reads_or_refuses_cleanly(
    kind: str, docs: list[bytes], members: dict[str, bytes]
) -> None:
    from ephemera_tui.migration.readers import read_sources

    with tempfile.TemporaryDirectory() as tmp:
        if kind == "ndjson":
            path = Path(tmp) / "docs.ndjson"
            path.write_bytes(b"\n".join(docs))
        elif kind == "array":
            path = Path(tmp) / "docs.json"
            path.write_bytes(b"[" + b",".join(docs) + b"]")
        elif kind == "dump":
            path = Path(tmp) / "x.dump"
            path.write_bytes(_tar_gz(members))
        else:
            path = Path(tmp) / "x.dump"
            path.write_bytes(gzip.compress(b"\n".join(docs))[: 10 + len(docs)])
        for skip_bad in (False, True):
            try:
                sources = read_sources(path, skip_bad=skip_bad)
            except EphemeraError as exc:
                assert "\n" not in str(exc).strip()
                continue
            assert isinstance(sources, list)


@SLOW
@given(
    titles=st.lists(
        st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1),
        min_size=1,
        max_size=6,
    )
)
def test_the_dump_reader_reads_every_well_formed_export(titles: list[str]) -> None:
    """The other half: input that is fine is read whole (a reader refusing everything would
    pass the test above)."""
    from ephemera_tui.migration.readers import read_sources

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "docs.ndjson"
        docs = [{"id": n + 1, "title": title} for n, title in enumerate(titles)]
        path.write_text("\n".join(json.dumps(d) for d in docs) + "\n", encoding="utf-8")
        (source,) = read_sources(path)
        assert len(source.documents) == len(docs)
