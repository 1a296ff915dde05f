"""Plot series for the asset page: the minimum, maximum and count of each time bucket, with the buckets
that can no longer change kept in memory.

Buckets are aligned to the epoch (bucket k of width w covers [k*w, (k+1)*w)), so the same range asked
again a minute later shares all but its last buckets with the previous answer. A bucket that ended more
than SETTLE_S before now is closed: its aggregate is computed once by the database and kept for TTL_S
(readings that arrive later than that for a closed bucket show after the TTL). Each request then asks
the database only for the partial first bucket, the open tail and any closed buckets not yet kept:
two or three small aggregate queries instead of one over every reading of the range.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select

from pitstop.storage.engine import Database
from pitstop.storage.schema import readings

SETTLE_S = 300.0
TTL_S = 600.0
MAX_SERIES = 1000

Aggregate = tuple[float, float, int]  # min, max, count


@dataclass
class _Series:
    buckets: dict[int, Aggregate]
    lo: int  # kept: the closed buckets lo <= k < hi
    hi: int
    built: float


def aggregate(db: Database, sensor_id: int, start_us: int, end_us: int, width_us: int) -> dict[int, Aggregate]:
    """Per epoch-aligned bucket of [start_us, end_us): (min, max, count), computed by the database."""
    if end_us <= start_us:
        return {}
    bucket = (readings.c.ts // width_us).label("bucket")
    query = (
        select(bucket, func.min(readings.c.value), func.max(readings.c.value), func.count())
        .where(readings.c.sensor_id == sensor_id, readings.c.ts >= start_us, readings.c.ts < end_us)
        .group_by(bucket)
    )
    with db.connect() as conn:
        return {int(k): (float(lo), float(hi), int(n)) for k, lo, hi, n in conn.execute(query)}


class BucketCache:
    def __init__(
        self,
        *,
        settle_s: float = SETTLE_S,
        ttl_s: float = TTL_S,
        max_series: int = MAX_SERIES,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settle_us = int(settle_s * 1e6)
        self.ttl_s = ttl_s
        self.max_series = max_series
        self.monotonic = monotonic
        self._series: OrderedDict[tuple[int, int], _Series] = OrderedDict()
        self._lock = threading.Lock()
        self.queried_rows = 0  # readings the database aggregated for this cache (for tests and benchmarks)

    def buckets(
        self, db: Database, sensor_id: int, start_us: int, end_us: int, now_us: int, width_us: int
    ) -> list[tuple[int, int, Aggregate]]:
        """[(bucket start, bucket end, (min, max, count))] of [start_us, end_us) in time order, buckets clipped
        to the range; only buckets with readings."""
        width_us = max(1, width_us)
        first = start_us // width_us
        inner = first + 1 if start_us % width_us else first  # the first whole bucket
        closed = max(min((now_us - self.settle_us) // width_us, end_us // width_us), inner)  # kept: [inner, closed)
        with self._lock:
            series = self._kept(sensor_id, width_us, inner)
            if series.hi < closed:
                fresh = self._query(db, sensor_id, series.hi * width_us, closed * width_us, width_us)
                series.buckets.update(fresh)
                series.hi = closed
            middle = [(k, series.buckets[k]) for k in range(inner, closed) if k in series.buckets]
        head = self._query(db, sensor_id, start_us, min(inner * width_us, end_us), width_us) if inner > first else {}
        tail = self._query(db, sensor_id, max(closed * width_us, start_us), end_us, width_us)
        out = []
        for k, agg in [*sorted(head.items()), *middle, *sorted(tail.items())]:
            out.append((max(k * width_us, start_us), min((k + 1) * width_us, end_us), agg))
        return out

    def _kept(self, sensor_id: int, width_us: int, inner: int) -> _Series:
        key = (sensor_id, width_us)
        series = self._series.get(key)
        if series is None or self.monotonic() - series.built > self.ttl_s or inner < series.lo or inner > series.hi:
            series = _Series({}, inner, inner, self.monotonic())
            self._series[key] = series
        elif inner > series.lo:
            for k in range(series.lo, inner):
                series.buckets.pop(k, None)
            series.lo = inner
        self._series.move_to_end(key)
        while len(self._series) > self.max_series:
            self._series.popitem(last=False)
        return series

    def _query(self, db: Database, sensor_id: int, start_us: int, end_us: int, width_us: int) -> dict[int, Aggregate]:
        found = aggregate(db, sensor_id, start_us, end_us, width_us)
        self.queried_rows += sum(n for _, _, n in found.values())
        return found
