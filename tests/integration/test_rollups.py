"""Roll-ups of readings on SQLite and PostgreSQL: a plot read from them is what one aggregate over the
readings gives; late readings are folded in by the rule the module states."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import delete, select

from pitstop.app import Pitstop
from pitstop.core.types import from_epoch_us
from pitstop.storage.repos.readings import ReadingBatch
from pitstop.storage.repos.rollups import COARSE_S, FINE_S, RELOOK, RollupRepo
from pitstop.storage.schema import reading_rollups, readings

HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US


@pytest.fixture
def sensor(demo_pitstop: Pitstop) -> int:
    return next(s.id for s in demo_pitstop.assets.sensors("pump-1") if s.name == "vib_rms")


def now_us(p: Pitstop) -> int:
    return int(p.clock.now().timestamp() * 1e6)


def write(p: Pitstop, sensor: int, ts: np.ndarray, values: np.ndarray) -> None:
    p.readings.write(ReadingBatch.of(np.full(len(ts), sensor), ts, values))


def stored(p: Pitstop, sensor: int) -> tuple[np.ndarray, np.ndarray]:
    with p.db.connect() as conn:
        rows = conn.execute(
            select(readings.c.ts, readings.c.value).where(readings.c.sensor_id == sensor).order_by(readings.c.ts)
        ).all()
    return np.array([r[0] for r in rows], dtype=np.int64), np.array([r[1] for r in rows], dtype=np.float64)


def check_against_readings(p: Pitstop, sensor: int, start: int, end: int, buckets: int = 300) -> list[tuple]:
    """Each bucket of the series is the min, max and count of the readings inside it, and together the
    buckets hold every reading of the range."""
    ts, values = stored(p, sensor)
    got = RollupRepo(p.db).series(sensor, start, end, buckets)
    assert got == sorted(got) and all(start <= lo < hi <= end for lo, hi, _ in got)
    for lo, hi, (low, high, n) in got:
        inside = (ts >= lo) & (ts < hi)
        assert (low, high, n) == (values[inside].min(), values[inside].max(), int(inside.sum())), (lo, hi)
    assert sum(n for _, _, (_, _, n) in got) == int(((ts >= start) & (ts < end)).sum())
    return got


def test_series_from_rollups_match_the_readings_over_every_range(demo_pitstop: Pitstop, sensor: int) -> None:
    rng = np.random.default_rng(11)
    end = now_us(demo_pitstop)
    ts = np.unique(rng.integers(end - 40 * DAY_US, end, 60_000))
    values = rng.normal(0, 1, len(ts))
    values[len(ts) // 3] = 75.0  # a spike deep inside the rolled-up part
    write(demo_pitstop, sensor, ts, values)
    run = RollupRepo(demo_pitstop.db).update(demo_pitstop.clock.now())
    assert run.sensors == 1 and run.spans > 0
    for span in (timedelta(hours=1), timedelta(hours=24), timedelta(days=7), timedelta(days=30)):
        start = end - int(span.total_seconds() * 1e6)
        got = check_against_readings(demo_pitstop, sensor, start, end)
        assert 0.8 * 300 <= len(got) <= 300 or span == timedelta(hours=1)
    got = check_against_readings(demo_pitstop, sensor, end - 40 * DAY_US, end)
    assert max(high for _, _, (_, high, _) in got) == 75.0  # the spike survives


def test_hours_are_the_readings_of_each_hour(demo_pitstop: Pitstop, sensor: int) -> None:
    end = now_us(demo_pitstop) // HOUR_US * HOUR_US
    ts = np.arange(end - 6 * HOUR_US, end + 120_000_000, 7_000_000)
    values = np.cos(ts / 1e10) * 10
    write(demo_pitstop, sensor, ts, values)
    RollupRepo(demo_pitstop.db).update(demo_pitstop.clock.now())
    with demo_pitstop.db.connect() as conn:
        rows = conn.execute(
            select(reading_rollups).where(reading_rollups.c.sensor_id == sensor).order_by(reading_rollups.c.start_us)
        ).all()
    hours = [r for r in rows if r.span_s == COARSE_S]
    assert [r.start_us for r in hours] == list(range(end - 6 * HOUR_US, end, HOUR_US))  # the open hour is not
    for r in hours:
        inside = (ts >= r.start_us) & (ts < r.start_us + HOUR_US)
        assert (r.low, r.high, r.n) == (values[inside].min(), values[inside].max(), int(inside.sum()))
        assert r.total == pytest.approx(values[inside].sum())
    fine = [r.start_us for r in rows if r.span_s == FINE_S]
    assert fine[-1] < end  # the 5-minute span holding the newest reading stays open


def test_late_readings_within_the_relook_are_folded_in_and_older_ones_after_a_rebuild(
    demo_pitstop: Pitstop, sensor: int
) -> None:
    repo = RollupRepo(demo_pitstop.db)
    end = now_us(demo_pitstop)
    ts = np.arange(end - 3 * DAY_US, end, 60_000_000)
    write(demo_pitstop, sensor, ts, np.zeros(len(ts)))
    repo.update(demo_pitstop.clock.now())
    relook_us = int(RELOOK.total_seconds() * 1e6)
    recent, old = end - relook_us // 2 + 7, end - 2 * DAY_US + 17  # off the minute grid: new keys
    write(demo_pitstop, sensor, np.array([recent, old]), np.array([5.0, 9.0]))
    repo.update(demo_pitstop.clock.now())
    got = repo.series(sensor, end - 3 * DAY_US, end, 300)
    assert max(high for _, _, (_, high, _) in got) == 5.0  # recent: in; old: not yet
    repo.rebuild(from_epoch_us(old), from_epoch_us(old + 1), [sensor])
    got = check_against_readings(demo_pitstop, sensor, end - 3 * DAY_US, end)
    assert max(high for _, _, (_, high, _) in got) == 9.0


def test_a_sensor_whose_readings_arrive_late_in_order_is_rolled_up_only_as_far_as_they_came(
    demo_pitstop: Pitstop, sensor: int
) -> None:
    repo = RollupRepo(demo_pitstop.db)
    end = now_us(demo_pitstop)
    ts = np.arange(end - 2 * DAY_US, end, 30_000_000)
    values = np.sin(ts / 1e9)
    outage = ts < end - DAY_US  # a spool drained after a day-long outage: the first day arrives first
    write(demo_pitstop, sensor, ts[outage], values[outage])
    repo.update(demo_pitstop.clock.now())
    write(demo_pitstop, sensor, ts[~outage], values[~outage])
    repo.update(demo_pitstop.clock.now())
    check_against_readings(demo_pitstop, sensor, end - 2 * DAY_US, end)


def test_long_ranges_read_the_rollups_not_the_readings(demo_pitstop: Pitstop, sensor: int) -> None:
    repo = RollupRepo(demo_pitstop.db)
    end = now_us(demo_pitstop)
    ts = np.arange(end - 30 * DAY_US, end, 600_000_000)
    write(demo_pitstop, sensor, ts, np.ones(len(ts)))
    repo.update(demo_pitstop.clock.now())
    cut = end - 2 * HOUR_US
    with demo_pitstop.db.begin() as conn:  # raw readings gone (retention): the month stays plotted
        conn.execute(delete(readings).where(readings.c.sensor_id == sensor, readings.c.ts < cut))
    top = end // HOUR_US * HOUR_US  # whole spans only: no partial first span read from the readings
    for days in (7, 30):
        got = repo.series(sensor, top - days * DAY_US, top, 300)
        assert sum(n for _, _, (_, _, n) in got) == int(((ts >= top - days * DAY_US) & (ts < top)).sum())
        assert {lo for lo, _, (_, _, n) in got if n} <= set(range(top - days * DAY_US, top, 60_000_000 * 5))


def test_nothing_stored_gives_nothing(demo_pitstop: Pitstop, sensor: int) -> None:
    repo = RollupRepo(demo_pitstop.db)
    assert repo.update(demo_pitstop.clock.now()).spans == 0
    end = now_us(demo_pitstop)
    assert repo.series(sensor, end - 30 * DAY_US, end, 300) == []
