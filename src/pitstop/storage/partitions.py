"""Readings partitioned by month on PostgreSQL: list the partitions, create them ahead, drop expired ones.

On PostgreSQL `readings` is declaratively partitioned by RANGE (ts) (migration 0020): one partition a
UTC calendar month, `readings_p2026_12` holding [2026-12-01, 2027-01-01), and a DEFAULT partition
(`readings_default`) that catches a reading of a month without a partition of its own (a backfill of
an old month, a device whose clock jumped). Why: retention becomes dropping a whole month's table,
instant and without the bloat of a DELETE, and a plot of one sensor's month reads one partition's
index, whatever the size of the table.

The `partitions` job (hourly, PostgreSQL only) keeps it so:

- it creates the partitions of the current month and of `ahead` months after it, and of every month
  the DEFAULT partition holds readings of; a reading that waits in the DEFAULT partition is moved into
  its month's new partition in the same transaction, writers held back meanwhile (they wait, they do
  not fail), so no reading is ever in two places or in none;
- with a retention set, it detaches and drops each month partition whose range ends at or before
  now - retention: only whole expired months, never one that still holds a reading inside the
  retention. The DEFAULT partition is never dropped. Roll-ups (`reading_rollups`) are a table of
  their own, so the 5-minute and hourly roll-ups of a dropped month stay and its plots still draw.

SQLite keeps one table: every function here does nothing there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from pitstop.storage.engine import Database

PARENT = "readings"
US = 1_000_000
JOB_EVERY = timedelta(hours=1)
_FIRST_US, _LAST_US = -62_135_596_800 * US, 253_399_622_400 * US  # 0001-01-01, 9999-12-01
# A lock waited for longer than this fails the run (the next one tries again) rather than keep the
# writers queued behind it waiting on a long transaction.
_LOCK_TIMEOUT = "SET LOCAL lock_timeout = '10s'"
_BOUNDS = re.compile(r"FROM \('?(-?\d+)'?\) TO \('?(-?\d+)'?\)")

_IS_PARTITIONED = "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(%s))"
_PARTITIONS = """
SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), c.reltuples::float8, pg_total_relation_size(c.oid)
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = to_regclass(%s)
"""


def month_start(t: datetime) -> datetime:
    """The first instant of t's UTC calendar month."""
    t = t.astimezone(UTC)
    return datetime(t.year, t.month, 1, tzinfo=UTC)


def add_months(month: datetime, n: int) -> datetime:
    """The first instant of the month `n` months after `month` (itself a month's first instant)."""
    index = month.year * 12 + month.month - 1 + n
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def partition_name(month: datetime) -> str:
    return f"{PARENT}_p{month.year:04d}_{month.month:02d}"


def to_us(t: datetime) -> int:
    # integer arithmetic: a float of the seconds loses microseconds in a few years' range
    return (t - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def _covered(partitions: list[Partition], lo: int, hi: int) -> bool:
    """Whether a partition's range overlaps [lo, hi)."""
    return any(
        p.start_us is not None and p.end_us is not None and p.start_us < hi and lo < p.end_us for p in partitions
    )


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True, slots=True)
class Partition:
    """One partition of `readings`: its range [start_us, end_us) (None for the DEFAULT partition, or a
    bound that is not a plain number), the planner's row estimate and its size with its index."""

    name: str
    start_us: int | None
    end_us: int | None
    default: bool
    rows_estimate: int | None  # pg_class.reltuples: as of the last VACUUM or ANALYZE; None before any
    bytes: int

    @property
    def start(self) -> datetime | None:
        return None if self.start_us is None else datetime.fromtimestamp(self.start_us / US, tz=UTC)

    @property
    def end(self) -> datetime | None:
        return None if self.end_us is None else datetime.fromtimestamp(self.end_us / US, tz=UTC)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "from": self.start,
            "to": self.end,
            "default": self.default,
            "rows_estimate": self.rows_estimate,
            "bytes": self.bytes,
        }


@dataclass(slots=True)
class MaintenanceRun:
    """What one run of the job did: partitions created (and readings moved into them out of the
    DEFAULT partition), partitions dropped by retention."""

    created: list[str] = field(default_factory=list)
    moved: int = 0
    dropped: list[str] = field(default_factory=list)


def is_partitioned(conn: Connection) -> bool:
    """Whether `readings` is a partitioned table here (PostgreSQL at schema 0020 or later)."""
    if conn.dialect.name != "postgresql":
        return False
    return bool(conn.exec_driver_sql(_IS_PARTITIONED, (PARENT,)).scalar())


def list_partitions(conn: Connection) -> list[Partition]:
    """The partitions of `readings`, oldest first, the DEFAULT partition last; [] where it is not partitioned."""
    if not is_partitioned(conn):
        return []
    found = []
    for name, bound, reltuples, size in conn.exec_driver_sql(_PARTITIONS, (PARENT,)):
        match = _BOUNDS.search(bound or "")
        start, end = (int(match[1]), int(match[2])) if match else (None, None)
        rows = None if reltuples is None or reltuples < 0 else int(reltuples)
        found.append(Partition(name, start, end, (bound or "").strip() == "DEFAULT", rows, int(size)))
    return sorted(found, key=lambda p: (p.default, p.start_us is None, p.start_us or 0, p.name))


