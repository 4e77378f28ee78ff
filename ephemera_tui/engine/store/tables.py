"""SQLModel tables: the seed's ``memory_fragments`` plus tags, the vector outbox and metadata."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.mysql import MEDIUMTEXT, TINYINT, VARCHAR
from sqlmodel import Field, SQLModel

# TINYINT UNSIGNED on MySQL (as the seed says); SMALLINT elsewhere. Range checked in the domain.
Byte = SmallInteger().with_variant(TINYINT(unsigned=True), "mysql", "mariadb")
# MEDIUMTEXT on MySQL (TEXT stops at 64 KB); SQLite's TEXT has no such limit.
LongText = Text().with_variant(MEDIUMTEXT(), "mysql", "mariadb")
# A tag compared byte for byte: MySQL's default collations equate case and accents.
_EXACT = String(100).with_variant(VARCHAR(100, collation="utf8mb4_bin"), "mysql", "mariadb")


class MemoryFragment(SQLModel, table=True):
    """The seed's table, column by column; FULLTEXT (MySQL) or FTS5 (SQLite) via migrations."""

    __tablename__ = "memory_fragments"
    __table_args__ = (
        Index("idx_created_at", "created_at"),
        Index("idx_source", "source"),
        Index("idx_importance", "importance"),
        Index("idx_created_source_importance", "created_at", "source", "importance"),
        {"mysql_charset": "utf8mb4", "mysql_engine": "InnoDB"},
    )

    id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    content: str = Field(sa_column=Column(LongText, nullable=False))
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    source: str = Field(sa_column=Column(String(50), nullable=False))
    importance: int | None = Field(default=None, sa_column=Column(Byte, nullable=True))
    confidence: int | None = Field(default=None, sa_column=Column(Byte, nullable=True))
    tags: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    notes: str | None = Field(default=None, sa_column=Column(LongText, nullable=True))
    associations: list[int] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    revision: int = Field(
        default=1, sa_column=Column(BigInteger, nullable=False, server_default="1")
    )


class MemoryTag(SQLModel, table=True):
    """One row per (memory, tag): the tag as written (compared byte for byte, so ``cafe`` and
    ``café`` are two tags on every backend) and ``folded``, the form tag filters compare
    (:func:`~ephemera_tui.engine.filters.fold_tag`, as the vector payload's ``tags_lc``)."""

    __tablename__ = "memory_tags"
    __table_args__ = (
        Index("idx_tag_memory", "tag", "memory_id"),
        Index("idx_tag_folded_memory", "folded", "memory_id"),
        {"mysql_charset": "utf8mb4", "mysql_engine": "InnoDB"},
    )

    memory_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    tag: str = Field(sa_column=Column(_EXACT, primary_key=True))
    folded: str = Field(sa_column=Column(_EXACT, nullable=False, server_default=""))


class MemoryLink(SQLModel, table=True):
    """One row per (memory, memory it links to), kept in step with ``associations`` in the
    same transaction: the links that point at a memory are found by index, not by reading
    every row's associations. Derived data, so backups leave it out and a restore rebuilds it."""

    __tablename__ = "memory_links"
    __table_args__ = (
        Index("idx_link_target", "target_id", "memory_id"),
        {"mysql_charset": "utf8mb4", "mysql_engine": "InnoDB"},
    )

    memory_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    target_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))


class VectorOutbox(SQLModel, table=True):
    """A memory whose vector must be (re)written or deleted; cleared once the vector store agrees.

    ``token`` changes on every enqueue so a drain never clears a newer edit it did not see.
    """

    __tablename__ = "vector_outbox"
    __table_args__ = (
        Index("idx_outbox_due", "not_before"),
        {"mysql_charset": "utf8mb4", "mysql_engine": "InnoDB"},
    )

    memory_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    op: str = Field(sa_column=Column(String(10), nullable=False))
    content_hash: str | None = Field(default=None, sa_column=Column(String(16), nullable=True))
    token: int = Field(sa_column=Column(BigInteger, nullable=False))
    enqueued_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    not_before: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class MemoryChange(SQLModel, table=True):
    """One write, recorded in the write's own transaction: the change feed.

    ``seq`` only grows; ``op`` is add, update, delete, link, restore or reembed (the last two
    concern the whole journal: ``memory_id`` is NULL)."""

    __tablename__ = "memory_changes"
    __table_args__ = (
        {"mysql_charset": "utf8mb4", "mysql_engine": "InnoDB", "sqlite_autoincrement": True},
    )

    seq: int | None = Field(
        default=None,
        sa_column=Column(
            BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
    )
    memory_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    op: str = Field(sa_column=Column(String(16), nullable=False))
    revision: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    at: int = Field(sa_column=Column(BigInteger, nullable=False))


class Meta(SQLModel, table=True):
    """Small key/value facts: vector model in use, last check, last backup, worker leases."""

    __tablename__ = "ephemera_meta"
    __table_args__ = ({"mysql_charset": "utf8mb4", "mysql_engine": "InnoDB"},)

    key: str = Field(sa_column=Column(String(100), primary_key=True))
    value: str = Field(sa_column=Column(Text, nullable=False))


# The Core tables behind the models, for the bulk and full-text paths that need SQL expressions
# (single-row reads and meta keys go through the models; see sql.py).
_TABLES = SQLModel.metadata.tables
FRAGMENTS: Table = _TABLES[MemoryFragment.__tablename__]
TAGS: Table = _TABLES[MemoryTag.__tablename__]
LINKS: Table = _TABLES[MemoryLink.__tablename__]
OUTBOX: Table = _TABLES[VectorOutbox.__tablename__]
META: Table = _TABLES[Meta.__tablename__]
CHANGES: Table = _TABLES[MemoryChange.__tablename__]
