"""Readings partitioned by month on PostgreSQL (migration 0020, pitstop/storage/partitions.py).

Each test has a PostgreSQL database of its own: they create, move and drop partitions. The upgrade
keeps every reading, each in its month's partition; ingest writes, duplicates and conflicts behave
as on a plain table; the job creates months ahead, moves what waits in the DEFAULT partition, and
drops only whole expired months, whose roll-ups stay; the downgrade gives the plain table back.
SQLite keeps one table and the job is not there.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import select

from pitstop import inventory
from pitstop.app import Pitstop, build
from pitstop.config import Settings
from pitstop.core.types import from_epoch_us, to_epoch_us
from pitstop.storage import Database
from pitstop.storage.engine import MIGRATIONS
from pitstop.storage.partitions import MaintenanceRun, ReadingPartitions, add_months, month_start, partition_name
from pitstop.storage.repos.readings import ReadingBatch, ReadingRepo
from pitstop.storage.repos.rollups import RollupRepo
from pitstop.storage.schema import reading_rollups
from pitstop.testing.clock import FrozenClock
from pitstop.testing.services import scratch_postgres_database
from tests.conftest import DEMO_INVENTORY

HOUR_US = 3_600_000_000
MONTH = datetime(2025, 3, 1, tzinfo=UTC)


def _alembic(conn: object) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


def before_partitions() -> str:
    """The revision 0020 follows."""
    down = ScriptDirectory.from_config(_alembic(None)).get_revision("0020").down_revision
    assert isinstance(down, str)
    return down


def downgrade_partitions(db: Database) -> None:
    with db.connect() as conn:
        command.downgrade(_alembic(conn), "readings_partitions@-1")
        conn.commit()


@pytest.fixture
def fresh_pg() -> Iterator[str]:
    """A new, empty PostgreSQL database, not yet upgraded."""
    with scratch_postgres_database() as url:
        yield url


@pytest.fixture
def pg(fresh_pg: str) -> Iterator[Database]:
    """A new PostgreSQL database at the latest schema."""
    db = Database(fresh_pg)
    db.upgrade()
    yield db
    db.dispose()


def all_rows(db: Database) -> list[tuple[int, int, float]]:
    with db.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql("SELECT sensor_id, ts, value FROM readings ORDER BY 1, 2")]


def where_stored(db: Database) -> dict[str, list[int]]:
    """partition name -> the ts of the readings it holds."""
    found: dict[str, list[int]] = {}
    with db.connect() as conn:
        for name, ts in conn.exec_driver_sql("SELECT tableoid::regclass::text, ts FROM readings ORDER BY ts"):
            found.setdefault(name, []).append(int(ts))
    return found


def in_their_months(db: Database) -> bool:
    """Every reading is in its month's partition (none left in the DEFAULT partition)."""
    return all(
        name == partition_name(month_start(from_epoch_us(t))) for name, ts in where_stored(db).items() for t in ts
    )


def relkind(db: Database) -> str:
    with db.connect() as conn:
        return str(conn.exec_driver_sql("SELECT relkind FROM pg_class WHERE oid = 'readings'::regclass").scalar())


def three_months(rng: np.random.Generator) -> ReadingBatch:
    """Readings of 5 sensors in March, April and May 2025, at random hours."""
    start, end = to_epoch_us(MONTH), to_epoch_us(add_months(MONTH, 3))
    ts = np.unique(rng.integers(start, end, 3000))
    return ReadingBatch.of(rng.integers(1, 6, len(ts)), ts, rng.normal(20, 5, len(ts))).sorted_unique()


# -- the migration -----------------------------------------------------------------------------


