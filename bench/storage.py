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
    args = parser.parse_args()
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
