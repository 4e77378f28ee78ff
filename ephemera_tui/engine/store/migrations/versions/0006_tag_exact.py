"""Tags stored exactly, matched by their folded form on every backend.

MySQL and MariaDB compared ``memory_tags.tag`` under the table's accent- and case-insensitive
collation: a memory tagged both ``cafe`` and ``café`` could not be written (the two rows
collided on the primary key), and ``tag:café`` found memories tagged ``cafe``, where SQLite
and the vector payload tell them apart. Tags are now kept byte for byte (``utf8mb4_bin``)
beside a ``folded`` column (the tag as :func:`~ephemera_tui.engine.filters.fold_tag` folds
it, the same form the vector payload's ``tags_lc`` holds), and tag filters compare that,
by index, on SQLite and MySQL alike. The folded column is filled here from the stored tags.

Revision ID: 0006_tag_exact
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_tag_exact"
down_revision = "0005_links"
branch_labels = None
depends_on = None

BATCH = 5000
BINARY = "utf8mb4_bin"


def _fold(tag: str) -> str:
    # filters.fold_tag, repeated so this revision keeps its meaning if that function changes
    return tag.lower()


def upgrade() -> None:
    bind = op.get_bind()
    mysql = bind.dialect.name in ("mysql", "mariadb")
    if mysql:
        op.execute(
            f"ALTER TABLE memory_tags MODIFY tag VARCHAR(100) CHARACTER SET utf8mb4 "
            f"COLLATE {BINARY} NOT NULL, "
            f"ADD COLUMN folded VARCHAR(100) CHARACTER SET utf8mb4 COLLATE {BINARY} "
            "NOT NULL DEFAULT ''"
        )
    else:
        op.add_column(
            "memory_tags", sa.Column("folded", sa.String(100), nullable=False, server_default="")
        )
        op.drop_index("idx_tag_folded", table_name="memory_tags")
    # One statement folds every tag the way SQL does; the rows where that differs from
    # Python's folding (SQLite's lower() leaves non-ASCII letters alone) are then fixed one by
    # one, so a million tags cost one UPDATE and a read, not a million round trips.
    op.execute("UPDATE memory_tags SET folded = LOWER(tag)")
    tags = sa.table("memory_tags", sa.column("memory_id"), sa.column("tag"), sa.column("folded"))
    rows = bind.execute(sa.select(tags.c.memory_id, tags.c.tag, tags.c.folded)).all()
    changed = [
        {"m": int(memory_id), "t": tag, "f": _fold(tag)}
        for memory_id, tag, folded in rows
        if folded != _fold(tag)
    ]
    statement = (
        sa.update(tags)
        .where(tags.c.memory_id == sa.bindparam("m"), tags.c.tag == sa.bindparam("t"))
        .values(folded=sa.bindparam("f"))
    )
    for start in range(0, len(changed), BATCH):
        bind.execute(statement, changed[start : start + BATCH])
    op.create_index("idx_tag_folded_memory", "memory_tags", ["folded", "memory_id"])


def downgrade() -> None:
    op.drop_index("idx_tag_folded_memory", table_name="memory_tags")
    op.drop_column("memory_tags", "folded")
    if op.get_bind().dialect.name == "sqlite":
        op.create_index(
            "idx_tag_folded", "memory_tags", [sa.text("lower(tag)"), sa.text("memory_id")]
        )
