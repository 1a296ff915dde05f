"""readings partitions: on PostgreSQL, `readings` partitioned by RANGE (ts), one partition a UTC month

Revision ID: 0020
Revises: 0019

PostgreSQL only (SQLite keeps one table: a no-op there). A new table partitioned by RANGE (ts) takes
the readings: a partition for each month that holds readings, for the current month and the next
(`readings_p2026_12` holds [2026-12-01, 2027-01-01) in epoch microseconds), and a DEFAULT partition
for anything outside them. The rows are copied with INSERT .. SELECT, the old table dropped, the new
one renamed `readings`; the primary key (sensor_id, ts) (it holds the partition key, as PostgreSQL
requires) is built after the copy, which is faster than keeping the indexes up to date row by row.
All in the migration's transaction: the readings are never half moved. Afterwards the `partitions`
job (pitstop/storage/partitions.py) creates the months ahead and applies the retention.

This migration keeps its own copy of the month arithmetic: a migration must do tomorrow what it does
today, whatever later becomes of the application's modules.

Downgrade: the readings back into one plain table with the same primary key.
"""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = ("readings_partitions",)
depends_on = None

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_COLUMNS = "sensor_id integer NOT NULL, ts bigint NOT NULL, value double precision NOT NULL"
# years 1 to 9999 (what a datetime holds); a reading outside goes to the DEFAULT partition
_FIRST_US, _LAST_US = -62_135_596_800_000_000, 253_399_622_400_000_000


def _us(t: datetime) -> int:
    return (t - _EPOCH) // timedelta(microseconds=1)


def _next_month(month: datetime) -> datetime:
    return datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=UTC)


def _partitioned(bind: sa.Connection) -> bool:
    query = "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass('readings'))"
    return bool(bind.exec_driver_sql(query).scalar())


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql" or _partitioned(bind):
        return
    bind.exec_driver_sql("LOCK TABLE readings IN ACCESS EXCLUSIVE MODE")  # no write between the copy and the drop
    held = bind.exec_driver_sql(
        "SELECT DISTINCT date_trunc('month', to_timestamp(ts / 1000000.0) AT TIME ZONE 'UTC') FROM readings "
        "WHERE ts >= %s AND ts < %s",
        (_FIRST_US, _LAST_US),
    )
    months = {m.replace(tzinfo=UTC) for (m,) in held}
    # the database's clock: a migration runs before any of pitstop's (and the test's frozen one)
    (now,) = bind.exec_driver_sql("SELECT now()").one()
    current = datetime(now.year, now.month, 1, tzinfo=UTC)
    months |= {current, _next_month(current)}
    bind.exec_driver_sql(f"CREATE TABLE readings_partitioned ({_COLUMNS}) PARTITION BY RANGE (ts)")
    for month in sorted(months):
        name = f"readings_p{month.year:04d}_{month.month:02d}"
        bind.exec_driver_sql(
            f"CREATE TABLE {name} PARTITION OF readings_partitioned "
            f"FOR VALUES FROM ({_us(month)}) TO ({_us(_next_month(month))})"
        )
    bind.exec_driver_sql("CREATE TABLE readings_default PARTITION OF readings_partitioned DEFAULT")
    bind.exec_driver_sql(
        "INSERT INTO readings_partitioned (sensor_id, ts, value) SELECT sensor_id, ts, value FROM readings"
    )
    bind.exec_driver_sql("DROP TABLE readings")
    bind.exec_driver_sql("ALTER TABLE readings_partitioned RENAME TO readings")
    bind.exec_driver_sql("ALTER TABLE readings ADD CONSTRAINT pk_readings PRIMARY KEY (sensor_id, ts)")
    bind.exec_driver_sql("ANALYZE readings")  # the partitions' statistics: autovacuum would take a while


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql" or not _partitioned(bind):
        return
    bind.exec_driver_sql("LOCK TABLE readings IN ACCESS EXCLUSIVE MODE")
    bind.exec_driver_sql(f"CREATE TABLE readings_plain ({_COLUMNS})")
    bind.exec_driver_sql("INSERT INTO readings_plain (sensor_id, ts, value) SELECT sensor_id, ts, value FROM readings")
    bind.exec_driver_sql("DROP TABLE readings")  # and its partitions
    bind.exec_driver_sql("ALTER TABLE readings_plain RENAME TO readings")
    bind.exec_driver_sql("ALTER TABLE readings ADD CONSTRAINT pk_readings PRIMARY KEY (sensor_id, ts)")
    bind.exec_driver_sql("ANALYZE readings")
