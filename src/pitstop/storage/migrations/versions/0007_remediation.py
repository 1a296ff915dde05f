"""remediation: remediations, their steps, circuit breakers

Revision ID: 0007
Revises: 0001

Incidents are referenced by id and key as values, without a foreign key, so this branch needs
nothing of 0003 (and no `depends_on`, which would make a fresh upgrade look behind).
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0001"
branch_labels = ("remediation",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "remediations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("incident_key", sa.String(length=500), nullable=False),
        sa.Column("incident_opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("target", sa.String(length=500), nullable=False),
        sa.Column("rule", sa.String(length=500), nullable=False),
        sa.Column("state", sa.String(length=30), nullable=False),
        sa.Column("destructive", sa.Integer(), server_default="0", nullable=False),
        sa.Column("plan", sa.Text(), server_default="{}", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("result", sa.Text(), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_remediations")),
    )
    op.create_index("ix_remediations_action_target_created_at", "remediations", ["action", "target", "created_at"])
    op.create_index("ix_remediations_incident_id", "remediations", ["incident_id"])
    op.create_table(
        "remediation_steps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("remediation_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(length=30), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ok", sa.Integer(), nullable=False),
        sa.Column("detail", sa.Text(), server_default="", nullable=False),
        sa.Column("output", sa.Text(), server_default="", nullable=False),
        sa.Column("data", sa.Text(), server_default="{}", nullable=False),
        sa.Column("duration_s", sa.Float(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["remediation_id"],
            ["remediations.id"],
            name=op.f("fk_remediation_steps_remediation_id_remediations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_remediation_steps")),
    )
    op.create_index("ix_remediation_steps_remediation_id", "remediation_steps", ["remediation_id"])
    op.create_table(
        "remediation_breakers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("target", sa.String(length=500), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("escalated_to", sa.String(length=200), server_default="", nullable=False),
        sa.Column("reset_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reset_by", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_remediation_breakers")),
    )
    op.create_index("ix_remediation_breakers_action_target", "remediation_breakers", ["action", "target"])


def downgrade() -> None:
    op.drop_index("ix_remediation_breakers_action_target", table_name="remediation_breakers")
    op.drop_table("remediation_breakers")
    op.drop_index("ix_remediation_steps_remediation_id", table_name="remediation_steps")
    op.drop_table("remediation_steps")
    op.drop_index("ix_remediations_incident_id", table_name="remediations")
    op.drop_index("ix_remediations_action_target_created_at", table_name="remediations")
    op.drop_table("remediations")