class ReadingPartitions:
    """The monthly partitions of `readings` on PostgreSQL and the job that keeps them."""

    def __init__(self, db: Database, *, ahead_months: int = 2, retention: timedelta | None = None) -> None:
        if ahead_months < 0:
            raise ValueError("ahead_months must be 0 or more")
        if retention is not None and retention <= timedelta(0):
            raise ValueError("retention must be positive (None keeps readings forever)")
        self.db = db
        self.ahead_months = ahead_months
        self.retention = retention

    def partitioned(self) -> bool:
        if self.db.dialect != "postgresql":
            return False
        with self.db.connect() as conn:
            return is_partitioned(conn)

    def list_all(self) -> list[Partition]:
        if self.db.dialect != "postgresql":
            return []
        with self.db.connect() as conn:
            return list_partitions(conn)

    # -- the job ----------------------------------------------------------------------------------

    def scheduled(self, now: datetime) -> None:
        """The scheduler job."""
        self.maintain(now)

    def maintain(self, now: datetime) -> MaintenanceRun:
        """Create ahead, then apply the retention; nothing where `readings` is not partitioned (SQLite)."""
        run = MaintenanceRun()
        if not self.partitioned():
            return run
        self.create_ahead(now, run)
        if self.retention is not None:
            run.dropped = self.drop_expired(now)
        return run

    def months_wanted(self, now: datetime) -> list[datetime]:
        """The current month, the `ahead_months` after it, and every month the DEFAULT partition holds
        readings of (each month's first instant, in order)."""
        first = month_start(now)
        wanted = {add_months(first, n) for n in range(self.ahead_months + 1)}
        default = next((p for p in self.list_all() if p.default), None)
        if default is not None:
            # the months of what waits in the DEFAULT partition (a scan of it: it is small, or empty)
            # (years 1 to 9999 only: what a datetime holds; a reading outside stays where it is)
            months = (
                f"SELECT DISTINCT date_trunc('month', to_timestamp(ts / 1000000.0) AT TIME ZONE 'UTC') "
                f"FROM {_ident(default.name)} WHERE ts >= %s AND ts < %s"
            )
            with self.db.connect() as conn:
                rows = conn.exec_driver_sql(months, (_FIRST_US, _LAST_US))
                wanted |= {m.replace(tzinfo=UTC) for (m,) in rows}
        return sorted(wanted)

    def create_ahead(self, now: datetime, run: MaintenanceRun | None = None) -> MaintenanceRun:
        """Create each wanted month's partition that is missing (see `months_wanted`)."""
        run = run if run is not None else MaintenanceRun()
        existing = self.list_all()
        for month in self.months_wanted(now):
            if _covered(existing, to_us(month), to_us(add_months(month, 1))):
                continue  # checked without the lock first: most runs create nothing and lock nothing
            created = self.create_month(month)
            if created is not None:
                run.created.append(created[0])
                run.moved += created[1]
        return run

    def create_month(self, month: datetime) -> tuple[str, int] | None:
        """Create the partition of `month` (its first instant, UTC), moving the readings of that month
        out of the DEFAULT partition into it: (name, readings moved), or None when a partition already
        covers any of the month.

        One transaction. The partition is made as a table of its own, filled from the DEFAULT partition,
        then attached: PostgreSQL refuses to attach (or create) a range the DEFAULT partition holds a
        row of, so the rows go first. Writes into `readings` wait on the lock meanwhile, so none can
        land in the DEFAULT partition between the move and the attach."""
        lo, hi = to_us(month), to_us(add_months(month, 1))
        name = partition_name(month)
        with self.db.begin() as conn:
            conn.exec_driver_sql(_LOCK_TIMEOUT)
            conn.exec_driver_sql(f"LOCK TABLE {_ident(PARENT)} IN SHARE ROW EXCLUSIVE MODE")
            existing = list_partitions(conn)
            if _covered(existing, lo, hi) or any(p.name == name for p in existing):
                return None  # (a partition of that name but another range: left alone)
            conn.exec_driver_sql(
                f"CREATE TABLE {_ident(name)} (sensor_id integer NOT NULL, ts bigint NOT NULL, "
                f"value double precision NOT NULL, CONSTRAINT {_ident(name + '_pkey')} PRIMARY KEY (sensor_id, ts))"
            )
            moved = 0
            default = next((p for p in existing if p.default), None)
            if default is not None:
                moved = conn.exec_driver_sql(
                    f"WITH moved AS (DELETE FROM {_ident(default.name)} WHERE ts >= %s AND ts < %s "
                    "RETURNING sensor_id, ts, value) "
                    f"INSERT INTO {_ident(name)} (sensor_id, ts, value) "
                    "SELECT sensor_id, ts, value FROM moved ORDER BY sensor_id, ts",
                    (lo, hi),
                ).rowcount
            conn.exec_driver_sql(
                f"ALTER TABLE {_ident(PARENT)} ATTACH PARTITION {_ident(name)} FOR VALUES FROM ({lo}) TO ({hi})"
            )
            if moved:
                conn.exec_driver_sql(f"ANALYZE {_ident(name)}")
        return name, max(moved, 0)

    def expired(self, now: datetime) -> list[Partition]:
        """The month partitions wholly older than the retention: their range ends at or before now - retention."""
        if self.retention is None:
            return []
        cutoff = to_us(now) - self.retention // timedelta(microseconds=1)
        return [p for p in self.list_all() if not p.default and p.end_us is not None and p.end_us <= cutoff]

    def drop_expired(self, now: datetime) -> list[str]:
        """Detach and drop each expired month partition, one transaction each; the names dropped."""
        dropped = []
        for partition in self.expired(now):
            with self.db.begin() as conn:
                conn.exec_driver_sql(_LOCK_TIMEOUT)
                conn.exec_driver_sql(f"ALTER TABLE {_ident(PARENT)} DETACH PARTITION {_ident(partition.name)}")
                conn.exec_driver_sql(f"DROP TABLE {_ident(partition.name)}")
            dropped.append(partition.name)
        return dropped
