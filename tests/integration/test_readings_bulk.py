"""Bulk reads of readings (`window`, `recent`, `tails`) straight from the driver, on SQLite and
PostgreSQL: the same rows, order and types as SQLAlchemy Core's query of the same window."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from pitstop.storage import Database
from pitstop.storage.repos.readings import ReadingBatch, ReadingRepo
from pitstop.storage.schema import readings

T0 = 1_767_225_600_000_000  # 2026-01-01 00:00 UTC, in µs
MINUTE = 60_000_000


def _core(db: Database, *where: object) -> list[tuple[int, int, float]]:
    """The reference: SQLAlchemy Core rows of the same readings, in (sensor, ts) order."""
    query = select(readings.c.sensor_id, readings.c.ts, readings.c.value).where(*where)  # type: ignore[arg-type]
    with db.connect() as conn:
        rows = conn.execute(query.order_by(readings.c.sensor_id, readings.c.ts)).all()
    return [(int(s), int(t), float(v)) for s, t, v in rows]


@pytest.fixture
def stored(db: Database) -> tuple[ReadingRepo, ReadingBatch]:
    """450 sensors (more than one query's 200) at irregular times, a few with nothing stored."""
    rng = np.random.default_rng(11)
    n = 20_000
    sensor = rng.integers(1, 451, n)
    sensor[np.isin(sensor, [17, 250])] = 1  # two sensors without readings
    ts = T0 + rng.integers(0, 30 * 1440, n) * MINUTE + rng.integers(0, 1000, n)
    batch = ReadingBatch.of(sensor, ts, rng.normal(20, 5, n)).sorted_unique()
    repo = ReadingRepo(db)
    assert repo.write(batch).stored == len(batch)
    return repo, batch


def test_window_is_core_query_as_a_utc_frame(db: Database, stored: tuple[ReadingRepo, ReadingBatch]) -> None:
    repo, _ = stored
    start, end = T0 + 3 * 1440 * MINUTE, T0 + 20 * 1440 * MINUTE
    frame = repo.window(5, start, end)
    expected = [(t, v) for _, t, v in _core(db, readings.c.sensor_id == 5, readings.c.ts >= start, readings.c.ts < end)]
    assert len(frame) == len(expected) > 10
    assert frame.index.name == "ts" and str(frame.index.dtype) == "datetime64[us, UTC]"
    assert list(frame.columns) == ["value"] and frame["value"].dtype == np.float64
    assert frame.index.is_monotonic_increasing
    got = [(int(ts.value // 1000), float(v)) for ts, v in frame["value"].items()]
    assert got == expected
    first = frame.index[0].to_pydatetime()
    assert first.tzinfo is not None and first.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert first == datetime(1970, 1, 1, tzinfo=UTC) + pd.Timedelta(microseconds=expected[0][0])


def test_window_bounds_are_start_inclusive_end_exclusive(db: Database) -> None:
    repo = ReadingRepo(db)
    repo.write(ReadingBatch.of([3] * 5, [T0, T0 + 1, T0 + 2, T0 + 3, T0 + 4], [0.0, 1.0, 2.0, 3.0, 4.0]))
    assert repo.window(3, T0 + 1, T0 + 3)["value"].tolist() == [1.0, 2.0]
    assert repo.window(3, None, T0 + 2)["value"].tolist() == [0.0, 1.0]
    assert repo.window(3, T0 + 3)["value"].tolist() == [3.0, 4.0]
    assert len(repo.window(3)) == 5
    empty = repo.window(4)
    assert empty.empty and str(empty.index.dtype) == "datetime64[us, UTC]" and empty["value"].dtype == np.float64
    assert repo.window(3, T0 + 4, T0 + 4).empty  # an empty range, not an error


def test_values_and_times_round_trip_exactly(db: Database) -> None:
    """Extremes of both columns come back bit for bit: no float detour for the µs timestamps."""
    repo = ReadingRepo(db)
    ts = [-(2**62), -1, 0, 2**53 + 1, 2**62 + 7]  # 2**53 + 1 is not a float64
    values = [1.7976931348623157e308, -2.5, 5e-324, -1e-300, 123456789.123456789]  # (SQLite keeps no -0.0)
    repo.write(ReadingBatch.of([9] * 5, ts, values))
    got = repo.recent([9], -(2**63) + 1, 2**63 - 1)[9]
    assert got[0].tolist() == ts and got[0].dtype == np.int64
    assert [v.hex() for v in got[1].tolist()] == [float(v).hex() for v in values] and got[1].dtype == np.float64
    tails = repo.tails([9], 2)[9]
    assert tails[0].tolist() == ts[-2:] and tails[1].tolist() == values[-2:]


def test_recent_is_the_core_query_per_sensor(db: Database, stored: tuple[ReadingRepo, ReadingBatch]) -> None:
    repo, _ = stored
    start, end = T0 + 10 * 1440 * MINUTE, T0 + 12 * 1440 * MINUTE
    ids = [*range(1, 451), 5, 5, 9999]  # repeats and an unknown sensor
    got = repo.recent(ids, start, end)
    expected: dict[int, list[tuple[int, float]]] = {}
    for s, t, v in _core(db, readings.c.ts >= start, readings.c.ts <= end):  # [start, end]: both ends in
        expected.setdefault(s, []).append((t, v))
    assert sorted(got) == sorted(expected) and 17 not in got and 9999 not in got
    assert len(got) > 200  # more than one query's worth of sensors
    for sensor_id, (ts, values) in got.items():
        assert ts.dtype == np.int64 and values.dtype == np.float64
        assert ts.flags.c_contiguous and values.flags.c_contiguous
        assert list(zip(ts.tolist(), values.tolist(), strict=True)) == expected[sensor_id]
    assert repo.recent([], start, end) == {}
    assert repo.recent([17, 250], start, end) == {}


def test_recent_includes_both_ends(db: Database) -> None:
    repo = ReadingRepo(db)
    repo.write(ReadingBatch.of([2] * 4, [10, 20, 30, 40], [1.0, 2.0, 3.0, 4.0]))
    ts, values = repo.recent([2], 20, 30)[2]
    assert ts.tolist() == [20, 30] and values.tolist() == [2.0, 3.0]


def test_tails_are_the_newest_n_oldest_first(db: Database, stored: tuple[ReadingRepo, ReadingBatch]) -> None:
    repo, batch = stored
    until = T0 + 15 * 1440 * MINUTE
    got = repo.tails(list(range(1, 451)), 4, until_us=until)
    for sensor_id in range(1, 451):
        mine = batch.sensor_id == sensor_id
        ts, values = batch.ts_us[mine], batch.value[mine]
        keep = ts <= until
        want_ts, want_values = ts[keep][-4:], values[keep][-4:]  # the batch is in key order
        if len(want_ts) == 0:
            assert sensor_id not in got
            continue
        assert got[sensor_id][0].tolist() == want_ts.tolist()
        assert got[sensor_id][1].tolist() == want_values.tolist()
    everything = repo.tails([1, 2, 3], 10**6)  # n beyond what is stored: all of it, no until
    for sensor_id in (1, 2, 3):
        assert everything[sensor_id][0].tolist() == batch.ts_us[batch.sensor_id == sensor_id].tolist()
    assert repo.tails([1], 0) == {} and repo.tails([1], -3) == {} and repo.tails([], 5) == {}
    assert repo.tails([17], 3) == {}


def test_reads_see_a_write_that_came_after_an_earlier_read(db: Database) -> None:
    """Nothing cached between reads: each read is the database as it is."""
    repo = ReadingRepo(db)
    repo.write(ReadingBatch.of([1], [100], [1.0]))
    assert repo.window(1)["value"].tolist() == [1.0]
    repo.write(ReadingBatch.of([1], [200], [2.0]))
    assert repo.window(1)["value"].tolist() == [1.0, 2.0]
    assert repo.tails([1], 1)[1][1].tolist() == [2.0]
