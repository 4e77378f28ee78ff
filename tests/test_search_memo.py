"""One keystroke, one keyword query: the app's keyword-only pass and the hybrid pass that
follows it share the parse and the keyword side; a write in between is seen at once."""

from __future__ import annotations

from sqlalchemy import event

from ephemera_tui.engine import Draft, Engine


def test_the_two_passes_of_a_keystroke_share_the_keyword_side(engine: Engine) -> None:
    for text in ("lisbon trip in may", "lisbon tram ride", "dentist on friday"):
        engine.add(Draft(content=text))
    statements: list[str] = []

    def seen(_c: object, _cur: object, statement: str, *_a: object) -> None:
        upper = statement.upper()
        if "MATCH" in upper and "COUNT(" not in upper:  # the search, not a word count
            statements.append(statement)

    event.listen(engine.store.engine, "before_cursor_execute", seen)
    try:
        first = engine.search("lisbon", keyword_only=True)
        second = engine.search("lisbon")
        assert [h.memory.id for h in first.hits][:2] and second.mode == "hybrid"
        assert len(statements) == 1  # the hybrid pass reused the keyword answer
        added = engine.add(Draft(content="lisbon again, a new memory"))
        third = engine.search("lisbon", keyword_only=True)
        assert added.id in [h.memory.id for h in third.hits]  # a local write is seen at once
        assert len(statements) == 2
    finally:
        event.remove(engine.store.engine, "before_cursor_execute", seen)
