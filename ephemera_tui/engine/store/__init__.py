"""All SQL the engine runs: connection and migrations, memories, keyword search, the vector
outbox, meta keys and leases.

- :mod:`.connection` creates the SQLAlchemy engine, migrates, classifies driver errors;
- :mod:`.tables` holds the SQLModel tables;
- :mod:`.sql` is :class:`SqlStore`, the one object the rest of the engine reads and writes
  through (memories, tags, outbox, meta, paging and aggregates);
- :mod:`.keyword` is full-text search (FTS5 or InnoDB FULLTEXT);
- :mod:`.conditions` turns a search filter into SQL conditions;
- :mod:`.meta` is the registry of meta keys and the lease.
"""

from ..domain import Change
from .connection import describe_url, make_sql_engine, migrate
from .keyword import STOPWORDS
from .meta import Lease, MetaKey
from .sql import IdAllocator, OutboxItem, SqlStore, tag_rows
from .tables import CHANGES, FRAGMENTS, LINKS, META, OUTBOX, TAGS

__all__ = [
    "CHANGES",
    "FRAGMENTS",
    "LINKS",
    "META",
    "OUTBOX",
    "STOPWORDS",
    "TAGS",
    "Change",
    "IdAllocator",
    "Lease",
    "MetaKey",
    "OutboxItem",
    "SqlStore",
    "describe_url",
    "make_sql_engine",
    "migrate",
    "tag_rows",
]
