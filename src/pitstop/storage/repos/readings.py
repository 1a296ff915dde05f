"""Narrow telemetry: (sensor, ts, value), idempotent on (sensor, ts), written in bulk.

Batches stay columnar (numpy) all the way to the driver: building millions of Python tuples
costs more than the database write itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd
import psycopg
from sqlalchemy import Connection, func, select, union_all

from pitstop.storage.engine import Database
from pitstop.storage.schema import readings

# PostgreSQL binary COPY: per row a field count, then (length, value) per field, big-endian.
_PG_ROW = np.dtype(
    [
        ("n", ">i2"),
        ("l1", ">i4"),
        ("sensor", ">i4"),
        ("l2", ">i4"),
        ("ts", ">i8"),
        ("l3", ">i4"),
        ("value", ">f8"),
    ]
)
_PG_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_PG_TRAILER = b"\xff\xff"
_UNION_CHUNK = 200
_MAX_TS = 2**63 - 1


@dataclass(frozen=True, slots=True)
class WriteResult:
    stored: int
    duplicates: int


class Conflict(NamedTuple):
    """A reading whose (sensor, ts) is already stored with another value."""

    sensor_id: int
    ts_us: int
    value: float
    stored: float


@dataclass(frozen=True, slots=True)
class ReadingBatch:
    """Columns of one batch of valid readings."""

    sensor_id: npt.NDArray[np.int32]
    ts_us: npt.NDArray[np.int64]
    value: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.ts_us)

    @classmethod
    def of(cls, sensor_id: object, ts_us: object, value: object) -> ReadingBatch:
        return cls(
            np.ascontiguousarray(sensor_id, dtype=np.int32),
            np.ascontiguousarray(ts_us, dtype=np.int64),
            np.ascontiguousarray(value, dtype=np.float64),
        )

    def sorted_unique(self) -> ReadingBatch:
        """In key order (so the index is appended to rather than written all over), and with
        repeats of a key inside the batch dropped: the first one wins, as in the database."""
        order = np.lexsort((self.ts_us, self.sensor_id))
        sensor, ts = self.sensor_id[order], self.ts_us[order]
        keep = np.ones(len(order), dtype=bool)
        keep[1:] = (sensor[1:] != sensor[:-1]) | (ts[1:] != ts[:-1])
        order = order[keep]
        return ReadingBatch(self.sensor_id[order], self.ts_us[order], self.value[order])


class ReadingRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    def write(self, batch: ReadingBatch) -> WriteResult:
        """Store a batch in one transaction; readings already stored are counted, not stored again."""
        if len(batch) == 0:
            return WriteResult(0, 0)
        with self.db.begin() as conn:
            stored = self.write_in(conn, batch)
        return WriteResult(stored, len(batch) - stored)

    def write_in(self, conn: Connection, batch: ReadingBatch) -> int:
        """Write inside the caller's transaction; returns how many rows were new."""
        batch = batch.sorted_unique()
        if self.db.dialect == "postgresql":
            return _write_postgres(conn, batch)
        return _write_sqlite(conn, batch)

    def conflicts_in(self, conn: Connection, batch: ReadingBatch) -> list[Conflict]:
        """The readings of `batch` whose (sensor, ts) is stored with a different value: after a
        write that stored fewer rows than it was given, these are conflicts, the rest duplicates.
        (Two values for one key in the same batch: the first is stored, the second conflicts.)"""
        if len(batch) == 0:
            return []
        if self.db.dialect == "postgresql":
            return _conflicts_postgres(conn, batch)
        return _conflicts_sqlite(conn, batch)

    def window(self, sensor_id: int, start_us: int | None = None, end_us: int | None = None) -> pd.DataFrame:
        """Readings of one sensor in [start, end), as a frame indexed by aware UTC time."""
        query = select(readings.c.ts, readings.c.value).where(readings.c.sensor_id == sensor_id)
        if start_us is not None:
            query = query.where(readings.c.ts >= start_us)
        if end_us is not None:
            query = query.where(readings.c.ts < end_us)
        with self.db.connect() as conn:
            rows = conn.execute(query.order_by(readings.c.ts)).all()
        ts = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        values = np.fromiter((r[1] for r in rows), dtype=np.float64, count=len(rows))
        index = pd.DatetimeIndex(ts.astype("datetime64[us]"), name="ts").tz_localize("UTC")
        return pd.DataFrame({"value": values}, index=index)

    def recent(
        self, sensor_ids: Sequence[int], start_us: int, end_us: int
    ) -> dict[int, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]]:
        """Readings of several sensors in [start, end] in one query: sensor_id -> (ts, value),
        oldest first; sensors without readings there are left out."""
        if not sensor_ids:
            return {}
        query = (
            select(readings.c.sensor_id, readings.c.ts, readings.c.value)
            .where(readings.c.sensor_id.in_(sorted(set(sensor_ids))))
            .where(readings.c.ts >= start_us, readings.c.ts <= end_us)
            .order_by(readings.c.sensor_id, readings.c.ts)
        )
        with self.db.connect() as conn:
            rows = conn.execute(query).all()
        return _by_sensor(rows)

    def tails(
        self, sensor_ids: Sequence[int], n: int, *, until_us: int | None = None
    ) -> dict[int, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]]:
        """The newest `n` readings of each sensor (at or before `until_us`), in one query:
        sensor_id -> (ts, value), oldest first; sensors without readings are left out."""
        ids = sorted(set(sensor_ids))
        if not ids or n <= 0:
            return {}
        rows: list[Any] = []
        with self.db.connect() as conn:
            for i in range(0, len(ids), _UNION_CHUNK):  # SQLite allows 500 terms in one compound SELECT
                parts = [
                    select(readings.c.sensor_id, readings.c.ts, readings.c.value)
                    .where(readings.c.sensor_id == sensor_id)
                    .where(readings.c.ts <= (until_us if until_us is not None else _MAX_TS))
                    .order_by(readings.c.ts.desc())
                    .limit(n)
                    .subquery()
                    for sensor_id in ids[i : i + _UNION_CHUNK]
                ]
                rows.extend(conn.execute(union_all(*(select(p.c.sensor_id, p.c.ts, p.c.value) for p in parts))))
        return _by_sensor(sorted(rows, key=lambda r: (r[0], r[1])))

    def distinct_values(self, sensor_id: int, start_us: int, end_us: int, *, limit: int) -> int:
        """How many distinct values one sensor read in [start, end), counting no further than `limit`."""
        inner = (
            select(readings.c.value)
            .where(readings.c.sensor_id == sensor_id, readings.c.ts >= start_us, readings.c.ts < end_us)
            .distinct()
            .limit(limit)
            .subquery()
        )
        with self.db.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(inner)).scalar_one())

    def highest(self, sensor_id: int, start_us: int, end_us: int) -> float | None:
        """The highest reading of one sensor in [start, end], or None without readings there."""
        query = select(func.max(readings.c.value)).where(
            readings.c.sensor_id == sensor_id, readings.c.ts >= start_us, readings.c.ts <= end_us
        )
        with self.db.connect() as conn:
            value = conn.execute(query).scalar()
        return None if value is None else float(value)

    def count(self, sensor_id: int | None = None) -> int:
        query = select(func.count()).select_from(readings)
        if sensor_id is not None:
            query = query.where(readings.c.sensor_id == sensor_id)
        with self.db.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def span(self, sensor_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
        """sensor_id -> (oldest, newest) ts (µs) for those of the sensors with readings. One
        aggregate a query, so each is a single index lookup (SQLite's min/max shortcut)."""
        out: dict[int, tuple[int, int]] = {}
        with self.db.connect() as conn:
            for sid in sensor_ids:
                oldest = conn.execute(select(func.min(readings.c.ts)).where(readings.c.sensor_id == sid)).scalar()
                newest = conn.execute(select(func.max(readings.c.ts)).where(readings.c.sensor_id == sid)).scalar()
                if oldest is not None and newest is not None:
                    out[sid] = (int(oldest), int(newest))
        return out

    def latest(self) -> dict[int, int]:
        """sensor_id -> newest ts (µs)."""
        query = select(readings.c.sensor_id, func.max(readings.c.ts)).group_by(readings.c.sensor_id)
        with self.db.connect() as conn:
            return {int(s): int(t) for s, t in conn.execute(query)}


def _by_sensor(rows: Sequence[Any]) -> dict[int, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]]:
    """(sensor_id, ts, value) rows in sensor, ts order -> sensor_id -> (ts, value) columns."""
    if not rows:
        return {}
    sensor = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    ts = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
    value = np.fromiter((r[2] for r in rows), dtype=np.float64, count=len(rows))
    starts = np.flatnonzero(np.r_[True, sensor[1:] != sensor[:-1]])
    ends = np.r_[starts[1:], len(rows)]
    return {int(sensor[a]): (ts[a:b], value[a:b]) for a, b in zip(starts, ends, strict=True)}


