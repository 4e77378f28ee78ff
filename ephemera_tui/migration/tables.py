"""The migration's two tables (created by Alembic revision ``0002_meili``), as SQLAlchemy Core."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Integer, MetaData, String, Table, Text

metadata = MetaData()

MEILI_DOCUMENTS = Table(
    "meili_documents",
    metadata,
    Column("index_uid", String(190), primary_key=True),
    Column("primary_key", String(511), primary_key=True),
    Column("memory_id", BigInteger, nullable=False),
    Column("extra", JSON, nullable=True),
    Column("doc_hash", String(64), nullable=False),
    Column("imported_at", BigInteger, nullable=False),
)

MEILI_OUTBOX = Table(
    "meili_outbox",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("memory_id", BigInteger, nullable=False),
    Column("op", String(10), nullable=False),
    Column("index_uid", String(190), nullable=False),
    Column("primary_key", String(511), nullable=False),
    Column("document", JSON, nullable=True),
    Column("enqueued_at", BigInteger, nullable=False),
    Column("not_before", BigInteger, nullable=False, default=0),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=True),
)
