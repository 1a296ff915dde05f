"""Bulk-write speed of readings into SQLite and PostgreSQL, against pandas' DataFrame.to_sql.

    python bench/storage.py [--rows 5000000] [--naive-rows 500000] [--sensors 500]

Prints JSON. Both paths write into a table with the idempotency key (sensor_id, ts) in place.
The data is time-ordered across sensors, as it arrives from a plant. The naive path runs on
the first million of the same readings by default (at its speed all 5 million take minutes on
PostgreSQL) and is reported as a rate; `--naive-rows 5000000` runs it on everything.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import text

from pitstop.storage import Database
from pitstop.storage.repos.readings import ReadingBatch, ReadingRepo
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--naive-rows", type=int, default=1_000_000, help="the first N of the same readings")
    parser.add_argument("--sensors", type=int, default=500)
    args = parser.parse_args()
    data = make_data(args.rows, args.sensors)
    n = args.naive_rows
    naive = ReadingBatch(data.sensor_id[:n], data.ts_us[:n], data.value[:n])
    result: dict[str, object] = {
        "benchmark": "storage.bulk_write",
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "sensors": args.sensors,
        "batch": BATCH,
    }
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'bench.db'}")
        result["sqlite"] = run(db, data, naive)
        db.dispose()
    try:
        with scratch_postgres_database() as url:
            db = Database(url)
            result["postgresql"] = run(db, data, naive)
            db.dispose()
    except BaseException as exc:  # pytest.skip raises a BaseException subclass
        result["postgresql"] = {"skipped": str(exc) or type(exc).__name__}
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
