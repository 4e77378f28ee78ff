"""Dumps of every version MeiliSearch wrote (V1 to V6), read from the real files it wrote.

The dumps are MeiliSearch's own test assets (see ``REAL_DUMPS``); each test skips with the
reason when that folder is absent. Enqueued tasks are added to a copy of a real dump in that
version's own layout (the real V1–V5 dumps have none waiting). SQLite and MariaDB through
``db_url``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ephemera_tui.engine import Engine, Memory
from ephemera_tui.migration import state
from ephemera_tui.migration.importer import Importer, MigrationReport
from ephemera_tui.migration.mapping import build_mapping, parse_map_options
from ephemera_tui.migration.readers import MigrationError, read_sources
from tests.helpers import run_ephemera
from tests.test_meili_support import (
    REAL_DUMP_FILES,
    append_jsonl,
    corrupt,
    evil_dump,
    movie_docs,
    pack,
    real_dump,
    truncate,
    unpack,
    write_dump,
)

ARIEL_OVERVIEW = "Taisto Kasurinen is a Finnish coal miner whose father has just committed"
ARIEL_POSTER = "https://image.tmdb.org/t/p/w500/ojDg0PGvs6R9xYFodRct2kdI6wC.jpg"
V2_UUID = "3dea6677-0bdf-48ff-a6db-7ed7a002117e"  # the movies index of the V2–V4 dumps
QUEUED_FILM = {
    "id": 900001,
    "title": "Queued Film",
    "overview": "A lighthouse keeper befriends a stranded whale during a winter storm.",
    "genres": ["Drama"],
    "release_date": 1_600_000_000,
}
NEW_ARIEL = {"id": 2, "title": "Ariel (restored)"}
EXPECTED = {
    "V1": {"indexUID": 53},
    "V2": {"indexUID": 53},
    "V3": {"indexUID": 53},
    "V4": {"indexUID": 53},
    "V5": {"test": 10, "test2": 10},
    "V6-experimental": {"test": 1},
    "V6-vectors": {"novector": 2, "vector": 4},
    "V6-enqueued": {"kefir": 2},  # one document, plus one still enqueued
}


def import_dump(
    engine: Engine,
    path: Path,
    index: Any = None,
    maps: tuple[str, ...] = (),
    skip_bad: bool = False,
) -> list[MigrationReport]:
    """What ``ephemera migrate meili import PATH`` does (--index, --map)."""
    sources = read_sources(path, index=index, skip_bad=skip_bad)
    explicit = parse_map_options(maps)
    plans = [
        (
            s,
            build_mapping(
                [d.data for d in s.documents], explicit, s.primary_key, s.settings, s.index_uid
            ),
        )
        for s in sources
    ]
    return Importer(engine).run_many(plans, skip_bad=skip_bad)


def memory(engine: Engine, index: str, key: str) -> Memory:
    rows = state.mappings_by_key(engine.store, index, [key])
    assert key in rows, f"no memory for {index}/{key}"
    return engine.get(rows[key].memory_id)


def keys(engine: Engine, index: str, wanted: list[str]) -> set[str]:
    return set(state.mappings_by_key(engine.store, index, wanted))


# ---------------------------------------------------------------------------------- every dump


@pytest.mark.parametrize("name", sorted(REAL_DUMP_FILES))
def test_every_real_dump_imports_every_document(engine: Engine, name: str) -> None:
    reports = import_dump(engine, real_dump(REAL_DUMP_FILES[name]))
    assert {r.index_uid: r.imported for r in reports} == EXPECTED[name]
    assert {r.index_uid: r.skipped for r in reports} == {u: 0 for u in EXPECTED[name]}
    total = sum(EXPECTED[name].values())
    assert engine.count() == total
    assert state.mapping_count(engine.store) == total
    SPOT_CHECKS[name](engine, reports)


def _movies_v1_to_v4(engine: Engine, reports: list[MigrationReport]) -> None:
    ariel = memory(engine, "indexUID", "2")
    title, overview = ariel.content.split("\n")
    assert title == "Ariel"  # the title-like field is the first line
    assert overview.startswith(ARIEL_OVERVIEW)  # the text people searched
    assert ariel.created_at == 593_395_200  # release_date, Unix seconds
    assert ariel.tags == ("Drama", "Crime", "Comedy")  # genres: a list of short strings
    assert ariel.source == "meili:indexUID"  # the index it came from
    assert ariel.notes == f"poster: {ARIEL_POSTER}"  # every other field, for `show`
    assert reports[0].mapping == {
        "content": ["title", "overview"],
        "created_at": "release_date",
        "tags": "genres",
    }
    assert any("content: title (first line), overview" in e for e in reports[0].explain)
    assert "index: recorded as source meili:indexUID" in reports[0].explain
    assert "into the notes: poster" in reports[0].explain


def _v5(engine: Engine, reports: list[MigrationReport]) -> None:
    film = memory(engine, "test", "83")
    lines = film.content.split("\n")
    assert lines[:5] == [
        "Open Water",
        "Two divers are left out at sea without a boat. There’s nothing but water for miles, "
        "unless they look at what’s underneath them...",
        "Scream all you want.",
        "Chris Kentis",
        "Laura Lau",
    ]
    assert lines[5].startswith("Blanchard Ryan as Susan Watkins, Daniel Travis as")  # cast
    assert film.tags == ("Drama", "Thriller", "Horror", "Plunge-Pictures-LLC")
    assert film.created_at == 1_072_656_000
    assert film.source == "meili:test"
    assert film.notes is not None and "vote_count: 624" in film.notes.splitlines()
    assert memory(engine, "test2", "83").source == "meili:test2"  # same key, other index


def _v6_experimental(engine: Engine, reports: list[MigrationReport]) -> None:
    doc = memory(engine, "test", "1")
    assert doc.content == "this is a test dump to check that experimental features work as intended"
    assert doc.notes is None


def _v6_vectors(engine: Engine, reports: list[MigrationReport]) -> None:
    by_index = {r.index_uid: r for r in reports}
    # bge-base (768 dimensions) is not the configured model: every vector is made again
    assert by_index["vector"].reembed_reasons == {
        "vector model BAAI/bge-base-en-v1.5 is not fake-hash-384": 4
    }
    assert by_index["novector"].reembed_reasons == {
        "no vector in the document": 1,
        "unusable _vectors (kept among the fields)": 1,
    }
    assert memory(engine, "vector", "e1").content == "natural vector"
    assert memory(engine, "novector", "e1").content == "random1"
    rows = state.mappings_by_key(engine.store, "novector", ["e1"])
    assert rows["e1"].extra == {"other": "random1", "_vectors": "toto"}
    assert engine.pending() == 0


def _v6_enqueued(engine: Engine, reports: list[MigrationReport]) -> None:
    assert memory(engine, "kefir", "1").content == "kefir"
    assert memory(engine, "kefir", "2").content == "intel"  # tasks/update_files/2.jsonl
    assert reports[0].mapping == {"content": "dog"}  # the only text field, named or not


SPOT_CHECKS = {
    "V1": _movies_v1_to_v4,
    "V2": _movies_v1_to_v4,
    "V3": _movies_v1_to_v4,
    "V4": _movies_v1_to_v4,
    "V5": _v5,
    "V6-experimental": _v6_experimental,
    "V6-vectors": _v6_vectors,
    "V6-enqueued": _v6_enqueued,
}


# ---------------------------------------------------------------------------------- enqueued


def _edited(name: str, tmp_path: Path, edit: Any) -> Path:
    root = unpack(real_dump(REAL_DUMP_FILES[name]), tmp_path / "unpacked")
    edit(root)
    return pack(root, tmp_path / f"{name}-queued.dump")


def _assert_queued_applied(engine: Engine, index: str = "indexUID") -> None:
    """QUEUED_FILM added, Ariel replaced or merged, Four Rooms (5) deleted: still 53."""
    assert engine.count() == 53
    assert memory(engine, index, "900001").content.startswith("Queued Film\nA lighthouse")
    assert keys(engine, index, ["5"]) == set()


def test_v1_enqueued_updates(engine: Engine, tmp_path: Path) -> None:
    """A V1 dump holds no documents for enqueued additions: said, not applied; the rest is."""

    def edit(root: Path) -> None:
        append_jsonl(
            root / "indexUID" / "updates.jsonl",
            [
                {
                    "status": "enqueued",
                    "updateId": 1,
                    "type": {"name": "DocumentsAddition", "number": 2},
                    "enqueuedAt": "2021-09-08T09:10:00Z",
                },
                {
                    "status": "enqueued",
                    "updateId": 2,
                    "type": {
                        "name": "Settings",
                        "settings": {
                            "ranking_rules": "Nothing",
                            "distinct_attribute": "Nothing",
                            "primary_key": "Nothing",
                            "searchable_attributes": {"Update": ["overview", "title"]},
                            "displayed_attributes": "Nothing",
                            "stop_words": "Nothing",
                            "synonyms": "Nothing",
                            "attributes_for_faceting": {"Update": ["genres"]},
                        },
                    },
                    "enqueuedAt": "2021-09-08T09:10:01Z",
                },
            ],
        )

    dump = _edited("V1", tmp_path, edit)
    [report] = import_dump(engine, dump)
    assert report.imported == 53
    assert any(
        n.startswith("enqueued task 1 (DocumentsAddition) not applied: a V1 dump does not hold")
        for n in report.notes
    )
    # the enqueued settings ran: overview first now, as MeiliSearch would have ranked it
    ariel = memory(engine, "indexUID", "2")
    assert ariel.content.startswith(ARIEL_OVERVIEW)
    assert ariel.content.endswith("\nAriel")

    def clear(root: Path) -> None:
        append_jsonl(
            root / "indexUID" / "updates.jsonl",
            [{"status": "enqueued", "updateId": 3, "type": {"name": "ClearAll"}}],
        )

    shutil.rmtree(tmp_path / "unpacked")
    [cleared] = read_sources(_edited("V1", tmp_path, clear))
    assert cleared.documents == [] and cleared.deleted_by_tasks == 53


def test_v2_enqueued_updates(engine: Engine, tmp_path: Path) -> None:
    content = "11111111-2222-3333-4444-555555555555"

    def edit(root: Path) -> None:
        append_jsonl(
            root / "updates" / "data.jsonl",
            [
                {
                    "uuid": V2_UUID,
                    "update": {
                        "status": "enqueued",
                        "updateId": 1,
                        "meta": {
                            "type": "DocumentsAddition",
                            "method": "ReplaceDocuments",
                            "format": "Json",
                            "primary_key": None,
                        },
                        "enqueuedAt": "2021-09-08T08:32:00Z",
                        "content": content,
                    },
                },
                {
                    "uuid": V2_UUID,
                    "update": {
                        "status": "processing",
                        "updateId": 2,
                        "meta": {"type": "DeleteDocuments", "ids": ["5"]},
                        "enqueuedAt": "2021-09-08T08:32:01Z",
                        "content": None,
                        "startedProcessingAt": "2021-09-08T08:32:02Z",
                    },
                },
            ],
        )
        files = root / "updates" / "update_files"
        files.mkdir(parents=True, exist_ok=True)
        (files / f"update_{content}").write_text(json.dumps([NEW_ARIEL, QUEUED_FILM]))

    [report] = import_dump(engine, _edited("V2", tmp_path, edit))
    assert report.imported == 53
    _assert_queued_applied(engine)
    assert memory(engine, "indexUID", "2").content == "Ariel (restored)"  # replaced whole


def test_v3_enqueued_updates(engine: Engine, tmp_path: Path) -> None:
    content = "66d3f12d-fcf3-4b53-88cb-407017373de7"

    def edit(root: Path) -> None:
        append_jsonl(
            root / "updates" / "data.jsonl",
            [
                {
                    "uuid": V2_UUID,
                    "update": {
                        "status": "enqueued",
                        "updateId": 1,
                        "meta": {
                            "DocumentAddition": {
                                "primary_key": None,
                                "method": "UpdateDocuments",
                                "content_uuid": content,
                            }
                        },
                        "enqueuedAt": "2022-03-09T18:07:00Z",
                    },
                },
                {
                    "uuid": V2_UUID,
                    "update": {
                        "status": "enqueued",
                        "updateId": 2,
                        "meta": {"DeleteDocuments": ["5"]},
                        "enqueuedAt": "2022-03-09T18:07:01Z",
                    },
                },
            ],
        )
        append_jsonl(root / "updates" / "updates_files" / content, [NEW_ARIEL, QUEUED_FILM])

    [report] = import_dump(engine, _edited("V3", tmp_path, edit))
    assert report.imported == 53
    _assert_queued_applied(engine)
    ariel = memory(engine, "indexUID", "2")  # a partial update: merged into the document
    assert ariel.content.startswith(f"Ariel (restored)\n{ARIEL_OVERVIEW}")


def test_v4_enqueued_updates(engine: Engine, tmp_path: Path) -> None:
    content = "9e15e977-f2ae-4761-943f-1eaf75fd736d"

    def edit(root: Path) -> None:
        append_jsonl(
            root / "updates" / "data.jsonl",
            [
                {
                    "id": 1,
                    "index_uid": "indexUID",
                    "content": {
                        "DocumentAddition": {
                            "content_uuid": content,
                            "merge_strategy": "ReplaceDocuments",
                            "primary_key": None,
                            "documents_count": 2,
                            "allow_index_creation": True,
                        }
                    },
                    "events": [{"Created": "2022-03-09T18:20:00Z"}],
                },
                {
                    "id": 2,
                    "index_uid": "indexUID",
                    "content": {"DocumentDeletion": {"Ids": ["5"]}},
                    "events": [
                        {"Created": "2022-03-09T18:20:01Z"},
                        {"Batched": {"timestamp": "2022-03-09T18:20:02Z", "batch_id": 1}},
                    ],
                },
            ],
        )
        append_jsonl(root / "updates" / "updates_files" / content, [NEW_ARIEL, QUEUED_FILM])

    [report] = import_dump(engine, _edited("V4", tmp_path, edit))
    assert report.imported == 53
    _assert_queued_applied(engine)
    assert memory(engine, "indexUID", "2").content == "Ariel (restored)"


def test_v5_enqueued_updates(engine: Engine, tmp_path: Path) -> None:
    content = "2361df23-36ff-47f0-995a-c56bb83a1e8a"
    created = {"Created": "2022-06-08T15:12:00Z"}

    def edit(root: Path) -> None:
        append_jsonl(
            root / "updates" / "data.jsonl",
            [
                {
                    "id": 5,
                    "content": {
                        "DocumentAddition": {
                            "index_uid": "test2",
                            "content_uuid": content,
                            "merge_strategy": "UpdateDocuments",
                            "primary_key": None,
                            "documents_count": 2,
                            "allow_index_creation": True,
                        }
                    },
                    "events": [created, {"Processing": "2022-06-08T15:12:01Z"}],
                },
                {
                    "id": 6,
                    "content": {
                        "DocumentDeletion": {"index_uid": "test2", "deletion": {"Ids": ["9"]}}
                    },
                    "events": [created],
                },
                {
                    "id": 7,
                    "content": {
                        "SettingsUpdate": {
                            "index_uid": "test",
                            "settings": {"searchableAttributes": ["overview", "title"]},
                            "is_deletion": False,
                            "allow_index_creation": True,
                        }
                    },
                    "events": [created],
                },
            ],
        )
        append_jsonl(
            root / "updates" / "updates_files" / content,
            [{"id": 83, "title": "Open Water (director's cut)"}, QUEUED_FILM],
        )

    reports = {r.index_uid: r for r in import_dump(engine, _edited("V5", tmp_path, edit))}
    assert (reports["test"].imported, reports["test2"].imported) == (10, 10)  # +1 -1 in test2
    assert memory(engine, "test2", "900001").content.startswith("Queued Film\n")
    assert keys(engine, "test2", ["9"]) == set()
    assert memory(engine, "test2", "83").content.startswith(
        "Open Water (director's cut)\nTwo divers"
    )
    # the settings update was for `test` only: its content follows the new order
    assert memory(engine, "test", "83").content == (
        "Two divers are left out at sea without a boat. There’s nothing but water for miles, "
        "unless they look at what’s underneath them...\nOpen Water"
    )
    assert memory(engine, "test2", "83").content.count("\n") > 1


def test_v6_enqueued_updates(engine: Engine, tmp_path: Path) -> None:
    def edit(root: Path) -> None:
        append_jsonl(
            root / "tasks" / "queue.jsonl",
            [
                {
                    "uid": 4,
                    "batchUid": None,
                    "indexUid": "kefir",
                    "status": "processing",
                    "type": {
                        "documentImport": {
                            "primary_key": None,
                            "method": "UpdateDocuments",
                            "documents_count": 1,
                            "allow_index_creation": True,
                        }
                    },
                    "enqueuedAt": "2025-02-04T10:23:00Z",
                },
                {
                    "uid": 5,
                    "batchUid": None,
                    "indexUid": "kefir",
                    "status": "enqueued",
                    "type": {"documentDeletion": {"documents_ids": ["1"]}},
                    "enqueuedAt": "2025-02-04T10:23:01Z",
                },
            ],
        )
        append_jsonl(root / "tasks" / "update_files" / "4.jsonl", [{"id": 2, "cat": "patou"}])

    [report] = import_dump(engine, _edited("V6-enqueued", tmp_path, edit))
    assert report.imported == 1
    assert keys(engine, "kefir", ["1"]) == set()  # deleted by task 5
    intel = memory(engine, "kefir", "2")  # added by task 2, merged by task 4
    assert intel.content == "intel\npatou"


# ---------------------------------------------------------------------------------- idempotent


def test_reimport_across_versions_adds_no_duplicates(engine: Engine, tmp_path: Path) -> None:
    v4 = real_dump(REAL_DUMP_FILES["V4"])
    [first] = import_dump(engine, v4)
    assert first.imported == 53
    docs = movie_docs(v4)
    docs[0] = {**docs[0], "overview": docs[0]["overview"] + " (new cut)"}
    v6 = write_dump(
        tmp_path / "movies-v6.dump",
        index="indexUID",
        documents=docs,
        settings={"searchableAttributes": ["*"], "filterableAttributes": []},
        tasks=[],
    )
    [again] = import_dump(engine, v6)
    assert (again.imported, again.updated) == (0, 1)
    assert again.reasons == {"already present": 52}
    assert engine.count() == 53
    assert memory(engine, "indexUID", str(docs[0]["id"])).content.endswith("(new cut)")
    [old] = import_dump(engine, real_dump(REAL_DUMP_FILES["V1"]))  # and back to 0.20's dump
    assert (old.imported, old.updated, engine.count()) == (0, 1, 53)


# ---------------------------------------------------------------------------------- indexes


def test_index_option_takes_several_names_or_all(engine: Engine) -> None:
    v5 = real_dump(REAL_DUMP_FILES["V5"])
    assert [s.index_uid for s in read_sources(v5, index="all")] == ["test", "test2"]
    assert [s.index_uid for s in read_sources(v5, index=["test2", "test"])] == ["test2", "test"]
    assert [s.index_uid for s in read_sources(v5, index="test2,test")] == ["test2", "test"]
    with pytest.raises(
        MigrationError, match=r"no index 'films' in the dump \(it holds test, test2\)"
    ):
        read_sources(v5, index=["test", "films"])
    reports = import_dump(engine, v5, index=["test2"])
    assert [r.index_uid for r in reports] == ["test2"] and engine.count() == 10


def test_map_overrides_the_content_choice(engine: Engine) -> None:
    [report] = import_dump(
        engine, real_dump(REAL_DUMP_FILES["V1"]), maps=("overview=content", "poster=keep")
    )
    assert report.mapping["content"] == "overview"
    ariel = memory(engine, "indexUID", "2")
    assert ariel.content.startswith(ARIEL_OVERVIEW) and "\n" not in ariel.content
    assert ariel.notes == f"title: Ariel\nposter: {ARIEL_POSTER}"


# ---------------------------------------------------------------------------------- bad input


def _nothing_written(engine: Engine) -> None:
    assert engine.count() == 0
    assert state.mapping_count(engine.store) == 0


def _one_line(exc: pytest.ExceptionInfo[MigrationError]) -> str:
    message = str(exc.value)
    assert "\n" not in message and message
    return message


def test_truncated_real_dump(engine: Engine, tmp_path: Path) -> None:
    dump = truncate(Path(shutil.copy(real_dump(REAL_DUMP_FILES["V4"]), tmp_path / "cut.dump")))
    with pytest.raises(MigrationError) as err:
        import_dump(engine, dump)
    assert _one_line(err).startswith(f"{dump}: truncated or corrupt dump archive")
    _nothing_written(engine)


def test_corrupted_real_dump(engine: Engine, tmp_path: Path) -> None:
    dump = corrupt(Path(shutil.copy(real_dump(REAL_DUMP_FILES["V5"]), tmp_path / "bad.dump")))
    with pytest.raises(MigrationError) as err:
        import_dump(engine, dump)
    assert _one_line(err).startswith(f"{dump}: truncated or corrupt dump archive")
    _nothing_written(engine)


@pytest.mark.parametrize(
    ("member", "link", "says"),
    [
        ("/tmp/ephemera-evil.json", None, "has an absolute path: refused"),
        ("indexes/notes/../../../ephemera-evil.json", None, "leads outside the dump (..): refused"),
        ("../ephemera-evil.json", None, "leads outside the dump (..): refused"),
        ("indexes/notes/evil", "/etc/passwd", "is a link ('/etc/passwd'): refused"),
    ],
)
def test_unsafe_archive_members_are_refused(
    engine: Engine, tmp_path: Path, member: str, link: str | None, says: str
) -> None:
    dump = evil_dump(tmp_path / "evil.dump", member, link=link)
    with pytest.raises(MigrationError) as err:
        import_dump(engine, dump)
    assert _one_line(err) == f"{dump}: archive member {member!r} {says}"
    assert not (tmp_path.parent / "ephemera-evil.json").exists()
    assert not Path("/tmp/ephemera-evil.json").exists()
    _nothing_written(engine)


def test_future_dump_version_is_refused(engine: Engine, tmp_path: Path) -> None:
    dump = write_dump(tmp_path / "future.dump", version="V7")
    with pytest.raises(MigrationError) as err:
        import_dump(engine, dump)
    assert _one_line(err).startswith(
        f"{dump}:metadata.json:1: unsupported dump version 'V7': this release reads V1 to V6"
    )
    _nothing_written(engine)


def test_document_without_primary_key_writes_nothing(engine: Engine, tmp_path: Path) -> None:
    docs = [{"id": 1, "text": "has a key"}, {"text": "has none"}, {"id": 3, "text": "fine"}]
    dump = write_dump(tmp_path / "nokey.dump", documents=docs, tasks=[])
    with pytest.raises(MigrationError) as err:
        import_dump(engine, dump)
    assert _one_line(err) == (
        f"{dump}:indexes/notes/documents.jsonl:2: no primary key 'id' (got None)"
    )
    _nothing_written(engine)


def test_a_bad_document_in_one_index_writes_no_index(engine: Engine, tmp_path: Path) -> None:
    def edit(root: Path) -> None:
        file = next(root.glob("indexes/da4c3275*/documents.jsonl"))  # test2
        append_jsonl(file, [{"title": "a film without its id"}])

    dump = _edited("V5", tmp_path, edit)
    with pytest.raises(MigrationError) as err:
        import_dump(engine, dump)
    assert "documents.jsonl:11: no primary key 'id'" in _one_line(err)
    _nothing_written(engine)  # not even the 10 good documents of `test`


def _ephemera(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_ephemera(*args, env=env, timeout=180)


def test_command_imports_every_index_and_refuses_unsafe_members(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    v5 = real_dump(REAL_DUMP_FILES["V5"])
    done = _ephemera(cli_env, "migrate", "meili", "import", str(v5), "--index", "all", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert [(i["index"], i["imported"]) for i in data["indexes"]] == [("test", 10), ("test2", 10)]
    assert data["imported"] == 20

    evil = evil_dump(tmp_path / "evil.dump", "../ephemera-evil.json")
    failed = _ephemera(cli_env, "migrate", "meili", "import", str(evil))
    assert failed.returncode == 1
    lines = failed.stderr.strip().splitlines()
    assert lines == [
        f"ephemera: error: {evil}: archive member '../ephemera-evil.json' leads outside the "
        "dump (..): refused"
    ]
