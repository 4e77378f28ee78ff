"""Importing MeiliSearch dumps and exports (SQLite and MariaDB through ``db_url``)."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from ephemera_tui.engine import Engine
from ephemera_tui.migration import state
from ephemera_tui.migration.importer import Importer, MigrationReport, preview
from ephemera_tui.migration.mapping import build_mapping, parse_map_options, read_vectors
from ephemera_tui.migration.readers import MigrationError, read_source
from tests.helpers import run_ephemera
from tests.test_meili_support import (
    export_documents,
    one_hot,
    sample_documents,
    sample_tasks,
    truncate,
    write_dump,
    write_pages,
)


def run_import(engine: Engine, path: Path, maps: tuple[str, ...] = (), **kwargs) -> MigrationReport:
    skip_bad = kwargs.pop("skip_bad", False)
    vectors_model = kwargs.pop("vectors_model", None)
    source = read_source(path, skip_bad=skip_bad, **kwargs)
    fmap = build_mapping(
        [d.data for d in source.documents],
        parse_map_options(maps),
        source.primary_key,
        source.settings,
    )
    return Importer(engine, vectors_model=vectors_model).run(source, fmap, skip_bad=skip_bad)


def by_key(engine: Engine, index: str = "notes") -> dict[str, state.MappingRow]:
    keys = ["1", "2", "3", "four", "6", "7", "a1", "a2", "a3"]
    return state.mappings_by_key(engine.store, index, keys)


# ---------------------------------------------------------------------------------- dumps


def test_dump_import_maps_fields_keeps_keys_and_reuses_matching_vectors(
    engine: Engine, tmp_path: Path
) -> None:
    dump = write_dump(tmp_path / "notes.dump")
    report = run_import(engine, dump)

    assert (report.imported, report.updated, report.skipped) == (5, 0, 0)
    assert report.vectors_reused == 2  # the {"embeddings": …} and flat-list shapes
    assert report.reembedded == 3  # null vector, wrong dimension, none at all
    assert report.reembed_reasons == {
        "no vector in the document": 2,
        "vector dimension 3 is not 384": 1,
    }
    assert report.mapping == {
        "content": "text",
        "created_at": "timestamp",
        "tags": "labels",
        "importance": "priority",
    }
    rows = by_key(engine)
    assert set(rows) == {"1", "2", "3", "four", "6"}  # 7 was deleted by an enqueued task
    memories = engine.get_many([r.memory_id for r in rows.values()])
    first = memories[rows["1"].memory_id]
    assert first.content == "walked the dog in the rain"
    assert first.created_at == 1_700_000_000
    assert first.tags == ("dog", "walk")
    assert first.importance == 200
    assert first.source == "meili:notes"  # the index it came from
    assert first.notes is None  # every field went somewhere
    assert memories[rows["2"].memory_id].created_at == 1_700_000_100  # from milliseconds
    assert memories[rows["2"].memory_id].tags == ("food", "shopping")
    iso = int(datetime.fromisoformat("2023-11-14T22:15:00+00:00").timestamp())
    assert memories[rows["3"].memory_id].created_at == iso
    # every field is kept with the primary key, including the enqueued update's merge, and
    # the ones no target took (mood is not searchable here) are in the notes, for `show`
    assert rows["four"].extra == {
        "text": "a quiet evening with a book",
        "timestamp": 1_700_000_300,
        "mood": "happy",
        "_geo": {"lat": 48.85, "lng": 2.35},
    }
    assert rows["3"].extra["mood"] == "calm"
    assert (
        memories[rows["four"].memory_id].notes == 'mood: happy\n_geo: {"lat": 48.85, "lng": 2.35}'
    )
    assert memories[rows["3"].memory_id].notes == "mood: calm"
    assert memories[rows["6"].memory_id].content == "still in the queue at dump time"

    vectors = engine.vectors()
    assert vectors is not None
    stored = vectors.vectors([rows["1"].memory_id, rows["2"].memory_id, rows["3"].memory_id])
    assert np.allclose(stored[rows["1"].memory_id], one_hot(7))
    assert np.allclose(stored[rows["2"].memory_id], one_hot(9))
    remade = engine.embedder.embed(["team meeting about the roadmap"])[0]
    assert np.allclose(stored[rows["3"].memory_id], remade, atol=1e-5)
    assert engine.pending() == 0
    assert engine.check().problems == 0

    recorded = state.get_json(engine.store, state.META_LAST_DUMP)
    assert recorded["path"] == str(dump.resolve())


def test_rerunning_an_import_duplicates_nothing_and_applies_changes(
    engine: Engine, tmp_path: Path
) -> None:
    dump = write_dump(tmp_path / "notes.dump")
    run_import(engine, dump)
    count = engine.count()
    again = run_import(engine, dump)
    assert (again.imported, again.updated) == (0, 0)
    assert again.reasons == {"already present": 5}
    assert engine.count() == count

    docs = sample_documents()
    docs[0]["text"] = "walked the dog in the sun"
    docs[3]["mood"] = "sleepy"
    changed = write_dump(tmp_path / "changed.dump", documents=docs)
    third = run_import(engine, changed)
    assert third.imported == 0 and third.updated == 2  # the text, and the mood in the notes
    assert third.reasons == {"already present": 3}
    rows = by_key(engine)
    assert engine.get(rows["1"].memory_id).content == "walked the dog in the sun"
    assert rows["four"].extra["mood"] == "sleepy"
    assert engine.count() == count

    engine.delete(rows["2"].memory_id)
    fourth = run_import(engine, changed)
    assert fourth.reasons.get("deleted in Ephemera since an earlier import") == 1
    assert engine.count() == count - 1


def test_vectors_from_another_model_are_reembedded(engine: Engine, tmp_path: Path) -> None:
    from tests.test_meili_support import sample_settings

    dump = write_dump(tmp_path / "notes.dump", settings=sample_settings("BAAI/bge-small-en-v1.5"))
    report = run_import(engine, dump)
    assert report.vectors_reused == 0
    assert report.reembedded == 5
    assert report.reembed_reasons["vector model BAAI/bge-small-en-v1.5 is not fake-hash-384"] == 3


def test_vector_shapes_are_all_accepted() -> None:
    assert read_vectors({"a": {"embeddings": [[1, 2]], "regenerate": True}}) == (
        {"a": [[1.0, 2.0]]},
        {"a": True},
    )
    assert read_vectors({"a": {"embeddings": [1, 2], "regenerate": False}})[0] == {
        "a": [[1.0, 2.0]]
    }
    assert read_vectors({"a": [1, 2]})[0] == {"a": [[1.0, 2.0]]}
    assert read_vectors({"a": [[1, 2], [3, 4]]})[0] == {"a": [[1.0, 2.0], [3.0, 4.0]]}
    assert read_vectors({"a": None})[0] == {"a": []}
    assert read_vectors({"a": []})[0] == {"a": []}
    assert read_vectors({})[0] == {}
    assert read_vectors(None)[0] == {}


def test_dump_with_several_indexes_needs_a_choice(engine: Engine, tmp_path: Path) -> None:
    dump = write_dump(tmp_path / "two.dump", extra_indexes=("archive",))
    with pytest.raises(MigrationError, match="indexes archive, notes: choose one with --index"):
        read_source(dump)
    assert read_source(dump, index="notes").index_uid == "notes"


# ---------------------------------------------------------------------------------- bad dumps


def test_truncated_dump_is_refused_and_writes_nothing(engine: Engine, tmp_path: Path) -> None:
    dump = truncate(write_dump(tmp_path / "cut.dump"))
    with pytest.raises(MigrationError) as err:
        run_import(engine, dump)
    message = str(err.value)
    assert message.startswith(f"{dump}: truncated or corrupt dump archive")
    assert "\n" not in message
    assert engine.count() == 0


def test_dump_without_metadata_is_refused(engine: Engine, tmp_path: Path) -> None:
    dump = write_dump(tmp_path / "nometa.dump", omit=("metadata.json",))
    with pytest.raises(
        MigrationError, match=r"nometa\.dump: not a MeiliSearch dump: metadata\.json is missing"
    ):
        run_import(engine, dump)
    assert engine.count() == 0


def test_unknown_dump_version_is_refused(engine: Engine, tmp_path: Path) -> None:
    dump = write_dump(tmp_path / "v9.dump", version="V9")
    with pytest.raises(
        MigrationError, match=r"v9\.dump:metadata\.json:1: unsupported dump version 'V9'"
    ):
        run_import(engine, dump)
    assert engine.count() == 0


def test_bad_line_names_file_and_line_and_imports_nothing(engine: Engine, tmp_path: Path) -> None:
    lines = [json.dumps(d) for d in sample_documents()]
    lines.insert(2, '{"id": 99, "text": "broken",')
    dump = write_dump(tmp_path / "bad.dump", documents_text="\n".join(lines) + "\n")
    with pytest.raises(MigrationError) as err:
        run_import(engine, dump)
    assert str(err.value).startswith(f"{dump}:indexes/notes/documents.jsonl:3: not valid JSON")
    assert engine.count() == 0
    assert state.mapping_count(engine.store) == 0

    report = run_import(engine, dump, skip_bad=True)
    assert report.imported == 5
    assert report.reasons == {"invalid document": 1}
    assert report.invalid[0].startswith(f"{dump}:indexes/notes/documents.jsonl:3:")


def test_document_with_bad_value_names_its_line(engine: Engine, tmp_path: Path) -> None:
    docs = sample_documents()
    docs[1]["priority"] = 900
    dump = write_dump(tmp_path / "value.dump", documents=docs)
    # a guess never picks a field whose values do not fit: 900 stays a kept field
    assert "importance" not in run_import(engine, dump, skip_bad=True).mapping
    with pytest.raises(MigrationError) as err:
        run_import(
            engine, write_dump(tmp_path / "v2.dump", documents=docs), ("priority=importance",)
        )
    assert str(err.value) == (
        f"{tmp_path / 'v2.dump'}:indexes/notes/documents.jsonl:2: field 'priority' "
        "(importance) must be a "
        "whole number 0-255, got 900"
    )


def test_enqueued_task_without_update_file_is_an_error(engine: Engine, tmp_path: Path) -> None:
    dump = write_dump(tmp_path / "noupdate.dump", omit=("tasks/update_files/5.jsonl",))
    with pytest.raises(
        MigrationError, match=r"tasks/queue\.jsonl:2: enqueued task 5 has no update file"
    ):
        run_import(engine, dump)
    assert engine.count() == 0


# ---------------------------------------------------------------------------------- exports


@pytest.mark.parametrize("shape", ["ndjson", "array", "pages", "pages-in-one-file"])
def test_exports_import_in_every_shape(engine: Engine, tmp_path: Path, shape: str) -> None:
    docs = export_documents()
    if shape == "ndjson":
        path = tmp_path / "docs.ndjson"
        path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    elif shape == "array":
        path = tmp_path / "docs.json"
        path.write_text(json.dumps(docs, indent=2))
    elif shape == "pages":
        path = write_pages(tmp_path / "pages", docs, limit=2)
    else:
        path = tmp_path / "pages.jsonl"
        path.write_text(
            "".join(
                json.dumps({"results": docs[o : o + 1], "offset": o, "limit": 1, "total": 3}) + "\n"
                for o in range(3)
            )
        )
    report = run_import(engine, path, maps=("stars=importance",), index="journal")
    assert report.imported == 3, report.to_dict()
    assert report.mapping == {
        "content": "body",
        "created_at": "createdAt",
        "source": "category",
        "tags": "keywords",
        "importance": "stars",
    }
    rows = by_key(engine, "journal")
    assert set(rows) == {"a1", "a2", "a3"}
    memories = engine.get_many([r.memory_id for r in rows.values()])
    assert memories[rows["a2"].memory_id].created_at == 1_714_557_600
    assert memories[rows["a2"].memory_id].importance == 4
    assert memories[rows["a3"].memory_id].source == "work"
    assert report.reembedded == 3
    again = run_import(engine, path, maps=("stars=importance",), index="journal")
    assert again.imported == 0 and again.reasons == {"already present": 3}


def test_missing_page_is_an_error_unless_skipping(engine: Engine, tmp_path: Path) -> None:
    folder = write_pages(tmp_path / "pages", export_documents(), limit=1, skip=(1,))
    with pytest.raises(MigrationError, match=r"cover 2 of 3 documents \(missing offsets 1\)"):
        run_import(engine, folder)
    assert engine.count() == 0
    report = run_import(engine, folder, skip_bad=True)
    assert report.imported == 2


def test_bad_ndjson_line_and_unknown_map_target(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "docs.ndjson"
    path.write_text('{"uid": "x", "body": "ok"}\nnot json\n')
    with pytest.raises(MigrationError, match=r"docs\.ndjson:2: not valid JSON"):
        run_import(engine, path)
    with pytest.raises(Exception, match="unknown target 'colour'"):
        parse_map_options(["body=colour"])


def test_preview_shows_mapping_and_samples_without_writing(tmp_path: Path) -> None:
    dump = write_dump(tmp_path / "notes.dump")
    source = read_source(dump)
    fmap = build_mapping([d.data for d in source.documents], {"mood": "notes"}, "id")
    data = preview(source, fmap, 1_767_225_600.0)
    assert data["mapping"]["notes"] == {"field": "mood", "fields": ["mood"], "guessed": False}
    assert data["mapping"]["content"] == {"field": "text", "fields": ["text"], "guessed": True}
    assert data["documents"] == 5
    assert data["samples"][0]["vectors"] == {"default": [384]}
    assert data["kept_fields"] == {"_geo": 1}


def test_tasks_fixture_has_an_enqueued_update_file() -> None:
    assert any(update for _, update in sample_tasks())


# ---------------------------------------------------------------------------------- command


def _ephemera(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_ephemera(*args, env=env, timeout=120)


def test_command_imports_previews_and_reports(cli_env: dict[str, str], tmp_path: Path) -> None:
    dump = write_dump(tmp_path / "notes.dump")
    shown = _ephemera(cli_env, "migrate", "meili", "import", str(dump), "--preview")
    assert shown.returncode == 0, shown.stderr
    assert "text -> content  (guessed)" in shown.stdout
    assert "nothing written" in shown.stdout

    done = _ephemera(cli_env, "migrate", "meili", "import", str(dump), "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert (data["imported"], data["vectors_reused"], data["reembedded"]) == (5, 2, 3)

    again = _ephemera(cli_env, "migrate", "meili", "import", str(dump))
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("imported 0, updated 0, skipped 5 (5 already present)")

    bad = truncate(write_dump(tmp_path / "cut.dump"))
    failed = _ephemera(cli_env, "migrate", "meili", "import", str(bad))
    assert failed.returncode == 1
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"ephemera: error: {bad}: truncated")
