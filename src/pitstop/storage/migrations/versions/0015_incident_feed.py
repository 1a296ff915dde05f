"""incident feed: a cursor per subscriber of incident transitions, the transition each
notification was sent for (so that a transition delivered again is not sent twice), and an index
on the maintenance log's ref (the log's subscriber looks its entries up by transition)

Revision ID: 0015
Revises: 0003, 0006

An existing installation's subscribers start after the transitions already recorded: upgrading
does not send notifications for old incidents nor log them again.
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = ("0003", "0006")
branch_labels = ("incident_feed",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feed_cursors",
        sa.Column("subscriber", sa.String(length=100), nullable=False),
        sa.Column("last_event_id", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("subscriber", name=op.f("pk_feed_cursors")),
    )
    for subscriber in ("alerts", "maintenance-log"):
        op.execute(
            "INSERT INTO feed_cursors (subscriber, last_event_id, updated_at) "
            f"SELECT '{subscriber}', COALESCE(MAX(id), 0), CURRENT_TIMESTAMP FROM incident_events"
        )
    with op.batch_alter_table("alert_notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("transition_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_alert_notifications_transition_id"), ["transition_id"], unique=False)
    with op.batch_alter_table("maintenance_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_maintenance_log_ref"), ["ref"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("maintenance_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_maintenance_log_ref"))
    with op.batch_alter_table("alert_notifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_notifications_transition_id"))
        batch_op.drop_column("transition_id")
    op.drop_table("feed_cursors")