@pytest.mark.postgres
def test_the_upgrade_moves_the_readings_of_three_months_into_their_partitions(fresh_pg: str) -> None:
    db = Database(fresh_pg)
    db.upgrade(before_partitions())
    assert relkind(db) == "r"
    batch = three_months(np.random.default_rng(3))
    ReadingRepo(db).write(batch)
    before = all_rows(db)
    assert len(before) == len(batch) > 2500

    db.upgrade()

    assert relkind(db) == "p"
    assert all_rows(db) == before  # every reading, its value to the bit
    names = [p.name for p in ReadingPartitions(db).list_all()]
    now = month_start(datetime.now(UTC))
    months = ["readings_p2025_03", "readings_p2025_04", "readings_p2025_05"]
    assert names == [*months, partition_name(now), partition_name(add_months(now, 1)), "readings_default"]
    assert set(where_stored(db)) == set(months) and in_their_months(db)
    with db.connect() as conn:  # the primary key is the table's again, under its old name
        pk = conn.exec_driver_sql(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'readings'::regclass AND contype = 'p'"
        ).one()
    assert tuple(pk) == ("pk_readings", "PRIMARY KEY (sensor_id, ts)")
    with pytest.raises(psycopg.errors.UniqueViolation), psycopg.connect(fresh_pg) as raw:
        sensor, ts, value = before[0]
        raw.execute("INSERT INTO readings VALUES (%s, %s, %s)", (sensor, ts, value + 1))
    db.dispose()


@pytest.mark.postgres
def test_the_downgrade_gives_back_one_plain_table_with_every_reading(pg: Database) -> None:
    ReadingPartitions(pg).create_month(MONTH)
    batch = three_months(np.random.default_rng(4))
    ReadingRepo(pg).write(batch)
    before = all_rows(pg)

    downgrade_partitions(pg)

    assert relkind(pg) == "r" and all_rows(pg) == before
    assert not ReadingPartitions(pg).partitioned() and ReadingPartitions(pg).list_all() == []
    with pg.connect() as conn:
        assert conn.exec_driver_sql("SELECT to_regclass('readings_p2025_03')").scalar() is None
    assert ReadingRepo(pg).write(batch).duplicates == len(batch)  # the key is there
    pg.upgrade()  # and up again
    assert relkind(pg) == "p" and all_rows(pg) == before and in_their_months(pg)


# -- writes into the partitioned table ----------------------------------------------------------


@pytest.fixture
def plant(pg: Database, tmp_path: Path) -> Iterator[Pitstop]:
    """The demo inventory on a partitioned database, at 2026-01-05 08:00 UTC, December and January partitioned."""
    clock = FrozenClock(datetime(2026, 1, 5, 8, 0, tzinfo=UTC))
    pitstop = build(Settings(data_dir=tmp_path), clock=clock, db=pg)
    inventory.apply(pg, inventory.read_file(DEMO_INVENTORY), actor="test", now=clock.now())
    partitions = ReadingPartitions(pg)
    for month in (datetime(2025, 12, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)):
        partitions.create_month(month)
    yield pitstop
    pitstop.close()


