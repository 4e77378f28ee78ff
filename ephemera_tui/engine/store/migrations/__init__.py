"""Alembic migrations, run programmatically by :func:`ephemera_tui.engine.store.migrate`."""
