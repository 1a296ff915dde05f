"""ingest_dedup: a quarantined row is kept once per source and payload

Revision ID: 0011
Revises: 0002

Follows the ingest branch (0002 creates the quarantine), as 0009 follows 0006.

A message that is delivered again (MQTT redelivers what was not acked; gateways retry) and fails
validation again is not quarantined a second time: `quarantine.dedup_key` is a SHA-256 of the
source and the payload, unique. Rows already there get their key; of rows that share one, the
oldest keeps it and the others keep NULL (nothing is deleted).
"""

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0002"
branch_labels = ("ingest_dedup",)
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dedup_key", sa.String(length=64), nullable=True))
    conn = op.get_bind()
    table = sa.table(
        "quarantine",
        sa.column("id", sa.Integer),
        sa.column("source", sa.String),
        sa.column("payload", sa.Text),
        sa.column("dedup_key", sa.String),
    )
    seen: set[str] = set()
    updates = []
    for row_id, source, payload in conn.execute(
        sa.select(table.c.id, table.c.source, table.c.payload).order_by(table.c.id)
    ):
        key = hashlib.sha256(f"{source}\n{payload}".encode("utf-8", "backslashreplace")).hexdigest()
        if key not in seen:
            seen.add(key)
            updates.append({"row_id": row_id, "key": key})
    if updates:
        conn.execute(
            table.update().where(table.c.id == sa.bindparam("row_id")).values(dedup_key=sa.bindparam("key")), updates
        )
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_quarantine_dedup_key"), ["dedup_key"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_quarantine_dedup_key"))
        batch_op.drop_column("dedup_key")
