"""Engine errors: every one carries a message fit to show a user in one line."""


class EphemeraError(Exception):
    """Base class; ``str(err)`` is a one-line message naming what was wrong and where."""


class ValidationError(EphemeraError):
    """Bad input from a user, a form, an import file or a config file."""


class NotFoundError(EphemeraError):
    """A memory id that does not exist."""


class DatabaseError(EphemeraError):
    """The SQL database is unreachable or refused an operation.

    ``duplicate_key`` and ``retryable`` are decided from the driver's error code (see
    :func:`ephemera_tui.engine.store.connection.database_error`), never from message text.
    """

    def __init__(self, message: str, *, duplicate_key: bool = False, retryable: bool = False):
        super().__init__(message)
        self.duplicate_key = duplicate_key
        """A primary-key or unique constraint refused the write (another writer got there)."""
        self.retryable = retryable
        """The transaction was rolled back whole (deadlock, lock timeout, busy): run it again."""


class EmbeddingError(EphemeraError):
    """The embedding model cannot be loaded or does not fit the collection."""


class VectorStoreError(EphemeraError):
    """The vector store is unavailable (locked by another process, unreachable, corrupt)."""


class ConfigError(EphemeraError):
    """A configuration file, variable or flag has a bad value."""


class ConflictError(EphemeraError):
    """An edit or delete named a revision that is no longer the memory's latest: someone
    else changed it meanwhile. ``current`` is the memory as it is now (a
    :class:`~ephemera_tui.engine.domain.Memory`), so the caller can show both versions."""

    def __init__(self, message: str, current: object) -> None:
        super().__init__(message)
        self.current = current
