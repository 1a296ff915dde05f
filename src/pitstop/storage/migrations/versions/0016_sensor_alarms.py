"""sensor alarms: a sensor's alarm limits from the inventory (JSON), judged by the `limits` check

Revision ID: 0016
Revises: 0001

Existing sensors have no limits (NULL) until the inventory that gives them is loaded again.
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0001"
branch_labels = ("sensor_alarms",)
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sensors", schema=None) as batch_op:
        batch_op.add_column(sa.Column("alarm", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sensors", schema=None) as batch_op:
        batch_op.drop_column("alarm")
