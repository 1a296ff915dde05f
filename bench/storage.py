"""Bulk writes and reads of readings in SQLite and PostgreSQL, against the plain tools.

    python bench/storage.py [--parts write,read] [--rows 5000000] [--naive-rows 500000] [--sensors 500]
                            [--read-days 30] [--read-sensors 20] [--repeat 15]

Prints JSON. Writes: both paths write into a table with the idempotency key (sensor_id, ts) in
place. The data is time-ordered across sensors, as it arrives from a plant. The naive path runs on
the first million of the same readings by default (at its speed all 5 million take minutes on
PostgreSQL) and is reported as a rate; `--naive-rows 5000000` runs it on everything.

Reads: --read-sensors sensors at one reading a minute for --read-days days (30 days: 43,200 rows
a sensor); one sensor's whole window read by `ReadingRepo.window` (a pandas frame on aware UTC
time), beside a plain driver fetch of the same query on a connection of its own (sqlite3
`fetchall`; psycopg `fetchall`, text and binary) and the SQLAlchemy Core path the repository used
before (`Result.all()` into numpy). The paths take turns, --repeat rounds, medians reported;
`ratio_to_plain` is pitstop's median over the plain fetch's (sqlite3's or psycopg's text
`fetchall`), `ratios` every path's. `recent` (every sensor, the last hour) and `tails` (every
sensor, 10 readings) are timed too. PostgreSQL's statistics are taken (ANALYZE) after the load.

    python bench/storage.py --partitioned [--partition-sensors 10,1000] [--partition-days 70] [--repeat 15]

Partitioned readings (PostgreSQL, migration 0020), one database of the bench's own per size, dropped
after it: readings at 1 a minute for --partition-days days (from 2026-01-01: three monthly partitions)
of 10 sensors (1.0 M readings) and of 1,000 sensors (100.8 M), loaded through `ReadingRepo.write` (the
binary COPY path) in batches of 500 minutes of every sensor, so that one sensor's readings lie in
runs of 500 in both sizes and only the table's size differs. The month partitions are created first
(`ReadingPartitions.create_month`), so nothing lands in the DEFAULT one. Then VACUUM ANALYZE (what
autovacuum does to an insert-only table) and the roll-ups of every sensor, as the `rollups` job would
have stored them (here in one INSERT .. SELECT a partition, the job's SQL in bulk). Timed, median of
--repeat, the two queries taking turns: one sensor's last 30 days of raw readings
(`ReadingRepo.window`, 43,200 rows) and the asset page's 30-day plot of it (`web.series.buckets`:
hourly roll-ups plus the raw tail). `ratio` is the 100 M median over the 1 M one (target: within 2x).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg
from sqlalchemy import select, text

from pitstop.storage import Database
from pitstop.storage.repos.readings import ReadingBatch, ReadingRepo
from pitstop.storage.schema import readings
from pitstop.testing.services import scratch_postgres_database

BATCH = 500_000


def make_data(rows: int, sensors: int, seed: int = 7) -> ReadingBatch:
    steps = rows // sensors
    rng = np.random.default_rng(seed)
    ts = 1_767_225_600_000_000 + np.repeat(np.arange(steps, dtype=np.int64), sensors) * 1_000_000
    sensor = np.tile(np.arange(1, sensors + 1, dtype=np.int32), steps)
    return ReadingBatch.of(sensor, ts, rng.normal(20, 5, len(ts)))


def pitstop_write(db: Database, data: ReadingBatch) -> dict[str, float]:
    repo = ReadingRepo(db)
    start = time.perf_counter()
    stored = 0
    for i in range(0, len(data), BATCH):
        part = ReadingBatch(data.sensor_id[i : i + BATCH], data.ts_us[i : i + BATCH], data.value[i : i + BATCH])
        stored += repo.write(part).stored
    seconds = time.perf_counter() - start
    # and a full replay: everything is a duplicate, nothing is stored twice
    start = time.perf_counter()
    replayed = sum(
        repo.write(
            ReadingBatch(data.sensor_id[i : i + BATCH], data.ts_us[i : i + BATCH], data.value[i : i + BATCH])
        ).stored
        for i in range(0, len(data), BATCH)
    )
    replay_seconds = time.perf_counter() - start
    assert stored == len(data) and replayed == 0 and repo.count() == len(data)
    return {
        "rows": len(data),
        "seconds": round(seconds, 3),
        "readings_per_s": round(len(data) / seconds),
        "replay_readings_per_s": round(len(data) / replay_seconds),
    }


def naive_write(db: Database, data: ReadingBatch) -> dict[str, float]:
    with db.begin() as conn:
        conn.execute(
            text("CREATE TABLE naive (sensor_id INTEGER, ts BIGINT, value FLOAT, PRIMARY KEY (sensor_id, ts))")
        )
    frame = pd.DataFrame({"sensor_id": data.sensor_id, "ts": data.ts_us, "value": data.value})
    start = time.perf_counter()
    frame.to_sql("naive", db.engine, if_exists="append", index=False, chunksize=50_000)
    seconds = time.perf_counter() - start
    return {"rows": len(frame), "seconds": round(seconds, 3), "readings_per_s": round(len(frame) / seconds)}


def run(db: Database, data: ReadingBatch, naive: ReadingBatch) -> dict[str, object]:
    db.upgrade()
    ours = pitstop_write(db, data)
    theirs = naive_write(db, naive)
    return {
        "pitstop": ours,
        "pandas_to_sql": theirs,
        "speedup": round(ours["readings_per_s"] / theirs["readings_per_s"], 1),
    }


READ_QUERY = "SELECT ts, value FROM readings WHERE sensor_id = {p} AND ts >= {p} AND ts < {p} ORDER BY ts"
READ_START = 1_767_225_600_000_000


def sqlalchemy_rows(db: Database, sensor_id: int, start_us: int, end_us: int) -> pd.DataFrame:
    """`ReadingRepo.window` as it was: SQLAlchemy Core, `Result.all()`, then numpy."""
    query = (
        select(readings.c.ts, readings.c.value)
        .where(readings.c.sensor_id == sensor_id, readings.c.ts >= start_us, readings.c.ts < end_us)
        .order_by(readings.c.ts)
    )
    with db.connect() as conn:
        rows = conn.execute(query).all()
    ts = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    values = np.fromiter((r[1] for r in rows), dtype=np.float64, count=len(rows))
    index = pd.DatetimeIndex(ts.astype("datetime64[us]"), name="ts").tz_localize("UTC")
    return pd.DataFrame({"value": values}, index=index)


def turns(paths: dict[str, Callable[[], Any]], repeat: int) -> dict[str, float]:
    """Median milliseconds of each path, the paths taking turns so that load hits them alike."""
    for func in paths.values():
        func()  # warm: pages in the cache, statements prepared
    runs: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(repeat):
        for name, func in paths.items():
            start = time.perf_counter()
            func()
            runs[name].append(time.perf_counter() - start)
    return {name: round(statistics.median(r) * 1000, 2) for name, r in runs.items()}


def read_run(db: Database, days: int, sensors: int, repeat: int) -> dict[str, object]:
    db.upgrade()
    repo = ReadingRepo(db)
    steps = days * 1440
    ts = READ_START + np.repeat(np.arange(steps, dtype=np.int64), sensors) * 60_000_000
    sensor = np.tile(np.arange(1, sensors + 1, dtype=np.int32), steps)
    repo.write(ReadingBatch.of(sensor, ts, np.random.default_rng(7).normal(20, 5, len(ts))))
    if db.dialect == "postgresql":
        with db.begin() as conn:  # as autovacuum would after a load: the planner's statistics
            conn.exec_driver_sql("ANALYZE readings")
    end = READ_START + steps * 60_000_000
    one = sensors // 2
    params = (one, READ_START, end)
    plain: Any
    if db.dialect == "postgresql":
        plain = psycopg.connect(db.url.set(drivername="postgresql").render_as_string(hide_password=False))
        query = READ_QUERY.format(p="%s")
        paths = {
            "pitstop": lambda: repo.window(one, READ_START, end),
            "psycopg_fetchall": lambda: plain.execute(query, params).fetchall(),
            "psycopg_fetchall_binary": lambda: plain.cursor().execute(query, params, binary=True).fetchall(),
            "sqlalchemy_rows": lambda: sqlalchemy_rows(db, one, READ_START, end),
        }
        peer = "psycopg_fetchall"
    else:
        plain = sqlite3.connect(str(db.url.database))
        query = READ_QUERY.format(p="?")
        paths = {
            "pitstop": lambda: repo.window(one, READ_START, end),
            "sqlite3_fetchall": lambda: plain.execute(query, params).fetchall(),
            "sqlalchemy_rows": lambda: sqlalchemy_rows(db, one, READ_START, end),
        }
        peer = "sqlite3_fetchall"
    frame = repo.window(one, READ_START, end)
    assert len(frame) == steps and frame.equals(sqlalchemy_rows(db, one, READ_START, end))
    window_ms = turns(paths, repeat)
    ids = list(range(1, sensors + 1))
    hour = end - 3_600_000_000
    many_ms = turns({"recent_1h": lambda: repo.recent(ids, hour, end), "tails_10": lambda: repo.tails(ids, 10)}, repeat)
    plain.close()
    return {
        "rows_per_sensor": steps,
        "sensors": sensors,
        "window_one_sensor_ms": window_ms,
        "ratio_to_plain": round(window_ms["pitstop"] / window_ms[peer], 2),
        "ratios": {  # each path's median over the plain fetch's
            name: round(ms / window_ms[peer], 2) for name, ms in window_ms.items() if name != peer
        },
        "all_sensors_ms": many_ms,
    }


# -- partitioned readings on PostgreSQL ---------------------------------------------------------

PART_START = datetime(2026, 1, 1, tzinfo=UTC)
PART_CHUNK_MINUTES = 500
MINUTE_US = 60_000_000
DAY_US = 1440 * MINUTE_US


def load_partitioned(db: Database, sensors: int, days: int) -> dict[str, object]:
    """`sensors` sensors at 1 a minute for `days` days through the COPY path, time-ordered in batches of
    PART_CHUNK_MINUTES minutes of every sensor; the months' partitions made first."""
    from pitstop.storage.partitions import ReadingPartitions, add_months, month_start

    partitions = ReadingPartitions(db)
    month, last = month_start(PART_START), month_start(PART_START + timedelta(days=days))
    while month <= last:
        partitions.create_month(month)
        month = add_months(month, 1)
    repo = ReadingRepo(db)
    rng = np.random.default_rng(7)
    start_us = int(PART_START.timestamp()) * 1_000_000
    steps = days * 1440
    ids = np.arange(1, sensors + 1, dtype=np.int32)
    began = time.perf_counter()
    stored = 0
    for first in range(0, steps, PART_CHUNK_MINUTES):
        minutes = np.arange(first, min(first + PART_CHUNK_MINUTES, steps), dtype=np.int64)
        ts = start_us + np.repeat(minutes, sensors) * MINUTE_US
        batch = ReadingBatch.of(np.tile(ids, len(minutes)), ts, rng.normal(20, 5, len(ts)))
        stored += repo.write(batch).stored
    load_seconds = time.perf_counter() - began
    assert stored == steps * sensors
    began = time.perf_counter()
    with psycopg.connect(_plain_url(db), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE readings")
        vacuum_seconds = time.perf_counter() - began
        began = time.perf_counter()
        names = [r[0] for r in conn.execute(_MONTHS, ("readings",)).fetchall()]
        for name in names:  # the 5-minute roll-ups, one partition at a time, in key order
            conn.execute(_FINE_ROLLUPS.format(table=name))
        conn.execute(_HOUR_ROLLUPS)
        conn.execute("VACUUM ANALYZE reading_rollups")
        rollup_seconds = time.perf_counter() - began
        size = conn.execute(
            "SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits WHERE inhparent = 'readings'::regclass"
        ).fetchone()
        rollup_rows = conn.execute("SELECT count(*) FROM reading_rollups").fetchone()
    return {
        "sensors": sensors,
        "days": days,
        "rows": stored,
        "load_seconds": round(load_seconds, 1),
        "readings_per_s": round(stored / load_seconds),
        "vacuum_analyze_seconds": round(vacuum_seconds, 1),
        "rollups_seconds": round(rollup_seconds, 1),
        "rollup_rows": int(rollup_rows[0]) if rollup_rows else 0,
        "readings_bytes": int(size[0]) if size and size[0] is not None else 0,
        "partitions": [
            {"name": p.name, "rows_estimate": p.rows_estimate, "bytes": p.bytes} for p in partitions.list_all()
        ],
    }


_MONTHS = (
    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
    "WHERE i.inhparent = to_regclass(%s) ORDER BY 1"
)
_FINE_ROLLUPS = (
    "INSERT INTO reading_rollups (sensor_id, span_s, start_us, low, high, n, total) "
    "SELECT sensor_id, 300, ts / 300000000 * 300000000, min(value), max(value), count(*), sum(value) "
    "FROM {table} GROUP BY sensor_id, ts / 300000000 ORDER BY 1, 3"
)
_HOUR_ROLLUPS = (
    "INSERT INTO reading_rollups (sensor_id, span_s, start_us, low, high, n, total) "
    "SELECT sensor_id, 3600, start_us / 3600000000 * 3600000000, min(low), max(high), sum(n), sum(total) "
    "FROM reading_rollups WHERE span_s = 300 GROUP BY sensor_id, start_us / 3600000000 ORDER BY 1, 3"
)


def _plain_url(db: Database) -> str:
    return db.url.set(drivername="postgresql").render_as_string(hide_password=False)


def plot_paths(db: Database, sensors: int, days: int) -> tuple[dict[str, Callable[[], Any]], dict[str, int]]:
    """One sensor's last 30 days, raw (`ReadingRepo.window`) and the asset page's plot (`web.series.buckets`),
    checked once: the paths to time and what they return."""
    from pitstop.web.series import buckets

    repo = ReadingRepo(db)
    one = (sensors + 1) // 2
    end = int(PART_START.timestamp()) * 1_000_000 + days * DAY_US
    start = end - 30 * DAY_US
    frame = repo.window(one, start, end)
    plot = buckets(db, one, start, end)
    assert len(frame) == 30 * 1440 and sum(b.n for b in plot) == 30 * 1440, (len(frame), sum(b.n for b in plot))
    paths: dict[str, Callable[[], Any]] = {
        "window_30d": lambda: repo.window(one, start, end),
        "plot_30d": lambda: buckets(db, one, start, end),
    }
    return paths, {"sensor": one, "window_rows": len(frame), "plot_buckets": len(plot)}


def partitioned_main(sizes: list[int], days: int, repeat: int) -> dict[str, object]:
    """Load every size into a database of its own, then time the reads of all sizes taking turns, so
    that the load of the machine (other work on the two cores) hits every size alike."""
    result: dict[str, object] = {
        "benchmark": "storage --partitioned",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "layout": f"N sensors x {days} days at 1/min from {PART_START.date()}, monthly partitions, "
        f"COPY in batches of {PART_CHUNK_MINUTES} minutes of every sensor",
        "repeat": repeat,
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
    }
    runs: dict[str, dict[str, object]] = {}
    paths: dict[str, Callable[[], Any]] = {}
    try:
        with ExitStack() as stack:
            for sensors in sizes:
                db = Database(stack.enter_context(scratch_postgres_database()))
                stack.callback(db.dispose)
                db.upgrade()
                loaded = load_partitioned(db, sensors, days)
                size = f"{int(str(loaded['rows'])) / 1e6:.1f}M"
                size_paths, shape = plot_paths(db, sensors, days)
                paths |= {f"{size} {name}": func for name, func in size_paths.items()}
                runs[size] = {**loaded, "reads": shape, "load_average": [round(x, 2) for x in os.getloadavg()]}
            medians = turns(paths, repeat)
    except BaseException as exc:  # pytest.skip raises a BaseException subclass
        result["skipped"] = str(exc) or type(exc).__name__
        medians = {}
    for key, ms in medians.items():
        size, name = key.split(" ")
        reads = runs[size]["reads"]
        assert isinstance(reads, dict)
        reads[f"{name}_ms"] = ms
    result["sizes"] = runs
    if len(runs) >= 2 and medians:
        small, large = min(runs, key=_millions), max(runs, key=_millions)
        result["ratio_largest_to_smallest"] = {
            name: round(medians[f"{large} {name}"] / medians[f"{small} {name}"], 2)
            for name in ("window_30d", "plot_30d")
        }
        result["target"] = "largest within 2x of smallest"
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    return result


def _millions(key: str) -> float:
    return float(key.rstrip("M"))


def on_both(run_one: Callable[[Database], dict[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'bench.db'}")
        out["sqlite"] = run_one(db)
        db.dispose()
    try:
        with scratch_postgres_database() as url:
            db = Database(url)
            out["postgresql"] = run_one(db)
            db.dispose()
    except BaseException as exc:  # pytest.skip raises a BaseException subclass
        out["postgresql"] = {"skipped": str(exc) or type(exc).__name__}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="write,read", help="comma-separated: write, read")
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--naive-rows", type=int, default=1_000_000, help="the first N of the same readings")
    parser.add_argument("--sensors", type=int, default=500)
    parser.add_argument("--read-days", type=int, default=30)
    parser.add_argument("--read-sensors", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--partitioned", action="store_true", help="only the partitioned PostgreSQL sizes")
    parser.add_argument("--partition-sensors", default="10,1000", help="sensors of each size, comma-separated")
    parser.add_argument("--partition-days", type=int, default=70)
    args = parser.parse_args()
    if args.partitioned:
        sizes = [int(n) for n in args.partition_sensors.split(",") if n.strip()]
        json.dump(partitioned_main(sizes, args.partition_days, args.repeat), sys.stdout, indent=2)
        print()
        return
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if not parts or parts - {"write", "read"}:
        parser.error(f"--parts takes write and/or read, not {args.parts!r}")
    result: dict[str, object] = {
        "benchmark": "storage",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
    }
    if "write" in parts:
        data = make_data(args.rows, args.sensors)
        n = args.naive_rows
        naive = ReadingBatch(data.sensor_id[:n], data.ts_us[:n], data.value[:n])
        result["bulk_write"] = {
            "sensors": args.sensors,
            "batch": BATCH,
            **on_both(lambda db: run(db, data, naive)),
        }
    if "read" in parts:
        result["bulk_read"] = {
            "repeat": args.repeat,
            **on_both(lambda db: read_run(db, args.read_days, args.read_sensors, args.repeat)),
        }
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
