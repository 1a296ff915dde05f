"""scorer state: each asset's scoring baseline in its `scorer_baselines` row, with a version

Revision ID: 0019
Revises: 0018, 0012 (which made the table; a merge, so neither stays a head of its own)

Worker processes on different machines share the database, not a data directory: the fitted
baseline (detector, threshold, loop twins) moves from a JSON file under ``<data_dir>/scoring/``
(the dropped ``path``) into ``state`` (zlib-compressed JSON), and ``version`` counts the refits,
so a worker sees that its model in memory is not the stored one. Rows of before have no state:
the scorer refits them, as a baseline stored by an older version, and keeps how far the
stream was scored.
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = ("0018", "0012")
branch_labels = ("scorer_state",)
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("scorer_baselines", schema=None) as batch_op:
        batch_op.add_column(sa.Column("state", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("version", sa.Integer(), server_default="0", nullable=False))
        batch_op.drop_column("path")


def downgrade() -> None:
    # an older pitstop finds no file at an empty path and refits, keeping `scored_until`
    with op.batch_alter_table("scorer_baselines", schema=None) as batch_op:
        batch_op.add_column(sa.Column("path", sa.Text(), server_default="", nullable=False))
        batch_op.drop_column("version")
        batch_op.drop_column("state")
