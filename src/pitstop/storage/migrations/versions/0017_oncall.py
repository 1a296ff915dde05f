"""oncall: the escalation of each incident an on-call policy covers (steps sent, the next one due)

Revision ID: 0017
Revises: 0015

The on-call subscriber of the incident feed starts after the transitions already recorded:
upgrading does not page anyone for incidents opened before it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0015"
branch_labels = ("oncall",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oncall_escalations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("incident_key", sa.String(length=500), nullable=False),
        sa.Column("policy", sa.String(length=100), nullable=False),
        sa.Column("fired", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped_by", sa.String(length=200), nullable=True),
        sa.Column("last", sa.Text(), server_default="", nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_oncall_escalations_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oncall_escalations")),
        sa.UniqueConstraint("incident_id", name=op.f("uq_oncall_escalations_incident_id")),
    )
    with op.batch_alter_table("oncall_escalations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_oncall_escalations_state_next_at"), ["state", "next_at"], unique=False)
    op.execute(
        "INSERT INTO feed_cursors (subscriber, last_event_id, updated_at) "
        "SELECT 'oncall', COALESCE(MAX(id), 0), CURRENT_TIMESTAMP FROM incident_events"
    )


def downgrade() -> None:
    op.execute("DELETE FROM feed_cursors WHERE subscriber = 'oncall'")
    with op.batch_alter_table("oncall_escalations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oncall_escalations_state_next_at"))
    op.drop_table("oncall_escalations")
