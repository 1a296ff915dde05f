"""rollups: per-sensor 5-minute and hourly roll-ups of readings, and the latest drift per model version

Revision ID: 0013
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0001"
branch_labels = ("rollups",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reading_rollups",
        sa.Column("sensor_id", sa.Integer(), nullable=False),
        sa.Column("span_s", sa.Integer(), nullable=False),
        sa.Column("start_us", sa.BigInteger(), nullable=False),
        sa.Column("low", sa.Float(), nullable=False),
        sa.Column("high", sa.Float(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("total", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("sensor_id", "span_s", "start_us", name=op.f("pk_reading_rollups")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "model_drift",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_days", sa.Float(), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", "version", name=op.f("pk_model_drift")),
    )


def downgrade() -> None:
    op.drop_table("model_drift")
    op.drop_table("reading_rollups")
