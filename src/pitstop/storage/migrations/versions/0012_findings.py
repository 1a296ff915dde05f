"""findings: stream-scoring baselines per asset and the findings they raise

Revision ID: 0012
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0001"
branch_labels = ("findings",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scorer_baselines",
        sa.Column("asset", sa.String(length=200), nullable=False),
        sa.Column("sensors", sa.String(length=64), nullable=False),
        sa.Column("window_s", sa.Float(), nullable=False),
        sa.Column("fit_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fit_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("scored_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("asset", name=op.f("pk_scorer_baselines")),
    )
    op.create_table(
        "findings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("asset", sa.String(length=200), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("cutoff", sa.Float(), nullable=False),
        sa.Column("flagged_rows", sa.Integer(), nullable=False),
        sa.Column("scored_rows", sa.Integer(), nullable=False),
        sa.Column("explanation", sa.Text(), server_default="{}", nullable=False),
        sa.Column("incident_key", sa.String(length=300), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_findings")),
        sa.UniqueConstraint("asset", "start_at", "end_at", name=op.f("uq_findings_asset_start_at_end_at")),
    )
    op.create_index(op.f("ix_findings_asset_start_at"), "findings", ["asset", "start_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_findings_asset_start_at"), table_name="findings")
    op.drop_table("findings")
    op.drop_table("scorer_baselines")
