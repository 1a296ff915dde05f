"""The asset page's bucket cache gives what one aggregate over the range gives, while asking the database
only for the new buckets."""

from __future__ import annotations

import numpy as np
import pytest

from pitstop.app import Pitstop
from pitstop.storage.repos.readings import ReadingBatch
from pitstop.web.series import BucketCache

HOUR_US = 3_600_000_000


def reference(
    ts: np.ndarray, values: np.ndarray, start: int, end: int, width: int
) -> list[tuple[int, int, tuple[float, float, int]]]:
    inside = (ts >= start) & (ts < end)
    ts, values = ts[inside], values[inside]
    out = []
    for k in np.unique(ts // width):
        sel = ts // width == k
        agg = (float(values[sel].min()), float(values[sel].max()), int(sel.sum()))
        out.append((max(int(k) * width, start), min((int(k) + 1) * width, end), agg))
    return out


@pytest.fixture
def sensor(demo_pitstop: Pitstop) -> int:
    return next(s.id for s in demo_pitstop.assets.sensors("pump-1") if s.name == "vib_rms")


def write(p: Pitstop, sensor: int, ts: np.ndarray, values: np.ndarray) -> None:
    p.readings.write(ReadingBatch.of(np.full(len(ts), sensor), ts, values))


def test_cached_buckets_match_one_aggregate_and_only_new_rows_are_read(demo_pitstop: Pitstop, sensor: int) -> None:
    rng = np.random.default_rng(5)
    now = int(demo_pitstop.clock.now().timestamp() * 1e6)
    ts = np.unique(rng.integers(now - 80 * HOUR_US, now, 30_000))
    values = rng.normal(0, 1, len(ts))
    values[len(ts) // 2] = 50.0  # a spike in a closed bucket
    write(demo_pitstop, sensor, ts, values)
    tick = [0.0]
    cache = BucketCache(monotonic=lambda: tick[0])
    span, width = 48 * HOUR_US, 48 * HOUR_US // 300

    start = now - span
    assert cache.buckets(demo_pitstop.db, sensor, start, now, now, width) == reference(ts, values, start, now, width)
    first = cache.queried_rows
    assert first == int(((ts >= start) & (ts < now)).sum())

    # Ten minutes later: new readings; the range moves; only the newest buckets and the partial first one are read.
    later = now + 600_000_000
    new_ts = np.arange(now, later, 1_000_000)
    new_values = rng.normal(0, 1, len(new_ts))
    write(demo_pitstop, sensor, new_ts, new_values)
    all_ts, all_values = np.concatenate([ts, new_ts]), np.concatenate([values, new_values])
    start = later - span
    got = cache.buckets(demo_pitstop.db, sensor, start, later, later, width)
    assert got == reference(all_ts, all_values, start, later, width)
    assert cache.queried_rows - first < 2_000  # not the 20 000 readings of the range again
    assert max(agg[1] for _, _, agg in got) == 50.0  # the spike survives


def test_a_late_reading_in_a_closed_bucket_shows_after_the_ttl(demo_pitstop: Pitstop, sensor: int) -> None:
    now = int(demo_pitstop.clock.now().timestamp() * 1e6)
    ts = np.arange(now - 10 * HOUR_US, now, 60_000_000)
    write(demo_pitstop, sensor, ts, np.zeros(len(ts)))
    tick = [0.0]
    cache = BucketCache(monotonic=lambda: tick[0], ttl_s=600)
    start, width = now - 8 * HOUR_US, 8 * HOUR_US // 300
    cache.buckets(demo_pitstop.db, sensor, start, now, now, width)
    write(demo_pitstop, sensor, np.array([now - 5 * HOUR_US + 7]), np.array([9.0]))
    assert max(a[1] for _, _, a in cache.buckets(demo_pitstop.db, sensor, start, now, now, width)) == 0.0
    tick[0] = 601.0
    assert max(a[1] for _, _, a in cache.buckets(demo_pitstop.db, sensor, start, now, now, width)) == 9.0


def test_a_range_before_the_kept_one_rebuilds(demo_pitstop: Pitstop, sensor: int) -> None:
    now = int(demo_pitstop.clock.now().timestamp() * 1e6)
    ts = np.arange(now - 30 * HOUR_US, now, 30_000_000)
    values = np.sin(ts / 1e9)
    write(demo_pitstop, sensor, ts, values)
    cache = BucketCache()
    width = 3 * HOUR_US // 300
    for end in (now, now - 20 * HOUR_US, now - 10 * HOUR_US + 12_345):
        start = end - 3 * HOUR_US
        got = cache.buckets(demo_pitstop.db, sensor, start, end, now, width)
        assert got == reference(ts, values, start, end, width), end
