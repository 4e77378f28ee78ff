"""Initial schema: memory_fragments (the seed's), memory_tags, vector_outbox, ephemera_meta,
and the keyword index.

Revision ID: 0001
"""

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.mysql import TINYINT

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Byte = sa.SmallInteger().with_variant(TINYINT(unsigned=True), "mysql", "mariadb")
MYSQL: dict[str, Any] = {"mysql_charset": "utf8mb4", "mysql_engine": "InnoDB"}


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_table(
        "memory_fragments",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("source", sa.String(50), nullable=False),
        sa.Column("importance", Byte, nullable=True),
        sa.Column("confidence", Byte, nullable=True),
        sa.Column("tags", sa.JSON, nullable=True),
        sa.Column("notes", sa.Text, nullable=True),
        sa.Column("associations", sa.JSON, nullable=True),
        **MYSQL,
    )
    op.create_index("idx_created_at", "memory_fragments", ["created_at"])
    op.create_index("idx_source", "memory_fragments", ["source"])
    op.create_index("idx_importance", "memory_fragments", ["importance"])
    op.create_index(
        "idx_created_source_importance", "memory_fragments", ["created_at", "source", "importance"]
    )
    op.create_table(
        "memory_tags",
        sa.Column("memory_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("tag", sa.String(100), primary_key=True),
        **MYSQL,
    )
    op.create_index("idx_tag_memory", "memory_tags", ["tag", "memory_id"])
    op.create_table(
        "vector_outbox",
        sa.Column("memory_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("op", sa.String(10), nullable=False),
        sa.Column("content_hash", sa.String(16), nullable=True),
        sa.Column("token", sa.BigInteger, nullable=False),
        sa.Column("enqueued_at", sa.BigInteger, nullable=False),
        sa.Column("not_before", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text, nullable=True),
        **MYSQL,
    )
    op.create_index("idx_outbox_due", "vector_outbox", ["not_before"])
    op.create_table(
        "ephemera_meta",
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        **MYSQL,
    )
    if dialect in ("mysql", "mariadb"):
        # The seed's FULLTEXT idx_content. (Its functional idx_tags cannot exist on MariaDB:
        # memory_tags serves tag filters on every backend instead.)
        op.execute("CREATE FULLTEXT INDEX idx_content ON memory_fragments (content)")
    elif dialect == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE memory_fts USING fts5(content, content='memory_fragments', "
            "content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')"
        )
        op.execute(
            "CREATE TRIGGER memory_fts_ai AFTER INSERT ON memory_fragments BEGIN "
            "INSERT INTO memory_fts(rowid, content) VALUES (new.id, new.content); END"
        )
        op.execute(
            "CREATE TRIGGER memory_fts_ad AFTER DELETE ON memory_fragments BEGIN "
            "INSERT INTO memory_fts(memory_fts, rowid, content) "
            "VALUES ('delete', old.id, old.content); END"
        )
        op.execute(
            "CREATE TRIGGER memory_fts_au AFTER UPDATE OF content ON memory_fragments BEGIN "
            "INSERT INTO memory_fts(memory_fts, rowid, content) "
            "VALUES ('delete', old.id, old.content); "
            "INSERT INTO memory_fts(rowid, content) VALUES (new.id, new.content); END"
        )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for trigger in ("memory_fts_ai", "memory_fts_ad", "memory_fts_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS memory_fts")
    for table in ("ephemera_meta", "vector_outbox", "memory_tags", "memory_fragments"):
        op.drop_table(table)
