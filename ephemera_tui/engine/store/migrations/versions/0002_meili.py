"""MeiliSearch migration: original primary keys + kept fields, and the dual-write queue.

``meili_documents`` maps (index uid, original primary key) to a memory id and keeps the
document's fields that did not map to a memory column (``extra``, JSON) so nothing is dropped.
``meili_outbox`` holds writes still to be sent to MeiliSearch while dual writing.

Revision ID: 0002_meili
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002_meili"
down_revision = "0001"
branch_labels = None
depends_on = None

MYSQL: dict[str, Any] = {"mysql_charset": "utf8mb4", "mysql_engine": "InnoDB"}


def upgrade() -> None:
    op.create_table(
        "meili_documents",
        sa.Column("index_uid", sa.String(190), primary_key=True),
        sa.Column("primary_key", sa.String(511), primary_key=True),
        sa.Column("memory_id", sa.BigInteger, nullable=False),
        sa.Column("extra", sa.JSON, nullable=True),
        sa.Column("doc_hash", sa.String(64), nullable=False),
        sa.Column("imported_at", sa.BigInteger, nullable=False),
        **MYSQL,
    )
    op.create_index("idx_meili_documents_memory", "meili_documents", ["memory_id"])
    op.create_table(
        "meili_outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("memory_id", sa.BigInteger, nullable=False),
        sa.Column("op", sa.String(10), nullable=False),
        sa.Column("index_uid", sa.String(190), nullable=False),
        sa.Column("primary_key", sa.String(511), nullable=False),
        sa.Column("document", sa.JSON, nullable=True),
        sa.Column("enqueued_at", sa.BigInteger, nullable=False),
        sa.Column("not_before", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text, nullable=True),
        **MYSQL,
    )


def downgrade() -> None:
    op.drop_table("meili_outbox")
    op.drop_index("idx_meili_documents_memory", table_name="meili_documents")
    op.drop_table("meili_documents")
