"""Keeping the vector store in step with SQL: :mod:`.outbox` drains queued writes,
:mod:`.reconcile` cross-checks and repairs a range of ids, :mod:`.worker` runs both (and the
scheduled backups) in the background loop.

Modules are imported by name (``from ephemera_tui.engine.sync.worker import Worker``); this
file only makes the folder a regular package, so tools that walk the package see it.
"""