def _write_sqlite(conn: Connection, batch: ReadingBatch) -> int:
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        rows = zip(batch.sensor_id.tolist(), batch.ts_us.tolist(), batch.value.tolist(), strict=True)
        cursor.executemany("INSERT OR IGNORE INTO readings (sensor_id, ts, value) VALUES (?, ?, ?)", rows)
        return int(cursor.rowcount)
    finally:
        cursor.close()


def _write_postgres(conn: Connection, batch: ReadingBatch) -> int:
    """COPY straight into the table when the batch is all new (the common case, about 3x faster
    than ON CONFLICT); when a key already exists, fall back to staging + INSERT .. ON CONFLICT."""
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    payload = _copy_payload(batch)
    try:
        cursor.execute("SAVEPOINT readings_copy")
        try:
            with cursor.copy("COPY readings (sensor_id, ts, value) FROM STDIN (FORMAT BINARY)") as copy:
                copy.write(payload)
        except psycopg.errors.UniqueViolation:
            cursor.execute("ROLLBACK TO SAVEPOINT readings_copy")
        else:
            cursor.execute("RELEASE SAVEPOINT readings_copy")
            return len(batch)
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS readings_staging "
            "(sensor_id int4, ts int8, value float8) ON COMMIT DELETE ROWS"
        )
        with cursor.copy("COPY readings_staging (sensor_id, ts, value) FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(payload)
        cursor.execute(
            "INSERT INTO readings (sensor_id, ts, value) "
            "SELECT sensor_id, ts, value FROM readings_staging ORDER BY sensor_id, ts "
            "ON CONFLICT DO NOTHING"
        )
        stored = int(cursor.rowcount)
        cursor.execute("TRUNCATE readings_staging")
        return stored
    finally:
        cursor.close()


_CONFLICTS = (
    "SELECT i.sensor_id, i.ts, i.value, r.value FROM {table} i "
    "JOIN readings r ON r.sensor_id = i.sensor_id AND r.ts = i.ts WHERE r.value <> i.value"
)


def _conflicts_sqlite(conn: Connection, batch: ReadingBatch) -> list[Conflict]:
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute("CREATE TEMP TABLE IF NOT EXISTS readings_incoming (sensor_id INTEGER, ts INTEGER, value REAL)")
        rows = zip(batch.sensor_id.tolist(), batch.ts_us.tolist(), batch.value.tolist(), strict=True)
        cursor.executemany("INSERT INTO readings_incoming (sensor_id, ts, value) VALUES (?, ?, ?)", rows)
        found = cursor.execute(_CONFLICTS.format(table="readings_incoming")).fetchall()
        cursor.execute("DELETE FROM readings_incoming")
    finally:
        cursor.close()
    return [Conflict(int(s), int(t), float(v), float(r)) for s, t, v, r in found]


def _conflicts_postgres(conn: Connection, batch: ReadingBatch) -> list[Conflict]:
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS readings_incoming "
            "(sensor_id int4, ts int8, value float8) ON COMMIT DELETE ROWS"
        )
        with cursor.copy("COPY readings_incoming (sensor_id, ts, value) FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(_copy_payload(batch))
        found = cursor.execute(_CONFLICTS.format(table="readings_incoming")).fetchall()
        cursor.execute("TRUNCATE readings_incoming")
    finally:
        cursor.close()
    return [Conflict(int(s), int(t), float(v), float(r)) for s, t, v, r in found]


def _copy_payload(batch: ReadingBatch) -> bytes:
    rows = np.empty(len(batch), dtype=_PG_ROW)
    rows["n"], rows["l1"], rows["l2"], rows["l3"] = 3, 4, 8, 8
    rows["sensor"], rows["ts"], rows["value"] = batch.sensor_id, batch.ts_us, batch.value
    return _PG_HEADER + rows.tobytes() + _PG_TRAILER
