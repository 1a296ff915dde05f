"""Narrow telemetry: (sensor, ts, value), idempotent on (sensor, ts), written and read in bulk.

Batches stay columnar (numpy) all the way to the driver: building millions of Python tuples
costs more than the database write itself. Series are read the same way, from the driver's
cursor straight into numpy (binary rows on PostgreSQL), never through SQLAlchemy's Row
objects: for one sensor's 30 days (43,200 rows) those cost 3-4x the fetch itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd
import psycopg
from sqlalchemy import Connection, func, select

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
_UNION_CHUNK = 200  # also the ids of one IN list: well under SQLite's 999 parameters of old builds
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
        sql, params = "SELECT ts, value FROM readings WHERE sensor_id = ?", [int(sensor_id)]
        if start_us is not None:
            sql, params = sql + " AND ts >= ?", [*params, int(start_us)]
        if end_us is not None:
            sql, params = sql + " AND ts < ?", [*params, int(end_us)]
        ts, values = self._columns([(sql + " ORDER BY ts", params)], _TS_VALUE)
        index = pd.DatetimeIndex(ts.view("datetime64[us]"), dtype="datetime64[us, UTC]", name="ts")
        return pd.DataFrame({"value": values}, index=index)

    def recent(
        self, sensor_ids: Sequence[int], start_us: int, end_us: int
    ) -> dict[int, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]]:
        """Readings of several sensors in [start, end] in one query (per 200 sensors):
        sensor_id -> (ts, value), oldest first; sensors without readings there are left out."""
        ids = sorted({int(i) for i in sensor_ids})
        chunks = [ids[i : i + _UNION_CHUNK] for i in range(0, len(ids), _UNION_CHUNK)]  # in order: so is the result
        queries = [
            (
                f"SELECT sensor_id, ts, value FROM readings WHERE sensor_id IN ({', '.join('?' * len(chunk))}) "
                "AND ts >= ? AND ts <= ? ORDER BY sensor_id, ts",
                [*chunk, int(start_us), int(end_us)],
            )
            for chunk in chunks
        ]
        sensor, ts, value = self._columns(queries, _SENSOR_TS_VALUE)
        return _by_sensor(sensor, ts, value)

    def tails(
        self, sensor_ids: Sequence[int], n: int, *, until_us: int | None = None
    ) -> dict[int, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]]:
        """The newest `n` readings of each sensor (at or before `until_us`), in one query (per 200
        sensors): sensor_id -> (ts, value), oldest first; sensors without readings are left out."""
        ids = sorted({int(i) for i in sensor_ids})
        if not ids or n <= 0:
            return {}
        until = int(until_us) if until_us is not None else _MAX_TS
        chunks = [ids[i : i + _UNION_CHUNK] for i in range(0, len(ids), _UNION_CHUNK)]  # SQLite: 500 terms at most
        queries = [
            (
                " UNION ALL ".join(
                    f"SELECT sensor_id, ts, value FROM (SELECT sensor_id, ts, value FROM readings "
                    f"WHERE sensor_id = ? AND ts <= ? ORDER BY ts DESC LIMIT ?) AS t{k}"
                    for k in range(len(chunk))
                ),
                [p for sensor_id in chunk for p in (sensor_id, until, int(n))],
            )
            for chunk in chunks
        ]
        sensor, ts, value = self._columns(queries, _SENSOR_TS_VALUE)
        order = np.lexsort((ts, sensor))
        return _by_sensor(sensor[order], ts[order], value[order])

    def _columns(self, queries: Sequence[tuple[str, Sequence[int]]], columns: np.dtype[Any]) -> list[npt.NDArray[Any]]:
        """The rows of the queries (placeholders `?`), one after the other on one connection, as
        one contiguous numpy array per column, straight from the driver's cursor: no SQLAlchemy
        Row is built (those cost 3-4x the fetch itself). PostgreSQL sends the rows in binary,
        which psycopg decodes faster than text (its binary COPY was slower still: one message,
        so one Python call, per row)."""
        tables = []
        with self.db.connect() as conn:
            driver: Any = conn.connection.driver_connection
            cursor = driver.cursor()
            began = False
            try:
                if self.db.dialect == "sqlite" and len(queries) > 1:  # the parts as of one moment
                    cursor.execute("BEGIN")
                    began = True
                for sql, params in queries:
                    if self.db.dialect == "postgresql":
                        cursor.execute(sql.replace("?", "%s"), params, binary=True)
                        rows = cursor.fetchall()
                        tables.append(np.fromiter(rows, dtype=columns, count=len(rows)))
                    else:  # sqlite3's rows go into numpy as the cursor steps: no list of them at all
                        tables.append(np.fromiter(cursor.execute(sql, params), dtype=columns))
            finally:
                if began:
                    cursor.execute("ROLLBACK")
                cursor.close()
        table = tables[0] if len(tables) == 1 else np.concatenate(tables) if tables else np.empty(0, columns)
        return [np.ascontiguousarray(table[name]) for name in columns.names or ()]

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


def _by_sensor(
    sensor: npt.NDArray[Any], ts: npt.NDArray[np.int64], value: npt.NDArray[np.float64]
) -> dict[int, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]]:
    """(sensor_id, ts, value) columns in sensor, ts order -> sensor_id -> (ts, value) columns."""
    if len(sensor) == 0:
        return {}
    starts = np.flatnonzero(np.r_[True, sensor[1:] != sensor[:-1]])
    ends = np.r_[starts[1:], len(sensor)]
    return {int(sensor[a]): (ts[a:b], value[a:b]) for a, b in zip(starts, ends, strict=True)}


# The columns a bulk read returns, as numpy reads them from the driver's rows.
_TS_VALUE = np.dtype([("ts", np.int64), ("value", np.float64)])
_SENSOR_TS_VALUE = np.dtype([("sensor_id", np.int32), ("ts", np.int64), ("value", np.float64)])


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
