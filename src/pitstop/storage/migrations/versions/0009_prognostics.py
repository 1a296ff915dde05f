"""prognostics: RUL estimates, ends of life, prediction outcomes; work orders carry a failure code

Revision ID: 0009
Revises: 0006

Follows the maintenance branch: it adds a column to `work_orders`.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0006"
branch_labels = ("prognostics",)
depends_on = None


def upgrade() -> None:
    op.add_column("work_orders", sa.Column("failure_code", sa.String(length=100), nullable=True))
    op.create_table(
        "rul_estimates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("asset", sa.String(length=200), nullable=False),
        sa.Column("model", sa.String(length=50), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("median_h", sa.Float(), nullable=False),
        sa.Column("lower_h", sa.Float(), nullable=False),
        sa.Column("upper_h", sa.Float(), nullable=False),
        sa.Column("coverage", sa.Float(), nullable=False),
        sa.Column("health", sa.Float(), nullable=False),
        sa.Column("degrading", sa.Integer(), server_default="1", nullable=False),
        sa.Column("evidence", sa.Text(), server_default="{}", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rul_estimates")),
    )
    op.create_index(op.f("ix_rul_estimates_asset_at"), "rul_estimates", ["asset", "at"])
    op.create_table(
        "rul_life_ends",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("asset", sa.String(length=200), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("source", sa.String(length=50), nullable=False),
        sa.Column("ref", sa.String(length=200), server_default="", nullable=False),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rul_life_ends")),
        sa.UniqueConstraint("asset", "ended_at", name=op.f("uq_rul_life_ends_asset_ended_at")),
    )
    op.create_table(
        "rul_outcomes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("asset", sa.String(length=200), nullable=False),
        sa.Column("work_order_id", sa.Integer(), nullable=False),
        sa.Column("estimate_id", sa.Integer(), nullable=True),
        sa.Column("estimated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("median_h", sa.Float(), nullable=False),
        sa.Column("lower_h", sa.Float(), nullable=False),
        sa.Column("upper_h", sa.Float(), nullable=False),
        sa.Column("coverage", sa.Float(), nullable=False),
        sa.Column("finding", sa.String(length=20), nullable=False),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("observed_h", sa.Float(), nullable=True),
        sa.Column("error_h", sa.Float(), nullable=True),
        sa.Column("covered", sa.Integer(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rul_outcomes")),
        sa.UniqueConstraint("work_order_id", name=op.f("uq_rul_outcomes_work_order_id")),
    )


def downgrade() -> None:
    op.drop_table("rul_outcomes")
    op.drop_table("rul_life_ends")
    op.drop_index(op.f("ix_rul_estimates_asset_at"), table_name="rul_estimates")
    op.drop_table("rul_estimates")
    with op.batch_alter_table("work_orders") as batch:
        batch.drop_column("failure_code")
