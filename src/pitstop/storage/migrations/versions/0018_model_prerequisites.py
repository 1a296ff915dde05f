"""model prerequisites: decisions without a candidate, re-taken drift references, asset events

Revision ID: 0018
Revises: 0008

A retraining whose prerequisites fail (too few samples, missing, flat or out-of-range inputs)
trains nothing: its decision row has no candidate. `pitstop drift rebaseline` adds a row to
`model_references` (the version's reference from then on; the earlier ones stay for audit). An
asset event (`equipment_changed`) is a row of `asset_events`.
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0008"
branch_labels = ("model_prerequisites",)
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("model_decisions", schema=None) as batch_op:
        batch_op.alter_column("candidate", existing_type=sa.Integer(), nullable=True)
    op.create_table(
        "model_references",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("profile", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_references")),
    )
    op.create_index(op.f("ix_model_references_name_version"), "model_references", ["name", "version"])
    op.create_table(
        "asset_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("asset", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_asset_events")),
    )
    op.create_index(op.f("ix_asset_events_asset_at"), "asset_events", ["asset", "at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_asset_events_asset_at"), table_name="asset_events")
    op.drop_table("asset_events")
    op.drop_index(op.f("ix_model_references_name_version"), table_name="model_references")
    op.drop_table("model_references")
    op.execute(sa.text("DELETE FROM model_decisions WHERE candidate IS NULL"))
    with op.batch_alter_table("model_decisions", schema=None) as batch_op:
        batch_op.alter_column("candidate", existing_type=sa.Integer(), nullable=False)