def frame(rows: list[tuple[str, str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["ts", "asset", "sensor", "value"], dtype=object)


@pytest.mark.postgres
def test_ingest_lands_in_the_months_partition_ignores_duplicates_and_finds_conflicts(plant: Pitstop) -> None:
    rows = [
        ("2026-01-05T07:00:00Z", "ahu-1", "UCAOT", 21.5),
        ("2025-12-31T23:59:59.999999Z", "ahu-1", "UCAOT", 21.0),  # the last microsecond of December
        ("2026-01-01T00:00:00Z", "ahu-1", "UCAOT", 21.25),  # the first of January
        ("2025-11-20T12:00:00Z", "pump-1", "vib_rms", 1.5),  # no partition of its own: DEFAULT
    ]
    first = plant.ingest.ingest(frame(rows), "test")
    assert (first.stored, first.duplicates, first.quarantined) == (4, 0, 0)
    stored = {name: len(ts) for name, ts in where_stored(plant.db).items()}
    assert stored == {"readings_p2026_01": 2, "readings_p2025_12": 1, "readings_default": 1}

    # the same again with one new reading and one other value: the staging path's ON CONFLICT DO NOTHING
    again = plant.ingest.ingest(
        frame(
            [*rows, ("2026-01-05T07:01:00Z", "ahu-1", "UCAOT", 21.6), ("2026-01-01T00:00:00Z", "ahu-1", "UCAOT", 9.0)]
        ),
        "test",
    )
    assert (again.stored, again.duplicates, again.quarantined) == (1, 4, 1)
    assert again.reasons == {"conflict": 1}
    assert plant.readings.count() == 5
    sensor = plant.assets.sensor_index()[("ahu-1", "UCAOT")].id
    assert plant.readings.window(sensor)["value"].tolist() == [21.0, 21.25, 21.5, 21.6]


@pytest.mark.postgres
def test_the_repository_write_and_conflicts_across_partitions(plant: Pitstop) -> None:
    repo = plant.readings
    start = to_epoch_us(datetime(2025, 11, 25, tzinfo=UTC))
    ts = start + np.arange(24 * 40, dtype=np.int64) * HOUR_US  # 40 days: November (DEFAULT), December, January
    batch = ReadingBatch.of(np.full(len(ts), 7), ts, np.arange(len(ts), dtype=float))
    assert repo.write(batch).stored == len(ts)  # all new: one COPY into the parent
    half = ReadingBatch.of(batch.sensor_id, batch.ts_us + HOUR_US // 2, batch.value)
    mixed = ReadingBatch.of(
        np.r_[batch.sensor_id, half.sensor_id], np.r_[batch.ts_us, half.ts_us], np.r_[batch.value, half.value]
    )
    assert (repo.write(mixed).stored, repo.write(mixed).stored) == (len(ts), 0)
    changed = ReadingBatch.of(batch.sensor_id[::50], batch.ts_us[::50], batch.value[::50] + 0.5)
    with plant.db.connect() as conn:
        found = repo.conflicts_in(conn, changed)
    assert sorted(c.ts_us for c in found) == batch.ts_us[::50].tolist()
    assert {p for p in where_stored(plant.db)} == {"readings_default", "readings_p2025_12", "readings_p2026_01"}


# -- the job: ahead, the DEFAULT partition, retention ---------------------------------------------


@pytest.mark.postgres
def test_the_job_creates_months_ahead_and_moves_readings_out_of_the_default_partition(pg: Database) -> None:
    now = datetime(2031, 6, 15, 12, tzinfo=UTC)  # months the migration made no partition of
    partitions = ReadingPartitions(pg, ahead_months=2)
    waiting = [
        datetime(2031, 4, 30, 23, tzinfo=UTC),
        datetime(2031, 6, 1, tzinfo=UTC),
        datetime(2031, 6, 15, tzinfo=UTC),
    ]
    ts = np.array([to_epoch_us(t) for t in waiting], dtype=np.int64)
    ReadingRepo(pg).write(ReadingBatch.of([1, 1, 2], ts, [1.0, 2.0, 3.0]))
    before = all_rows(pg)
    assert set(where_stored(pg)) == {"readings_default"}

    run = partitions.maintain(now)

    assert run.created == ["readings_p2031_04", "readings_p2031_06", "readings_p2031_07", "readings_p2031_08"]
    assert run.moved == 3 and run.dropped == []
    assert all_rows(pg) == before and in_their_months(pg)
    listed = {p.name: p for p in partitions.list_all()}
    june = listed["readings_p2031_06"]
    assert (june.start, june.end) == (datetime(2031, 6, 1, tzinfo=UTC), datetime(2031, 7, 1, tzinfo=UTC))
    assert june.rows_estimate == 2 and june.bytes > 0  # analysed after the move
    assert "readings_p2031_05" not in listed  # a month with no reading is created only when it is ahead
    assert partitions.maintain(now).created == []  # a second run has nothing to do
    assert partitions.maintain(datetime(2031, 7, 2, tzinfo=UTC)).created == ["readings_p2031_09"]


@pytest.mark.postgres
def test_retention_drops_only_whole_expired_months_and_their_rollups_stay(pg: Database) -> None:
    partitions = ReadingPartitions(pg, ahead_months=0, retention=timedelta(days=45))
    for n in range(4):
        partitions.create_month(add_months(MONTH, n))  # March to June 2025
    start, end = to_epoch_us(MONTH), to_epoch_us(datetime(2025, 6, 20, tzinfo=UTC))
    ts = np.arange(start, end, HOUR_US, dtype=np.int64)
    ReadingRepo(pg).write(ReadingBatch.of(np.full(len(ts), 3), ts, np.sin(np.arange(len(ts)) / 10)))
    rollups = RollupRepo(pg)
    rollups.rebuild(from_epoch_us(start), from_epoch_us(end), [3])  # what the `rollups` job keeps
    rolled = _rollup_rows(pg)
    assert len(rolled) > 2 * 24 * 110
    plot_before = rollups.series(3, start, end, 300)
    late = to_epoch_us(datetime(2025, 2, 14, tzinfo=UTC))  # a late reading of February: in the DEFAULT partition
    ReadingRepo(pg).write(ReadingBatch.of([4], [late], [1.0]))

    now = datetime(2025, 7, 10, tzinfo=UTC)  # cutoff 2025-05-26: March and April wholly older, May not
    assert [p.name for p in partitions.expired(now)] == ["readings_p2025_03", "readings_p2025_04"]
    run = partitions.maintain(now)

    # February gets its partition, then goes with the other expired months
    assert run.created == ["readings_p2025_02", "readings_p2025_07"] and run.moved == 1
    assert run.dropped == ["readings_p2025_02", "readings_p2025_03", "readings_p2025_04"]
    assert ReadingRepo(pg).count(4) == 0
    assert [p.name for p in partitions.list_all()][:2] == ["readings_p2025_05", "readings_p2025_06"]
    kept = ReadingRepo(pg).window(3)
    assert kept.index[0] == pd.Timestamp("2025-05-01", tz="UTC")  # May whole, also its days before the cutoff
    assert len(kept) == len(ts[ts >= to_epoch_us(datetime(2025, 5, 1, tzinfo=UTC))])
    assert _rollup_rows(pg) == rolled  # the roll-ups of March and April stay
    assert rollups.series(3, start, end, 300) == plot_before  # and the plot of the whole range still draws
    assert partitions.maintain(now).dropped == []


def _rollup_rows(db: Database) -> list[tuple[object, ...]]:
    with db.connect() as conn:
        return [tuple(r) for r in conn.execute(select(reading_rollups).order_by(*reading_rollups.primary_key))]


@pytest.mark.postgres
def test_the_partitions_job_runs_on_postgresql_only(pg: Database, tmp_path: Path) -> None:
    clock = FrozenClock(datetime(2031, 6, 15, tzinfo=UTC))
    settings = Settings(data_dir=tmp_path, database={"readings_retention_days": 30, "partitions_ahead_months": 1})
    pitstop = build(settings, clock=clock, db=pg)
    try:
        job = pitstop.scheduler.jobs["partitions"]
        assert job.every == timedelta(hours=1)
        job.func(clock.now())
        months = [p for p in ReadingPartitions(pg).list_all() if not p.default]
        names = [p.name for p in months]
        assert names[-2:] == ["readings_p2031_06", "readings_p2031_07"]  # now's and one ahead
        cutoff = clock.now() - timedelta(days=30)
        assert all(p.end is not None and p.end > cutoff for p in months)  # the migration's, expired, are gone
    finally:
        pitstop.close()
    sqlite = Database(f"sqlite:///{tmp_path / 'pitstop.db'}")
    sqlite.upgrade()
    on_sqlite = build(Settings(data_dir=tmp_path), clock=clock, db=sqlite)
    try:
        assert "partitions" not in on_sqlite.scheduler.jobs and "rollups" in on_sqlite.scheduler.jobs
        partitions = ReadingPartitions(sqlite, retention=timedelta(days=1))
        assert not partitions.partitioned() and partitions.list_all() == []
        assert partitions.maintain(clock.now()) == MaintenanceRun()
    finally:
        on_sqlite.close()
