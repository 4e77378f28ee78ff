"""SQLite keyword search takes each word's stem from FTS5's own tokenizer, and reads through
temp tables made once per connection."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import event

from ephemera_tui.engine import Draft, Engine, Settings
from ephemera_tui.engine.filters import SearchFilter
from ephemera_tui.engine.store import keyword


def sqlite_engine(tmp_path: Path) -> Engine:
    return Engine(Settings(data_dir=tmp_path / "data", embedding_model="fake-hash-384"))


def test_words_get_the_index_tokenizers_terms(tmp_path: Path) -> None:
    with sqlite_engine(tmp_path) as engine, engine.store.read() as conn:
        got = keyword.fts_terms(conn, ["feeling", "cafés", "ai", "running", "x_y", "_"])
        assert got == {
            "feeling": ("feel",),
            "cafés": ("cafe",),  # diacritics go, as in the index
            "ai": ("ai",),
            "running": ("run",),
            "x_y": ("x", "y"),  # two tokens for the tokenizer
            "_": (),
        }
        # What a match finds is what the stem says: every form of the word.
        engine.add(Draft("we were feeling the sun"))
        assert keyword.fts_terms(conn, ["feels"]) == {"feels": ("feel",)}


def test_the_database_file_is_not_written_by_stemming(tmp_path: Path) -> None:
    with sqlite_engine(tmp_path) as engine:
        engine.add(Draft("a quiet evening"))
        db = Path(engine.store.engine.url.database or "")
        wal = db.with_name(db.name + "-wal")
        before = (db.stat().st_mtime_ns, wal.stat().st_size if wal.exists() else 0)
        words = [f"unseen{i}ing" for i in range(50)]
        engine.store.keyword_search(words, SearchFilter(), 10, budget=100)
        after = (db.stat().st_mtime_ns, wal.stat().st_size if wal.exists() else 0)
        assert after == before


def test_scratch_tables_are_made_once_per_connection(tmp_path: Path) -> None:
    with sqlite_engine(tmp_path) as engine:
        engine.add(Draft("otters at the harbour"))
        seen: list[str] = []

        def record(*args: object) -> None:
            seen.append(str(args[2]))

        event.listen(engine.store.engine, "before_cursor_execute", record)
        for word in ("otters", "harbours", "seals", "boats"):  # new words: look-ups each time
            assert engine.store.keyword_search([word], SearchFilter(), 5, budget=100) is not None
        assert any("memory_fts_vocab" in s for s in seen)
        assert any("stem_scratch" in s for s in seen)
        assert not [s for s in seen if "CREATE" in s.upper()]


def test_stems_use_the_tokenizer_the_index_was_made_with(tmp_path: Path) -> None:
    with sqlite_engine(tmp_path) as engine, engine.store.read() as conn:
        ddl = conn.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE name = 'memory_fts'"
        ).scalar_one()
        assert f"tokenize='{keyword.FTS_TOKENIZE}'" in ddl
