"""Revisions and the change feed; room for long memories on MySQL.

``memory_fragments.revision`` counts the edits of a memory (an edit names the revision it
started from, and a stale one is refused). ``memory_changes`` records every write in the same
transaction as the write, with a sequence number that only grows, so any process can follow
what changed since a number it has seen. On MySQL, ``content`` and ``notes`` become
MEDIUMTEXT (TEXT stops at 64 KB; SQLite has no such limit, so sets moved between the two
backends must fit both).

Revision ID: 0003_changes
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003_changes"
down_revision = "0002_meili"
branch_labels = None
depends_on = None

MYSQL: dict[str, Any] = {"mysql_charset": "utf8mb4", "mysql_engine": "InnoDB"}


def upgrade() -> None:
    bind = op.get_bind()
    mysql = bind.dialect.name in ("mysql", "mariadb")
    op.add_column(
        "memory_fragments",
        sa.Column("revision", sa.BigInteger, nullable=False, server_default="1"),
    )
    op.create_table(
        "memory_changes",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("memory_id", sa.BigInteger, nullable=True),
        sa.Column("op", sa.String(16), nullable=False),
        sa.Column("revision", sa.BigInteger, nullable=True),
        sa.Column("at", sa.BigInteger, nullable=False),
        sqlite_autoincrement=True,
        **MYSQL,
    )
    if mysql:
        op.execute("ALTER TABLE memory_fragments MODIFY content MEDIUMTEXT NOT NULL")
        op.execute("ALTER TABLE memory_fragments MODIFY notes MEDIUMTEXT NULL")


def downgrade() -> None:
    op.drop_table("memory_changes")
    op.drop_column("memory_fragments", "revision")
