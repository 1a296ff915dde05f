"""Roll-ups of readings: per sensor, the minimum, maximum, count and sum of every epoch-aligned 5-minute
and hour span, so that a plot of a week, a month or a year reads a few thousand rows, not every reading.

Two levels: 5 minutes (FINE) from the readings, hours (COARSE) from the 5-minute rows. A plot of a range
uses the coarsest level that still gives at least 80 % of the buckets it asks for (24 h and 7 d: 5
minutes; 30 d and a year: hours; an hour: the readings themselves), its buckets widened to a whole
number of roll-up spans, and reads the readings only for the partial first span and the open tail after
the last rolled-up span.

Keeping them up to date (`update`, the `rollups` job every JOB_EVERY): per sensor, the 5-minute spans
from RELOOK before the end of its last rolled-up span up to the span holding the sensor's newest
reading (or now, if earlier) are recomputed from the readings, then the hours they touch from the
5-minute rows. The span that holds the newest reading is left open. So:

- a sensor whose readings arrive late but in order (a spool drained after an outage, a link that
  comes back) is rolled up only as far as its readings have arrived, and nothing is missed;
- a reading that arrives out of order, up to RELOOK after the end of its span, is folded in by the
  next run;
- a reading older than that (a backfill of an old gap) is in the roll-ups only after `rebuild` over its
  range; until then the plot's span shows what was there before.

Every recompute deletes and re-inserts its spans in one transaction (at most CHUNK of readings each),
the same SQL on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, and_, delete, func, literal, select

from pitstop.storage.engine import Database
from pitstop.storage.schema import reading_rollups, readings, sensors

FINE_S = 300
COARSE_S = 3600
LEVELS = (COARSE_S, FINE_S)  # coarsest first
RELOOK = timedelta(hours=1)
CHUNK = timedelta(days=1)
JOB_EVERY = timedelta(minutes=5)
MIN_SHARE = 0.8  # a level serves a plot when it gives at least this share of the buckets asked for
US = 1_000_000

Aggregate = tuple[float, float, int]  # min, max, count
Bucket = tuple[int, int, Aggregate]  # start µs, end µs (clipped to the range), aggregate


@dataclass(frozen=True, slots=True)
class RollupRun:
    sensors: int  # sensors whose spans were recomputed
    spans: int  # 5-minute and hour rows written


def _at(t_us: int) -> datetime:
    return datetime.fromtimestamp(t_us / US, tz=UTC)


def _floor(t: int, span: int) -> int:
    return t // span * span


def _ceil(t: int, span: int) -> int:
    return -(-t // span) * span


class RollupRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- keeping them up to date ------------------------------------------------------------------

    def scheduled(self, now: datetime) -> None:
        """The scheduler job."""
        self.update(now)

    def update(self, now: datetime) -> RollupRun:
        """Roll up what arrived since the last run (and recompute the last RELOOK of spans already done)."""
        now_us = int(now.timestamp() * US)
        fine_us, relook_us = FINE_S * US, int(RELOOK.total_seconds() * US)
        newest = select(func.max(readings.c.ts)).where(readings.c.sensor_id == sensors.c.id).scalar_subquery()
        oldest = select(func.min(readings.c.ts)).where(readings.c.sensor_id == sensors.c.id).scalar_subquery()
        done = (
            select(func.max(reading_rollups.c.start_us))
            .where(reading_rollups.c.sensor_id == sensors.c.id, reading_rollups.c.span_s == FINE_S)
            .scalar_subquery()
        )
        with self.db.connect() as conn:
            rows = conn.execute(select(sensors.c.id, newest, oldest, done)).all()
        touched = written = 0
        for sensor_id, new_ts, old_ts, last in rows:
            if new_ts is None:
                continue
            start = int(old_ts) if last is None else int(last) + fine_us - relook_us
            end = min(_floor(now_us, fine_us), _floor(int(new_ts), fine_us))
            if _floor(start, fine_us) < end:
                written += self._recompute(int(sensor_id), _floor(start, fine_us), end)
                touched += 1
        return RollupRun(touched, written)

    def rebuild(self, start: datetime, end: datetime, sensor_ids: list[int] | None = None) -> RollupRun:
        """Recompute the spans of [start, end) (widened to whole hours) from the readings: after a
        backfill of readings older than RELOOK."""
        hour_us = COARSE_S * US
        lo, hi = _floor(int(start.timestamp() * US), hour_us), _ceil(int(end.timestamp() * US), hour_us)
        if sensor_ids is None:
            with self.db.connect() as conn:
                sensor_ids = [int(s) for s in conn.execute(select(sensors.c.id)).scalars()]
        written = sum(self._recompute(s, lo, hi) for s in sensor_ids)
        return RollupRun(len(sensor_ids), written)

    def after_import(self, first_us: int, last_us: int, sensor_ids: Iterable[int], now: datetime) -> RollupRun:
        """After an import (`pitstop ingest`, `pitstop sim backfill`): rebuild the spans of what it
        stored that lie further back than the job looks again; the job rolls up the rest."""
        horizon_us = int(now.timestamp() * US) - int(RELOOK.total_seconds() * US)
        end_us = min(last_us + 1, horizon_us)
        if first_us >= end_us:
            return RollupRun(0, 0)
        return self.rebuild(_at(first_us), _at(end_us), sorted(sensor_ids))

    def _recompute(self, sensor_id: int, start_us: int, end_us: int) -> int:
        """5-minute spans of [start_us, end_us) (multiples of 5 minutes) from the readings, a chunk per
        transaction, then the whole hours inside the result from the 5-minute rows."""
        written = 0
        chunk_us = int(CHUNK.total_seconds() * US)
        for lo in range(start_us, end_us, chunk_us):
            hi = min(lo + chunk_us, end_us)
            with self.db.begin() as conn:
                written += _replace(conn, sensor_id, FINE_S, lo, hi)
        hour_us = COARSE_S * US
        lo, hi = _floor(start_us, hour_us), _floor(end_us, hour_us)
        if lo < hi:
            with self.db.begin() as conn:
                written += _replace(conn, sensor_id, COARSE_S, lo, hi)
        return written

    # -- reading them ------------------------------------------------------------------------------

    def series(self, sensor_id: int, start_us: int, end_us: int, buckets: int) -> list[Bucket]:
        """About `buckets` epoch-aligned buckets of [start_us, end_us) in time order, each (start, end,
        (min, max, count)) clipped to the range; only buckets with readings. Whole roll-up spans come
        from the roll-ups; the partial first span and everything after the last rolled-up span from
        the readings."""
        if end_us <= start_us:
            return []
        span_us = end_us - start_us
        width = max(1, span_us // max(1, buckets))
        level = next((s for s in LEVELS if span_us / (s * US) >= MIN_SHARE * buckets), None)
        with self.db.connect() as conn:
            if level is None:
                found = _raw(conn, sensor_id, start_us, end_us, width)
            else:
                level_us = level * US
                width = _ceil(width, level_us)
                last = conn.execute(
                    select(func.max(reading_rollups.c.start_us)).where(
                        reading_rollups.c.sensor_id == sensor_id,
                        reading_rollups.c.span_s == level,
                        reading_rollups.c.start_us < end_us,
                    )
                ).scalar()
                first = _ceil(start_us, level_us)
                kept_end = (
                    max(first, min(_floor(end_us, level_us), int(last) + level_us)) if last is not None else first
                )
                found = _raw(conn, sensor_id, start_us, min(first, end_us), width)
                _merge(found, _rolled(conn, sensor_id, level, first, kept_end, width))
                _merge(found, _raw(conn, sensor_id, kept_end, end_us, width))
        return [(max(k * width, start_us), min((k + 1) * width, end_us), found[k]) for k in sorted(found)]


def _replace(conn: Connection, sensor_id: int, span_s: int, start_us: int, end_us: int) -> int:
    """Delete the sensor's `span_s` rows in [start_us, end_us) and insert them again from their source:
    the readings for 5-minute spans, the 5-minute rows for hours."""
    conn.execute(
        delete(reading_rollups).where(
            reading_rollups.c.sensor_id == sensor_id,
            reading_rollups.c.span_s == span_s,
            reading_rollups.c.start_us >= start_us,
            reading_rollups.c.start_us < end_us,
        )
    )
    span_us = span_s * US
    if span_s == FINE_S:
        start = (readings.c.ts // span_us * span_us).label("start_us")
        source = (
            select(
                literal(sensor_id),
                literal(span_s),
                start,
                func.min(readings.c.value),
                func.max(readings.c.value),
                func.count(),
                func.sum(readings.c.value),
            )
            .where(readings.c.sensor_id == sensor_id, readings.c.ts >= start_us, readings.c.ts < end_us)
            .group_by(start)
        )
    else:
        fine = reading_rollups.alias("fine")
        start = (fine.c.start_us // span_us * span_us).label("start_us")
        source = (
            select(
                literal(sensor_id),
                literal(span_s),
                start,
                func.min(fine.c.low),
                func.max(fine.c.high),
                func.sum(fine.c.n),
                func.sum(fine.c.total),
            )
            .where(
                and_(
                    fine.c.sensor_id == sensor_id,
                    fine.c.span_s == FINE_S,
                    fine.c.start_us >= start_us,
                    fine.c.start_us < end_us,
                )
            )
            .group_by(start)
        )
    columns = ["sensor_id", "span_s", "start_us", "low", "high", "n", "total"]
    conn.execute(reading_rollups.insert().from_select(columns, source))
    written = select(func.count()).where(
        reading_rollups.c.sensor_id == sensor_id,
        reading_rollups.c.span_s == span_s,
        reading_rollups.c.start_us >= start_us,
        reading_rollups.c.start_us < end_us,
    )
    return int(conn.execute(written).scalar_one())  # rowcount of INSERT .. SELECT is -1 on psycopg


def _raw(conn: Connection, sensor_id: int, start_us: int, end_us: int, width: int) -> dict[int, Aggregate]:
    if end_us <= start_us:
        return {}
    bucket = (readings.c.ts // width).label("bucket")
    query = (
        select(bucket, func.min(readings.c.value), func.max(readings.c.value), func.count())
        .where(readings.c.sensor_id == sensor_id, readings.c.ts >= start_us, readings.c.ts < end_us)
        .group_by(bucket)
    )
    return {int(k): (float(lo), float(hi), int(n)) for k, lo, hi, n in conn.execute(query)}


def _rolled(
    conn: Connection, sensor_id: int, span_s: int, start_us: int, end_us: int, width: int
) -> dict[int, Aggregate]:
    if end_us <= start_us:
        return {}
    bucket = (reading_rollups.c.start_us // width).label("bucket")
    query = (
        select(bucket, func.min(reading_rollups.c.low), func.max(reading_rollups.c.high), func.sum(reading_rollups.c.n))
        .where(
            reading_rollups.c.sensor_id == sensor_id,
            reading_rollups.c.span_s == span_s,
            reading_rollups.c.start_us >= start_us,
            reading_rollups.c.start_us < end_us,
        )
        .group_by(bucket)
    )
    return {int(k): (float(lo), float(hi), int(n)) for k, lo, hi, n in conn.execute(query)}


def _merge(into: dict[int, Aggregate], more: dict[int, Aggregate]) -> None:
    for k, (lo, hi, n) in more.items():
        had = into.get(k)
        into[k] = (lo, hi, n) if had is None else (min(had[0], lo), max(had[1], hi), had[2] + n)
