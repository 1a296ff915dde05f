"""Repositories on both databases: the same behaviour on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from pitstop import inventory
from pitstop.app import Pitstop
from pitstop.core.types import Role, from_epoch_us, to_epoch_us
from pitstop.errors import DatabaseUnavailable, InventoryError, SchemaOutdated
from pitstop.scheduler import Scheduler
from pitstop.storage import Database
from pitstop.storage.repos.readings import ReadingBatch
from pitstop.storage.schema import assets, audit_log, sensors
from pitstop.testing.clock import FrozenClock
from tests.conftest import DEMO_INVENTORY


def _counts(db: Database) -> tuple[int, int, int]:
    with db.connect() as conn:
        return (
            conn.execute(select(func.count()).select_from(assets)).scalar_one(),
            conn.execute(select(func.count()).select_from(sensors)).scalar_one(),
            conn.execute(select(func.count()).select_from(audit_log)).scalar_one(),
        )


def test_inventory_load_is_idempotent(pitstop: Pitstop) -> None:
    spec = inventory.read_file(DEMO_INVENTORY)
    first = inventory.apply(pitstop.db, spec, actor="t", now=pitstop.clock.now())
    assert first.created == 1 + 6 + 29 and first.updated == 0
    before = _counts(pitstop.db)
    again = inventory.apply(pitstop.db, spec, actor="t", now=pitstop.clock.now())
    assert (again.created, again.updated, again.unchanged) == (0, 0, 36)
    assert _counts(pitstop.db) == before  # not even an audit row


def test_inventory_change_updates_in_place(pitstop: Pitstop) -> None:
    text = DEMO_INVENTORY.read_text()
    inventory.apply(pitstop.db, inventory.parse(text, "a", "toml"), actor="t", now=pitstop.clock.now())
    changed = text.replace(
        'name = "fan-1"\nsite = "north-plant"\ntype = "fan"\ncriticality = 3',
        'name = "fan-1"\nsite = "north-plant"\ntype = "fan"\ncriticality = 5',
    )
    summary = inventory.apply(pitstop.db, inventory.parse(changed, "b", "toml"), actor="t", now=pitstop.clock.now())
    assert summary.changes == ["updated asset fan-1"]
    assert pitstop.assets.get_asset("fan-1").criticality == 5  # type: ignore[union-attr]


def test_unknown_parent_writes_nothing(pitstop: Pitstop) -> None:
    text = (
        '[[sites]]\nname = "s"\n\n[[assets]]\nname = "a"\nsite = "s"\ntype = "t"\n\n'
        '[[assets]]\nname = "b"\nsite = "s"\ntype = "t"\nparent = "ghost"\n'
    )
    with pytest.raises(InventoryError, match=r"x.toml: line 10: asset 'b' has unknown parent 'ghost'"):
        inventory.apply(pitstop.db, inventory.parse(text, "x.toml", "toml"), actor="t", now=pitstop.clock.now())
    assert _counts(pitstop.db) == (0, 0, 0)
    assert pitstop.assets.list_sites() == []


def test_readings_are_stored_once(demo_pitstop: Pitstop) -> None:
    sensor = demo_pitstop.assets.sensor_index()[("ahu-1", "UCAOT")]
    t0 = to_epoch_us(demo_pitstop.clock.now())
    ts = t0 + np.arange(1000, dtype=np.int64) * 60_000_000
    batch = ReadingBatch.of(np.full(1000, sensor.id), ts, np.linspace(10, 20, 1000))
    first = demo_pitstop.readings.write(batch)
    assert (first.stored, first.duplicates) == (1000, 0)
    overlap = ReadingBatch.of(np.full(1500, sensor.id), t0 + np.arange(500, 2000) * 60_000_000, np.zeros(1500))
    second = demo_pitstop.readings.write(overlap)
    assert (second.stored, second.duplicates) == (1000, 500)
    assert demo_pitstop.readings.count() == 2000
    # the first value written wins: a replay never rewrites history
    frame = demo_pitstop.readings.window(sensor.id, int(ts[0]), int(ts[10]))
    assert len(frame) == 10
    assert frame["value"].iloc[0] == 10.0
    assert frame.index[0] == from_epoch_us(int(ts[0]))
    assert str(frame.index.tz) == "UTC"


def test_duplicates_inside_one_batch(demo_pitstop: Pitstop) -> None:
    sensor = demo_pitstop.assets.sensor_index()[("pump-1", "vib_rms")]
    batch = ReadingBatch.of([sensor.id] * 4, [5, 5, 6, 6], [1.0, 2.0, 3.0, 4.0])
    result = demo_pitstop.readings.write(batch)
    assert (result.stored, result.duplicates) == (2, 2)


def test_span_gives_each_sensors_oldest_and_newest_reading(demo_pitstop: Pitstop) -> None:
    first, second, *_ = demo_pitstop.assets.sensors("ahu-1")
    demo_pitstop.readings.write(ReadingBatch.of([first.id] * 3, [7, 3, 11], [1.0, 2.0, 3.0]))
    assert demo_pitstop.readings.span([first.id, second.id]) == {first.id: (3, 11)}  # no readings: left out


def test_api_keys(pitstop: Pitstop) -> None:
    key, token = pitstop.keys.create("ops", Role.OPERATOR, pitstop.clock.now())
    assert token.startswith(f"ps_{key.prefix}_")
    assert pitstop.keys.authenticate(token) == key
    assert pitstop.keys.authenticate(token + "x") is None
    assert pitstop.keys.authenticate("ps_nope_nope") is None
    assert pitstop.keys.revoke(key.prefix, pitstop.clock.now())
    assert pitstop.keys.authenticate(token) is None


def test_scheduler_runs_due_jobs_and_records_them(pitstop: Pitstop, clock: FrozenClock) -> None:
    calls: list[str] = []
    pitstop.scheduler.add("every-minute", timedelta(minutes=1), lambda now: calls.append(now.isoformat()))
    pitstop.scheduler.add("broken", timedelta(minutes=1), lambda now: 1 / 0)  # type: ignore[func-returns-value]
    assert "every-minute" in pitstop.scheduler.tick()
    clock.advance(30)
    assert "every-minute" not in pitstop.scheduler.tick()
    clock.advance(30)
    assert "every-minute" in pitstop.scheduler.tick()
    assert len(calls) == 2
    runs = pitstop.jobs.recent("broken")
    assert [r.outcome for r in runs] == ["failed", "failed"]
    assert "ZeroDivisionError" in (runs[0].error or "")


def test_only_one_scheduler_leads(pitstop: Pitstop, clock: FrozenClock) -> None:
    ttl = timedelta(seconds=15)
    a = Scheduler(pitstop.jobs, clock, lease_ttl=ttl, instance="a")
    b = Scheduler(pitstop.jobs, clock, lease_ttl=ttl, instance="b")
    for s in (a, b):
        s.add("job", timedelta(seconds=1), lambda now: None)
    assert a.tick() == ["job"]
    assert b.tick() == []
    clock.advance(10)
    assert a.tick() == ["job"]  # renews
    assert b.tick() == []
    clock.advance(16)  # a stopped ticking: its lease expired
    assert b.tick() == ["job"]
    assert a.tick() == []
    b.release()
    assert a.tick() == ["job"]


def test_fresh_database_is_behind(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'new.db'}")
    with pytest.raises(SchemaOutdated, match="pitstop db upgrade"):
        db.ensure_current()
    db.upgrade()
    db.ensure_current()
    db.upgrade()  # a second upgrade is harmless
    assert db.is_current()


def test_unreachable_postgres_is_one_clear_error() -> None:
    db = Database("postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(DatabaseUnavailable, match=r"postgresql\+psycopg://nobody@127.0.0.1:1/none is not reachable"):
        db.ping()


def test_a_long_job_does_not_let_two_instances_lead(pitstop: Pitstop, clock: FrozenClock) -> None:
    ttl = timedelta(seconds=2)
    a = Scheduler(pitstop.jobs, clock, lease_ttl=ttl, instance="a")
    b = Scheduler(pitstop.jobs, clock, lease_ttl=ttl, instance="b")
    ran: list[str] = []

    def slow(now: object) -> None:  # outlasts the lease; meanwhile b ticks and takes over
        clock.advance(5)
        ran.extend(f"b:{name}" for name in b.tick())

    a.add("slow", timedelta(minutes=1), slow)
    a.add("second", timedelta(minutes=1), lambda now: ran.append("a:second"))
    b.add("second", timedelta(minutes=1), lambda now: None)
    assert a.tick() == ["slow"]  # renewing before "second" showed b leads now: a stops
    assert ran == ["b:second"]
    assert not a.is_leader and b.is_leader
    b.keep_lease()
    clock.advance(1.5)
    b.keep_lease()  # renewal while leading keeps a out past the first expiry
    clock.advance(1.5)
    assert a.tick() == []
