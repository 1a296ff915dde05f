"""fleet_job_runs: per-asset jobs finished by fleet workers, once per job id

Revision ID: 0021
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0001"
branch_labels = ("fleet",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fleet_job_runs",
        sa.Column("id", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.Column("asset", sa.String(length=200), nullable=False),
        sa.Column("until_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("worker", sa.String(length=200), nullable=False),
        sa.Column("deliveries", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fleet_job_runs")),
    )
    with op.batch_alter_table("fleet_job_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fleet_job_runs_finished_at"), ["finished_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("fleet_job_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fleet_job_runs_finished_at"))
    op.drop_table("fleet_job_runs")
